"""A status timeline: both services' status endpoints sampled every second.

``timeline_row`` is pure (two status documents -> one CSV row); ``StatusTimeline`` is
the thread that samples them while a stage runs. A service that does not answer
leaves its cells empty, which is itself worth seeing on the timeline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["COLUMNS", "StatusTimeline", "timeline_row"]

COLUMNS = [
    "t",
    "bot_last_seq", "bot_acked_seq", "bot_connected", "bot_queue_depth", "bot_outbox_depth",
    "bot_trades", "bot_reconnects", "bot_rss_bytes",
    "backend_received", "backend_broadcast", "backend_acked_seq", "backend_publishers", "backend_clients",
    "backend_rss_bytes",
]  # fmt: skip


def timeline_row(
    t: float, bot: Mapping[str, Any] | None, backend: Mapping[str, Any] | None, run_id: str | None = None
) -> list[Any]:
    """One row of ``COLUMNS`` from bot ``/stats`` and backend ``/api/websocket/status``."""
    b = bot or {}
    s = backend or {}
    counters = s.get("counters") or {}
    run = (s.get("runs") or {}).get(run_id or b.get("run_id") or "", {})

    def cell(present: bool, value: Any) -> Any:
        if not present or value is None:
            return ""
        return int(value) if isinstance(value, bool) else value

    return [
        round(t, 3),
        cell(bot is not None, b.get("last_seq")),
        cell(bot is not None, b.get("acked_seq")),
        cell(bot is not None, b.get("connected")),
        cell(bot is not None, b.get("queue_depth")),
        cell(bot is not None, b.get("outbox_depth")),
        cell(bot is not None, (b.get("trading") or {}).get("trades")),
        cell(bot is not None, b.get("reconnects")),
        cell(bot is not None, b.get("rss_bytes")),
        cell(backend is not None, counters.get("received")),
        cell(backend is not None, counters.get("broadcast")),
        cell(backend is not None, run.get("acked_seq")),
        cell(backend is not None, s.get("publisher_count")),
        cell(backend is not None, s.get("client_count")),
        cell(backend is not None, s.get("rss_bytes")),
    ]


class StatusTimeline:
    """Samples ``bot()`` and ``backend()`` every ``interval`` s in a thread, into ``rows``."""

    def __init__(
        self,
        bot: Callable[[], Mapping[str, Any]],
        backend: Callable[[], Mapping[str, Any]],
        interval: float = 1.0,
        max_rows: int = 36_000,
    ) -> None:
        self._bot, self._backend = bot, backend
        self.interval, self.max_rows = interval, max_rows
        self.rows: list[list[Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="status-timeline", daemon=True)

    def __enter__(self) -> StatusTimeline:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    @staticmethod
    def _try(fetch: Callable[[], Mapping[str, Any]]) -> Mapping[str, Any] | None:
        try:
            return fetch()
        except Exception:  # down or slow: an empty cell on the timeline
            return None

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set() and len(self.rows) < self.max_rows:
            t = time.time()
            self.rows.append(timeline_row(t, self._try(self._bot), self._try(self._backend)))
            next_at += self.interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))
