"""Resume is honest: a client resumes across a hole the backend cannot fill, and says so.

The rig's own publisher (its own run_id) sends a known stream: mostly ephemeral
``market_data``, every tenth a critical ``alert``. A client's resume point is taken in
the middle of it; then a hole is made behind the client's back: the backend is SIGKILLed
and restarted (its ring loses the ephemeral envelopes), or the ring is overflowed with
more envelopes than it holds. The client then resumes and reads on while more traffic
flows. Only drives and records (``ResumeHistory``); ``judge_resume`` decides whether
``resumed: true`` was true.
"""

from __future__ import annotations

import asyncio
import json
import time

from websockets.asyncio.client import connect

from wsrig import messages
from wsrig.clients import MAX_FRAME, Publisher, publisher_session
from wsrig.config import RigConfig
from wsrig.probe import progress
from wsrig.scenario import stored_critical_seqs
from wsrig.scenario_history import ClientLog, ResumeHistory
from wsrig.stack import DockerStack

__all__ = ["run_resume_honesty"]

CRITICAL_EVERY = 10


def _type(seq: int) -> str:
    return "alert" if seq % CRITICAL_EVERY == 0 else "market_data"


async def _publish(pub: Publisher, count: int, window: int, timeout_s: float) -> None:
    """``count`` more envelopes of the known stream, at most ``window`` unacked; then all acked."""
    for _ in range(count):
        if pub.seq - pub.acked >= window:
            await pub.wait_ack(pub.seq - window // 2, timeout_s)
        await pub.publish(_type(pub.seq + 1))
    await pub.wait_ack(pub.seq, timeout_s)


async def run_resume_honesty(
    cfg: RigConfig,
    stack: DockerStack,
    *,
    hole: str,
    before: int,
    live: int,
    ring_size: int,
    window: int,
    timeout_s: float,
) -> ResumeHistory:
    """``before`` envelopes, resume point at half of them, the hole (``restart`` or
    ``overflow``), then a client resumes while ``live`` more envelopes are sent."""
    name = f"resume_after_{hole}"
    async with Publisher(cfg.ingest_url, cfg.auth_token, messages.new_run_id("resume")) as pub:
        run_id = pub.run_id
        await _publish(pub, before, window, timeout_s)
        resume_after = before // 2
        last_sent = pub.seq
        if hole == "overflow":
            progress(f"{name}: {ring_size + before} more envelopes to push seq {resume_after} out of the ring")
            await _publish(pub, ring_size + before, window, timeout_s)
            last_sent = pub.seq
    if hole == "restart":
        progress(f"{name}: SIGKILL and restart of the backend (seq {last_sent} of run {run_id[:14]} acked)")
        await asyncio.to_thread(stack.kill, cfg.dashboard_service)
        await asyncio.to_thread(stack.start, cfg.dashboard_service)
    pub = await publisher_session(cfg.ingest_url, cfg.auth_token, run_id, timeout_s)
    pub.seq = max(pub.seq, last_sent)  # go on after what was sent, whatever the welcome says
    frames: list[tuple[int, dict]] = []
    snapshot: dict = {}
    subscribe = messages.subscribe(resume=(run_id, resume_after))
    async with connect(cfg.stream_url, open_timeout=10, max_size=MAX_FRAME) as ws:
        await ws.send(json.dumps(subscribe))

        async def read() -> None:
            async for raw in ws:
                frame = json.loads(raw)
                if frame.get("type") == "snapshot":
                    snapshot.update(frame)
                elif frame.get("run_id") == run_id:
                    frames.append((time.time_ns(), frame))

        reader = asyncio.create_task(read())
        live_from = pub.seq + 1
        await _publish(pub, live, window, timeout_s)
        final = pub.seq
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and max((f["seq"] for _, f in frames), default=0) < final:
            await asyncio.sleep(0.05)
        reader.cancel()
    await pub.__aexit__(None, None, None)
    stored = await asyncio.to_thread(stored_critical_seqs, cfg, run_id)
    progress(f"{name}: resumed={snapshot.get('resumed')}, {len(frames)} envelopes after seq {resume_after}")
    return ResumeHistory(
        name=name,
        hole=hole,
        run_id=run_id,
        resume_after=resume_after,
        last_before_resume=last_sent,
        live_from=live_from,
        final_seq=final,
        critical_every=CRITICAL_EVERY,
        resumed=snapshot.get("resumed"),
        client=ClientLog.of(frames, 1, [], []),
        stored=sorted(stored),
    )
