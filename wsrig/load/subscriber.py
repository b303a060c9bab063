"""Subscriber processes: many ``/ws/stream`` connections recording latency into HDR.

They run in processes of their own so the rig does not measure its own saturation in
the publisher's loop; each process keeps one recorder and reports its encoded
histograms and counts at the end, as one part of the run (``wsrig.load.merge``). An event-loop lag probe says whether the process itself was
late (then its latencies are the rig's, not the backend's).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import resource
import time
from dataclasses import dataclass
from typing import Any

from wsrig import messages
from wsrig.hdr import LatencyHistogram
from wsrig.load import evloop, layout
from wsrig.load.layout import read_fields
from wsrig.load.lean_client import LeanStream, open_stream
from wsrig.load.recorder import SeqTracker, StreamRecorder
from wsrig.looplag import probe_loop
from wsrig.righealth import process_cpu_s

__all__ = ["SubscriberSpec", "subscriber_process"]

CONNECT_CONCURRENCY = 50


@dataclass(frozen=True)
class SubscriberSpec:
    index: int
    ws_url: str
    connections: int
    run_id: str
    symbol: str
    max_s: float = 600.0
    open_timeout_s: float = 10.0
    connect_rate: float | None = None
    start_at: float = 0.0
    msg_type: str = "market_data"


def subscribe_frame(symbol: str, msg_type: str = "market_data") -> dict[str, Any]:
    """Only the load publisher's stream: its message type on its own symbol.

    A symbol filter alone still lets every symbol-less bot message through (portfolio,
    heartbeat, alerts: ~4/s here, more when the bot trades more). To 1,000 clients that
    is 4,000+ deliveries/s the plan does not count, in bursts of 1,000 writes, and
    connect P99 then measured the bot's activity as much as the bridge (33-104 ms with
    the bot running, 7-15 ms with it paused, same backend).
    """
    return messages.subscribe(types=[msg_type], symbols=[symbol], snapshot=False)


class _Conn:
    """One connection's order tracking and close code."""

    def __init__(self, spec: SubscriberSpec, rec: StreamRecorder) -> None:
        self.seq = SeqTracker()
        self.stream: LeanStream | None = None
        self._run_id = spec.run_id
        self._prefix = layout.prefix(spec.run_id, spec.msg_type)
        # Bound once: on_text runs for every delivered message.
        self._record = rec.record
        self._see = self.seq.see

    def on_text(self, raw: bytes, recv_ns: int) -> None:
        """Per delivered frame: the run's three numbers (fixed offsets), latency, order."""
        fields = read_fields(raw, self._prefix, self._run_id)
        if fields is None:  # not an envelope of this load run
            return
        self._record(fields[1], fields[2], recv_ns)
        self._see(fields[0])

    @property
    def close_code(self) -> int | None:
        if self.stream is None or not self.stream.closed.done():
            return None
        return self.stream.closed.result()


async def _open(
    spec: SubscriberSpec, conn: _Conn, connect_hist: LatencyHistogram, gate: asyncio.Semaphore, at: float
) -> None:
    await asyncio.sleep(max(0.0, at - time.monotonic()))
    async with gate:
        t0 = time.perf_counter_ns()
        conn.stream = await open_stream(spec.ws_url + "/ws/stream", conn.on_text, spec.open_timeout_s)
        connect_hist.record_ns(time.perf_counter_ns() - t0)
        conn.stream.send_json(subscribe_frame(spec.symbol, spec.msg_type))


async def _run(spec: SubscriberSpec, stop_flag: Any, progress: Any, out: Any) -> dict[str, Any]:
    connect_hist, loop_lag, rec = LatencyHistogram(), LatencyHistogram(), StreamRecorder()
    conns = [_Conn(spec, rec) for _ in range(spec.connections)]
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    # Clients arrive at ``connect_rate`` per second (an arrival schedule, as real users
    # do), or all at once when it is None; connect time is measured per client.
    # All processes start connecting at one agreed instant, after every one of them has
    # imported its modules: otherwise early connects compete with later processes' start-up.
    await asyncio.sleep(max(0.0, spec.start_at - time.time()))
    # The loop is watched from the first connect: connect times are the rig's to judge too.
    probe = asyncio.create_task(probe_loop(loop_lag))
    t0 = time.monotonic()
    step = 1.0 / spec.connect_rate if spec.connect_rate else 0.0
    opened = await asyncio.gather(
        *(_open(spec, c, connect_hist, gate, t0 + i * step) for i, c in enumerate(conns)), return_exceptions=True
    )
    failures = [f"{type(e).__name__}: {e}" for e in opened if isinstance(e, BaseException)]
    out.put(("ready", spec.index, {"connected": spec.connections - len(failures), "failures": failures[:5]}))
    cpu_at_ready = process_cpu_s()  # the rig's cost per delivery counts from here, not the handshakes
    # The connections are long-lived: out of the collector's reach, so a full collection
    # does not walk them all (seen: loop lag max 95 ms with 1,000 connections in one process).
    gc.collect()
    gc.freeze()
    deadline = time.monotonic() + spec.max_s
    while not stop_flag.is_set() and time.monotonic() < deadline:
        progress[spec.index] = sum(c.seq.received for c in conns)
        rec.flush()
        await asyncio.sleep(0.05)
    progress[spec.index] = sum(c.seq.received for c in conns)
    cpu_s = process_cpu_s() - cpu_at_ready
    closed_by_backend = [c.close_code for c in conns if c.close_code is not None]
    await asyncio.gather(*(c.stream.close() for c in conns if c.stream is not None), return_exceptions=True)
    probe.cancel()
    await asyncio.gather(probe, return_exceptions=True)
    return {
        "name": f"subscriber process {spec.index}",
        "connections": spec.connections,
        "connected": spec.connections - len(failures),
        "connect_failures": failures[:5],
        "connect_hist": connect_hist.encode(),
        **rec.encode(),
        "received": sum(c.seq.received for c in conns),
        "duplicated": sum(c.seq.duplicated for c in conns),
        "reordered": sum(c.seq.reordered for c in conns),
        "closed": closed_by_backend,
        "loop_lag_hist": loop_lag.encode(),
        "cpu_s": round(cpu_s, 4),
    }


def subscriber_process(spec: SubscriberSpec, stop_flag: Any, progress: Any, out: Any) -> None:
    """Process entry point: puts ``("ready", ...)`` once connected, then ``("result", part)``
    (the part a run's history keeps: ``wsrig.load.merge``)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        out.put(("result", spec.index, evloop.run(_run(spec, stop_flag, progress, out))))
    except Exception as exc:  # reported to the runner, which fails the scenario with it
        out.put(
            (
                "result",
                spec.index,
                {"name": f"subscriber process {spec.index}", "error": f"{type(exc).__name__}: {exc}"},
            )
        )


def spawn_subscribers(ctx: Any, specs: list[SubscriberSpec], stop_flag: Any, progress: Any, out: Any) -> list[Any]:
    """One started process per spec (the local rig's and a swarm worker's, alike)."""
    procs = [
        ctx.Process(target=subscriber_process, args=(spec, stop_flag, progress, out), daemon=True) for spec in specs
    ]
    for p in procs:
        p.start()
    return procs
