"""Tests of trading_bot.outbox: the SQLite outbox on disk."""

from __future__ import annotations

import json

from trading_bot.outbox import SqliteOutbox
from trading_bot.publisher_core import PublisherCore
from wscontract import validate_envelope


def test_add_pending_ack(tmp_path):
    """pending_after is in seq order; ack_upto frees cumulatively and counts."""
    box = SqliteOutbox.in_dir(str(tmp_path))
    for seq in (3, 1, 2, 5):
        box.add("run-aaaa-1", seq, "trade", f"t{seq}")
    box.flush()
    assert [f.seq for f in box.pending_after("run-aaaa-1", 1)] == [2, 3, 5]
    assert box.depth("run-aaaa-1") == 4
    assert box.ack_upto("run-aaaa-1", 3) == 3
    assert box.depth() == 1 and [f.text for f in box.pending_after("run-aaaa-1", 0)] == ["t5"]
    assert box.ack_upto("run-aaaa-1", 9) == 1 and box.runs() == []
    box.close()


def test_survives_reopen_and_finds_old_runs(tmp_path):
    """Committed messages survive a reopen; an old run's pending ones are listed first."""
    box = SqliteOutbox.in_dir(str(tmp_path))
    box.add("run-old-0001", 1, "order", "o1")
    box.add("run-old-0001", 2, "trade", "t2")
    box.flush()
    box.add("run-mid-0002", 7, "gap", "g7")
    box.flush()
    box.ack_upto("run-old-0001", 1)
    box.close()

    again = SqliteOutbox.in_dir(str(tmp_path))
    assert again.runs() == ["run-old-0001", "run-mid-0002"]
    assert again.depth() == 2
    frame = again.pending_after("run-old-0001", 0)[0]
    assert (frame.seq, frame.type, frame.text) == (2, "trade", "t2")
    core = PublisherCore("run-new-0003", again, 10)
    assert core.old_runs() == ["run-old-0001", "run-mid-0002"]
    again.close()


def test_uncommitted_writes_are_not_durable(tmp_path):
    """Only flush() commits; a crash before it loses the open batch, not older ones."""
    box = SqliteOutbox.in_dir(str(tmp_path))
    box.add("run-aaaa-1", 1, "trade", "t1")
    box.flush()
    box.add("run-aaaa-1", 2, "trade", "t2")
    box._db.rollback() if box._db.in_transaction else None  # simulate a crash mid-batch
    box._in_tx = False
    other = SqliteOutbox.in_dir(str(tmp_path))
    assert [f.seq for f in other.pending_after("run-aaaa-1", 0)] == [1]
    other.close()


def test_core_with_sqlite_outbox_resends_after_restart(tmp_path):
    """A core's unacked envelopes (queue mirrored) are found by the next process's core."""
    box = SqliteOutbox.in_dir(str(tmp_path))
    core = PublisherCore("run-first-01", box, 10)
    for _ in range(3):
        core.produce("alert", {"level": "info", "message": "x"})
        core.produce("heartbeat", {"uptime_s": 1})
    core.commit()
    core.on_welcome(0)
    core.on_ack(2)
    core.commit()
    box.close()

    box2 = SqliteOutbox.in_dir(str(tmp_path))
    core2 = PublisherCore("run-second-2", box2, 10)
    assert core2.old_runs() == ["run-first-01"]
    frames = core2.old_run_frames("run-first-01", 2)
    assert [(f.seq, f.type) for f in frames] == [(3, "alert"), (4, "heartbeat"), (5, "alert"), (6, "heartbeat")]
    assert core2.restart_gaps == 0
    box2.close()


def test_undeclared_drops_of_a_crashed_run_are_declared_on_restart(tmp_path):
    """Drops the old process had not declared yet get a restart gap at the old run's next seq."""
    box = SqliteOutbox.in_dir(str(tmp_path))
    clock = iter([0.0] + [0.5] * 100).__next__  # first gap at once, then rate-limited
    core = PublisherCore("run-crash-01", box, 2, clock=clock)
    for _ in range(3):
        core.produce("heartbeat", {"uptime_s": 1})  # 1 2 3 -> drops 1 -> gap 4
    core.produce("alert", {"level": "info", "message": "x"})  # 5
    core.produce("heartbeat", {"uptime_s": 1})  # 6 -> drops 2 (pending, undeclared)
    core.produce("heartbeat", {"uptime_s": 1})  # 7 -> drops 3 (pending, undeclared)
    core.commit()
    box._db.close()  # crash: no graceful close

    box2 = SqliteOutbox.in_dir(str(tmp_path))
    core2 = PublisherCore("run-after-02", box2, 2)
    frames = core2.old_run_frames("run-crash-01", 0)
    assert [(f.seq, f.type) for f in frames] == [
        (4, "gap"),
        (5, "alert"),
        (6, "heartbeat"),
        (7, "heartbeat"),
        (8, "gap"),
    ]
    env = json.loads(frames[-1].text)
    validate_envelope(env)
    assert env["run_id"] == "run-crash-01"
    assert env["data"]["ranges"] == [[2, 3]] and env["data"]["reason"] == "publisher_restart"
    assert env["data"]["counts_by_type"] == {"heartbeat": 2}
    assert json.loads(frames[0].text)["data"]["ranges"] == [[1, 1]]
    assert box2.dropped_after("run-crash-01", 0) == []
    assert core2.old_run_frames("run-crash-01", 8) == [] and core2.old_runs() == []
    box2.close()


def test_outbox_migrates_an_old_not_null_schema(tmp_path):
    """An outbox from an older bot (text NOT NULL) is upgraded, so marking a drop works."""
    import sqlite3

    path = tmp_path / "outbox.db"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE outbox (run_id TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL,"
        " text TEXT NOT NULL, PRIMARY KEY (run_id, seq)) WITHOUT ROWID;"
        "INSERT INTO outbox VALUES ('old-run-1', 1, 'trade', '{}');"
    )
    db.commit()
    db.close()
    box = SqliteOutbox(str(path))
    box.add("run-new-1", 1, "market_data", "{}")
    box.mark_dropped("run-new-1", 1)
    box.flush()
    rows = sqlite3.connect(path).execute("SELECT run_id, seq, text FROM outbox ORDER BY run_id").fetchall()
    assert ("old-run-1", 1, "{}") in rows and ("run-new-1", 1, None) in rows
