"""The load publisher: a process that sends a schedule of envelopes to ``/ws``.

It speaks the publisher protocol (hello -> welcome -> envelopes -> cumulative acks) with
its own run_id, like the bot. Open loop: message *i* leaves at its intended time
whatever the acks do; its payload carries ``intended_ns`` and ``sent_ns`` so each
subscriber can measure from either. The send buffer is large so a slow backend delays
messages (measured) rather than the generator's loop (which would hide the delay).
Closed loop (``window``): keep at most ``window`` unacked, to find the highest rate the
backend acknowledges (ingest), not to measure latency.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import connect

from wsrig import messages
from wsrig.hdr import LatencyHistogram
from wsrig.load import evloop, layout
from wsrig.load.schedule import GeneratorHealth, Phase, Schedule
from wsrig.righealth import process_cpu_s

__all__ = ["PublisherSpec", "publish", "publisher_process"]

SEND_BUFFER_BYTES = 64 * 1024 * 1024
BLOCKED_SEND_NS = 1_000_000


@dataclass(frozen=True)
class PublisherSpec:
    ws_url: str
    token: str
    run_id: str
    phases: tuple[tuple[float, float], ...]
    start_at_ns: int = 0
    msg_type: str = "market_data"
    symbol: str = "LOADUSD"
    window: int | None = None
    hard_timeout_s: float = 120.0
    ack_timeout_s: float = 30.0

    @property
    def schedule(self) -> Schedule:
        return Schedule(tuple(Phase(r, d) for r, d in self.phases))


@dataclass
class _Acks:
    seq: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    errors: int = 0
    first_error: str = ""


def _data(spec: PublisherSpec, seq: int, intended_ns: int, sent_ns: int) -> dict[str, Any]:
    """The sample data of the type, ending with ``intended_ns`` and ``sent_ns`` (the layout's tail)."""
    data = dict(messages.SAMPLE_DATA[spec.msg_type])
    data["symbol"] = spec.symbol
    if spec.msg_type == "trade":
        data["trade_id"] = f"{spec.run_id[-8:]}-{seq}"
    data["intended_ns"] = intended_ns
    data["sent_ns"] = sent_ns
    return data


async def _read_acks(ws: Any, acks: _Acks) -> None:
    async for raw in ws:
        frame = json.loads(raw)
        if frame.get("type") == "ack":
            acks.seq = max(acks.seq, int(frame["seq"]))
            acks.changed.set()
        elif frame.get("type") == "error":
            acks.errors += 1
            acks.first_error = acks.first_error or str(frame)[:300]


def _frame(spec: PublisherSpec, seq: int, intended_ns: int, now_ns: int) -> str:
    """One envelope in the layout subscribers read at fixed offsets (``wsrig.load.layout``)."""
    env = messages.envelope(spec.run_id, seq, spec.msg_type, _data(spec, seq, intended_ns, now_ns), layout.SOURCE)
    env["ts_ns"] = intended_ns  # production time of a scheduled message is its intended time
    return layout.encode(env)


async def publish(spec: PublisherSpec) -> dict[str, Any]:
    """Run the schedule; returns counts, generator health and ack timing."""
    schedule = spec.schedule
    cpu_at_start = process_cpu_s()
    lag = LatencyHistogram()
    acks = _Acks()
    async with connect(
        spec.ws_url + "/ws", open_timeout=10, max_size=2**20, compression=None, write_limit=SEND_BUFFER_BYTES
    ) as ws:
        await ws.send(json.dumps(messages.hello(spec.run_id, spec.token, source=layout.SOURCE)))
        welcome = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if welcome.get("type") != "welcome":
            raise RuntimeError(f"expected welcome, got {str(welcome)[:200]}")
        reader = asyncio.create_task(_read_acks(ws, acks))
        t0 = max(spec.start_at_ns, time.time_ns())
        deadline = t0 + int((schedule.duration_s + spec.hard_timeout_s) * 1e9)
        sent = 0
        backpressure_ns = 0
        first_sent_ns = last_sent_ns = 0
        for i, offset in enumerate(schedule.offsets_ns()):
            intended = t0 + offset
            now = time.time_ns()
            if spec.window is None:
                if now < intended:
                    await asyncio.sleep((intended - now) / 1e9)
                    now = time.time_ns()
                lag.record_ns(max(0, now - intended))
            else:
                while sent - acks.seq >= spec.window and not reader.done():
                    acks.changed.clear()
                    await asyncio.wait_for(acks.changed.wait(), spec.ack_timeout_s)
                now = intended = time.time_ns()
            if now > deadline or reader.done():
                break
            await ws.send(_frame(spec, i + 1, intended, now))
            after = time.time_ns()
            if after - now > BLOCKED_SEND_NS:
                backpressure_ns += after - now
            sent = i + 1
            first_sent_ns = first_sent_ns or now
            last_sent_ns = now
        ack_deadline = time.monotonic() + spec.ack_timeout_s
        while acks.seq < sent and time.monotonic() < ack_deadline and not reader.done():
            acks.changed.clear()
            try:
                await asyncio.wait_for(acks.changed.wait(), max(0.01, ack_deadline - time.monotonic()))
            except TimeoutError:
                break
        all_acked_ns = time.time_ns() if acks.seq >= sent else 0
        reader.cancel()
    health = GeneratorHealth(
        planned=schedule.count,
        sent=sent,
        lag_p99_ms=round(lag.percentile_ms(99), 3),
        lag_max_ms=round(lag.max_ms(), 3),
        backpressure_s=round(backpressure_ns / 1e9, 3),
    )
    return {
        "run_id": spec.run_id,
        "planned": schedule.count,
        "sent": sent,
        "acked_seq": acks.seq,
        "errors": acks.errors,
        "first_error": acks.first_error,
        "t0_ns": t0,
        "first_sent_ns": first_sent_ns,
        "last_sent_ns": last_sent_ns,
        "all_acked_ns": all_acked_ns,
        "cpu_s": round(process_cpu_s() - cpu_at_start, 4),
        "health": health,
    }


def publisher_process(spec: PublisherSpec, out: Any) -> None:
    """Process entry point: publish and put ``("publisher", result-or-error)`` on ``out``."""
    try:
        out.put(("publisher", evloop.run(publish(spec))))
    except Exception as exc:  # reported to the runner, which fails the scenario with it
        out.put(("publisher", {"error": f"{type(exc).__name__}: {exc}"}))
