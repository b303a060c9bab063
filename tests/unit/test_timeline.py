"""Tests of wsrig.timeline: status documents -> timeline rows; the sampler is bounded."""

from __future__ import annotations

from wsrig.timeline import COLUMNS, StatusTimeline, timeline_row

BOT = {"run_id": "r1", "last_seq": 10, "acked_seq": 9, "connected": True, "queue_depth": 1, "outbox_depth": 0,
       "trading": {"trades": 2}, "reconnects": 0, "rss_bytes": 100}  # fmt: skip
BACKEND = {"counters": {"received": 9, "broadcast": 18}, "runs": {"r1": {"acked_seq": 9}}, "publisher_count": 1,
           "client_count": 2, "rss_bytes": 200}  # fmt: skip


def test_row_has_every_column_from_both_sources():
    """Both documents fill their columns; booleans become 0/1; the run's acked seq is found."""
    row = dict(zip(COLUMNS, timeline_row(1.5, BOT, BACKEND), strict=True))
    assert row["t"] == 1.5 and row["bot_connected"] == 1 and row["bot_trades"] == 2
    assert row["backend_acked_seq"] == 9 and row["backend_broadcast"] == 18


def test_unreachable_service_leaves_empty_cells():
    """A service that did not answer gives empty cells, not zeros."""
    row = dict(zip(COLUMNS, timeline_row(2.0, None, BACKEND, "r1"), strict=True))
    assert row["bot_last_seq"] == "" and row["backend_received"] == 9


def test_sampler_stops_at_max_rows():
    """The sampling loop is bounded in rows (and a failing fetch is an empty row, not a crash)."""

    def boom() -> dict:
        raise ConnectionError("down")

    with StatusTimeline(lambda: BOT, boom, interval=0.0, max_rows=5) as tl:
        for _ in range(200):
            if len(tl.rows) >= 5:
                break
            tl._stop.wait(0.01)
    assert len(tl.rows) == 5 and tl.rows[0][COLUMNS.index("backend_received")] == ""
