"""End-to-end latency of the bot's live stream, as a dashboard client sees it.

Used by ``wsrig measure-latency``. Latency of an envelope is its
receive time at the client minus its ``ts_ns`` (the publisher's clock at production;
bot, backend and rig share the host clock here).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from wsrig import messages
from wsrig.clients import Subscriber
from wsrig.config import RigConfig
from wsrig.stats import LatencySummary

__all__ = ["latency_samples", "summarize"]


def summarize(samples: Iterable[tuple[float, float]]) -> LatencySummary:
    """(t, ms) samples -> percentiles (the one line to change for an HDR histogram)."""
    return LatencySummary.from_ms(ms for _, ms in samples)


async def _collect(cfg: RigConfig, duration_s: float) -> list[tuple[float, float]]:
    async with Subscriber(cfg.stream_url, messages.subscribe(snapshot=False)) as sub:
        await asyncio.sleep(duration_s)
    return [
        (recv_ns / 1e9, (recv_ns - int(f["ts_ns"])) / 1e6)
        for recv_ns, f in sub.frames
        if isinstance(f.get("ts_ns"), int) and "seq" in f
    ]


def latency_samples(cfg: RigConfig, duration_s: float) -> list[tuple[float, float]]:
    """(receive time in Unix s, latency in ms) of every live envelope for ``duration_s``."""
    return asyncio.run(_collect(cfg, duration_s))
