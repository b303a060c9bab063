"""Open N /ws/stream clients at a fixed arrival rate from one pinned process; print connect times.

A probe for "who stalls the handshakes": it reports connect P50/P90/P99/max, this
process's own event-loop lag (so a late rig is told apart from a late server) and the
clients slower than 30 ms with their wall-clock start (to line up with
``scripts/runqueue_blame.py``). Used in session 6 to find the Docker healthchecks that
stalled the backend's core (docs/BENCHMARKS.md).

    .venv/bin/python scripts/connect_storm.py --clients 1000 --rate 200 --cpu 0
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import time

from wsrig.hdr import LatencyHistogram
from wsrig.load import evloop
from wsrig.load.lean_client import open_stream
from wsrig.load.subscriber import CONNECT_CONCURRENCY, subscribe_frame
from wsrig.looplag import probe_loop


async def storm(url: str, clients: int, rate: float) -> None:
    lag = LatencyHistogram()
    probe = asyncio.create_task(probe_loop(lag))
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    times: list[tuple[float, float]] = []
    streams = []
    t0, wall0 = time.monotonic(), time.time()

    async def one(i: int) -> None:
        await asyncio.sleep(max(0.0, t0 + i / rate - time.monotonic()))
        async with gate:
            start = time.perf_counter_ns()
            stream = await open_stream(url + "/ws/stream", lambda _raw, _ns: None, 10)
            times.append((time.monotonic() - t0, (time.perf_counter_ns() - start) / 1e6))
            streams.append(stream)
            stream.send_json(subscribe_frame("STORM"))

    await asyncio.gather(*(one(i) for i in range(clients)))
    ms = sorted(t for _, t in times)
    pick = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]  # noqa: E731
    print(
        f"connect ms: p50 {pick(0.5):.1f} p90 {pick(0.9):.1f} p99 {pick(0.99):.1f} max {ms[-1]:.1f} | "
        f"own loop lag p99 {lag.percentile_ms(99):.1f} max {lag.max_ms():.1f}"
    )
    slow = [(round(wall0 + a, 2), round(b, 1)) for a, b in times if b > 30]
    print(f"slower than 30 ms ({len(slow)}), wall-clock start and ms: {slow[:20]}")
    await asyncio.gather(*(s.close() for s in streams))
    probe.cancel()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="ws://127.0.0.1:8000")
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--cpu", type=int, default=None, help="pin this process to one core (the rig's)")
    args = ap.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    gc.freeze()
    evloop.run(storm(args.url, args.clients, args.rate))


if __name__ == "__main__":
    main()
