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
from collections import Counter
from collections.abc import Iterable
from typing import Any

__all__ = ["AUTOMATIC_FULL_OFF", "FullCollections", "GcWatch", "heap_census", "take_over_full_collections"]

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


AUTOMATIC_FULL_OFF = 1 << 30  # gen-2 threshold no run reaches: CPython never starts a full collection itself


def take_over_full_collections() -> tuple[int, int, int]:
    """Stop CPython's own full collections; the caller runs them (``FullCollections``).

    CPython starts a full collection when the long-lived heap grew by a quarter. While
    1,000 clients connect that happens several times, each pause walking every live
    connection (60-130 ms here) and stalling every handshake in flight: the connect P99
    then depends on where the pauses land. Young generations are still collected as
    usual. Returns the previous thresholds, for ``gc.set_threshold(*previous)``.
    """
    previous = gc.get_threshold()
    gc.set_threshold(previous[0], previous[1], AUTOMATIC_FULL_OFF)
    return previous


class FullCollections:
    """When to run a full collection: after client churn, or periodically, never mid-arrival.

    A closed connection leaves reference cycles (websockets' connection with its tasks,
    futures and transport: 60-80 objects) that only a full collection frees. Two triggers:

    - churn: >= ``after_closes`` clients left and none has left for ``quiet_s``. Memory
      then follows the number of clients, and the pause falls where clients leave.
    - period: ``every_s`` since the last full collection, for garbage from anything else.
      It waits while clients are arriving (a handshake in the last ``quiet_s``), but no
      longer than ``max_defer_s``, so memory stays bounded under any traffic.
    """

    def __init__(
        self,
        after_closes: int = 200,
        quiet_s: float = 2.0,
        every_s: float = 60.0,
        max_defer_s: float = 60.0,
        now: float = 0.0,
    ) -> None:
        self.after_closes = after_closes
        self.quiet_s = quiet_s
        self.every_s = every_s
        self.max_defer_s = max_defer_s
        self.pending = 0
        self._last_close = -float("inf")
        self._last_arrival = -float("inf")
        self._last_full = now

    def closed(self, now: float) -> None:
        self.pending += 1
        self._last_close = now

    def arrived(self, now: float) -> None:
        self._last_arrival = now

    def due(self, now: float) -> bool:
        if self.pending >= self.after_closes and now - self._last_close >= self.quiet_s:
            return True
        since = now - self._last_full
        if since >= self.every_s + self.max_defer_s:
            return True
        return since >= self.every_s and now - self._last_arrival >= self.quiet_s

    def collected(self, now: float) -> None:
        self.pending = 0
        self._last_full = now


def heap_census(objects: Iterable[object], top: int = 15) -> str:
    """One line: how many objects the collector tracks, and the most common types.

    Answers "what is this process keeping?" from outside (``docker kill -s USR1``):
    full-collection pauses grow with the tracked heap, so a stage that leaves objects
    behind slows every later one.
    """
    counts = Counter(type(o).__qualname__ for o in objects)
    total = sum(counts.values())
    most = ", ".join(f"{name}={n}" for name, n in counts.most_common(top))
    return f"heap census: {total} tracked objects; {most}"
