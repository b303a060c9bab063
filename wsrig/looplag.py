"""Event-loop lag of a rig process, sampled continuously while it measures.

A probe task sleeps a fixed interval and records how much later than asked it woke up.
A rig loop that runs late timestamps arrivals late, so every latency it reports in that
time is partly its own; ``wsrig.righealth`` turns the figures into ``invalid``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from wsrig.hdr import LatencyHistogram
from wsrig.righealth import ProcessHealth, process_cpu_s

__all__ = ["LoopLag", "probe_loop", "watch_loop"]

PROBE_S = 0.01


@dataclass
class LoopLag:
    """What ``watch_loop`` saw: lag histogram and CPU seconds over the watched block."""

    name: str
    hist: LatencyHistogram = field(default_factory=LatencyHistogram)
    cpu_s: float = 0.0

    def health(self) -> ProcessHealth:
        return ProcessHealth(self.name, round(self.hist.percentile_ms(99), 3), round(self.hist.max_ms(), 3), self.cpu_s)


async def probe_loop(hist: LatencyHistogram) -> None:
    """Until cancelled: how late this loop wakes from a 10 ms sleep, into ``hist``."""
    interval_ns = int(PROBE_S * 1e9)
    while True:
        t0 = time.perf_counter_ns()
        await asyncio.sleep(PROBE_S)
        hist.record_ns(max(0, time.perf_counter_ns() - t0 - interval_ns))


@contextlib.asynccontextmanager
async def watch_loop(name: str) -> AsyncIterator[LoopLag]:
    """Sample this loop's lag (and this process's CPU) for the duration of the block."""
    lag = LoopLag(name)
    cpu0 = process_cpu_s()
    task = asyncio.create_task(probe_loop(lag.hist))
    try:
        yield lag
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        lag.cpu_s = process_cpu_s() - cpu0
