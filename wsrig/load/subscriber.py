"""Subscriber processes: many ``/ws/stream`` connections recording latency into HDR.

They run in processes of their own so the rig does not measure its own saturation in
the publisher's loop; each process keeps one merged recorder and reports encoded
histograms at the end. An event-loop lag probe says whether the process itself was
late (then its latencies are the rig's, not the backend's).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import time
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from wsrig.hdr import LatencyHistogram
from wsrig.load.recorder import SeqTracker, StreamRecorder

__all__ = ["SubscriberSpec", "subscriber_process"]

LOOP_PROBE_S = 0.01
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


class _Conn:
    def __init__(self) -> None:
        self.seq = SeqTracker()
        self.close_code: int | None = None
        self.ws: ClientConnection | None = None


async def _open(spec: SubscriberSpec, conn: _Conn, connect_hist: LatencyHistogram, gate: asyncio.Semaphore) -> None:
    sub = {"type": "subscribe", "symbols": [spec.symbol], "snapshot": False}
    async with gate:
        t0 = time.perf_counter_ns()
        conn.ws = await connect(
            spec.ws_url + "/ws/stream", open_timeout=spec.open_timeout_s, compression=None, max_size=2**20
        )
        connect_hist.record_ns(time.perf_counter_ns() - t0)
        await conn.ws.send(json.dumps(sub))


async def _consume(spec: SubscriberSpec, conn: _Conn, rec: StreamRecorder) -> None:
    assert conn.ws is not None
    loads, now_ns = json.loads, time.time_ns
    try:
        async for raw in conn.ws:
            recv_ns = now_ns()
            env = loads(raw)
            if env.get("run_id") != spec.run_id:
                continue
            data = env["data"]
            rec.record(data["intended_ns"], data["sent_ns"], recv_ns)
            conn.seq.see(env["seq"])
    except ConnectionClosed as exc:
        conn.close_code = exc.rcvd.code if exc.rcvd else 1006


async def _loop_probe(hist: LatencyHistogram, stop: asyncio.Event) -> None:
    while not stop.is_set():
        t0 = time.perf_counter_ns()
        await asyncio.sleep(LOOP_PROBE_S)
        hist.record_ns(max(0, time.perf_counter_ns() - t0 - int(LOOP_PROBE_S * 1e9)))


async def _run(spec: SubscriberSpec, stop_flag: Any, progress: Any, out: Any) -> dict[str, Any]:
    conns = [_Conn() for _ in range(spec.connections)]
    connect_hist, loop_lag, rec = LatencyHistogram(), LatencyHistogram(), StreamRecorder()
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    opened = await asyncio.gather(*(_open(spec, c, connect_hist, gate) for c in conns), return_exceptions=True)
    failures = [f"{type(e).__name__}: {e}" for e in opened if isinstance(e, BaseException)]
    out.put(("ready", spec.index, {"connected": spec.connections - len(failures), "failures": failures[:5]}))
    stop = asyncio.Event()
    tasks = [asyncio.create_task(_consume(spec, c, rec)) for c in conns if c.ws is not None]
    probe = asyncio.create_task(_loop_probe(loop_lag, stop))
    deadline = time.monotonic() + spec.max_s
    while not stop_flag.is_set() and time.monotonic() < deadline:
        progress[spec.index] = sum(c.seq.received for c in conns)
        await asyncio.sleep(0.05)
    progress[spec.index] = sum(c.seq.received for c in conns)
    stop.set()
    for c in conns:
        if c.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(c.ws.close(), 2)
    for t in [*tasks, probe]:
        t.cancel()
    await asyncio.gather(*tasks, probe, return_exceptions=True)
    return {
        "index": spec.index,
        "connections": spec.connections,
        "connected": spec.connections - len(failures),
        "connect_failures": failures[:5],
        "connect_hist": connect_hist.encode(),
        "recorder": rec.encode(),
        "received": [c.seq.received for c in conns],
        "missing": sum(c.seq.missing for c in conns),
        "out_of_order": sum(c.seq.out_of_order for c in conns),
        "closed": [c.close_code for c in conns if c.close_code is not None],
        "loop_lag_p99_ms": round(loop_lag.percentile_ms(99), 3),
        "loop_lag_max_ms": round(loop_lag.max_ms(), 3),
    }


def subscriber_process(spec: SubscriberSpec, stop_flag: Any, progress: Any, out: Any) -> None:
    """Process entry point: puts ``("ready", ...)`` once connected, then ``("result", ...)``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        out.put(("result", spec.index, asyncio.run(_run(spec, stop_flag, progress, out))))
    except Exception as exc:  # reported to the runner, which fails the scenario with it
        out.put(("result", spec.index, {"error": f"{type(exc).__name__}: {exc}"}))
