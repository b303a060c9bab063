"""End-to-end latency of the bot's own stream, split per hop.

Bot production (``ts_ns``) -> backend receive (``/api/receive_times``, stored critical
envelopes) -> client receive (this subscriber). End-to-end covers every envelope of the
bot's run; the hop split covers the critical ones, whose receive time the backend keeps.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from wsrig import messages
from wsrig.clients import Subscriber, get_json
from wsrig.config import RigConfig
from wsrig.load.recorder import HopRecorder

__all__ = ["BotLatency", "measure_bot_latency"]


@dataclass
class BotLatency:
    hops: HopRecorder
    envelopes: int
    critical_with_receive_time: int

    def recorded(self) -> dict[str, Any]:
        """What the history keeps: each hop's HDR histogram (encoded) and the counts."""
        return {
            "end_to_end": self.hops.end_to_end.encode(),
            "bot_to_backend": self.hops.bot_to_backend.encode(),
            "backend_to_client": self.hops.backend_to_client.encode(),
            "envelopes": self.envelopes,
            "critical_with_receive_time": self.critical_with_receive_time,
            "negative_hops": self.hops.negative_hops,
        }


def measure_bot_latency(cfg: RigConfig, run_id: str, duration_s: float) -> BotLatency:
    """Follow the bot's live stream for ``duration_s``, then look up the backend's stamps."""

    async def follow() -> list[tuple[int, dict[str, Any]]]:
        async with Subscriber(cfg.stream_url, messages.subscribe(snapshot=False)) as sub:
            await asyncio.sleep(duration_s)
            return [(t, f) for t, f in sub.frames if f.get("run_id") == run_id and "seq" in f]

    frames = asyncio.run(follow())
    hops = HopRecorder()
    for recv_ns, env in frames:
        hops.record_end_to_end(env["ts_ns"], recv_ns)
    first = min((env["seq"] for _, env in frames), default=1)
    stamps = get_json(f"{cfg.dashboard_url}/api/receive_times?run_id={run_id}&after_seq={first - 1}&limit=100000")
    backend_ns = {int(seq): int(ns) for seq, ns in stamps["recv_ns"]}
    matched = 0
    for recv_ns, env in frames:
        seq = env["seq"]
        if seq in backend_ns:
            hops.record_hops(env["ts_ns"], backend_ns[seq], recv_ns)
            matched += 1
    return BotLatency(hops, len(frames), matched)
