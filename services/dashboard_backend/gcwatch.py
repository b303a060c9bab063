"""Garbage-collector pauses, timed through ``gc.callbacks``. No I/O but one log line.

The event loop stops while CPython collects; with 1,000 clients a full collection that
frees the cycles closed connections leave behind took 90-220 ms here, long enough to
break a connect-time P99. Counting the pauses makes that visible in ``/metrics``
instead of leaving it to be guessed from latency tails.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

__all__ = ["ChurnCollector", "GcWatch"]

log = logging.getLogger("dashboard_backend.gc")


class GcWatch:
    """Pause count, total and longest per generation; pauses over ``log_over_s`` are logged."""

    def __init__(self, log_over_s: float = 0.05) -> None:
        self.log_over_s = log_over_s
        self.count = [0, 0, 0]
        self.total_s = [0.0, 0.0, 0.0]
        self.max_s = [0.0, 0.0, 0.0]
        self._started = 0.0

    def install(self) -> None:
        if self._on_gc not in gc.callbacks:
            gc.callbacks.append(self._on_gc)

    def uninstall(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        self.record(info["generation"], time.perf_counter() - self._started, info.get("collected", 0))

    def record(self, generation: int, pause_s: float, collected: int = 0) -> None:
        self.count[generation] += 1
        self.total_s[generation] += pause_s
        self.max_s[generation] = max(self.max_s[generation], pause_s)
        if pause_s > self.log_over_s:
            log.info("gc pause: generation %d took %.1f ms (%d objects freed)", generation, pause_s * 1e3, collected)


class ChurnCollector:
    """Asks for one full collection after many clients left, once the leaving has stopped.

    A closed connection leaves reference cycles (websockets' connection with its tasks,
    futures and transport: 60-80 objects) that only a full collection frees. CPython runs
    one when the long-lived heap grew by a quarter, which can be long after a crowd of
    clients left, so their memory is not reused by the next crowd. Collecting when the
    churn is over makes memory follow the number of clients; the pause (60-130 ms with
    1,000 clients' garbage here) falls where clients are leaving, not arriving.
    """

    def __init__(self, after_closes: int = 200, quiet_s: float = 2.0) -> None:
        self.after_closes = after_closes
        self.quiet_s = quiet_s
        self.pending = 0
        self._last_close = 0.0

    def closed(self, now: float) -> None:
        self.pending += 1
        self._last_close = now

    def due(self, now: float) -> bool:
        return self.pending >= self.after_closes and now - self._last_close >= self.quiet_s

    def collected(self) -> None:
        self.pending = 0
