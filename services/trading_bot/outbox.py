"""The on-disk outbox: unacked critical envelopes in SQLite under the data directory.

A bot restart gets a new run_id, but the messages of earlier runs that were never
acked stay in this file until they are delivered, so a crash forgets nothing.
Writes are batched: ``add``/``ack_upto`` go into the open transaction and ``flush``
(once per simulation tick) commits it.
"""

from __future__ import annotations

import os
import sqlite3
from collections import Counter

from trading_bot.publisher_core import Frame

__all__ = ["SqliteOutbox"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    run_id  TEXT    NOT NULL,
    seq     INTEGER NOT NULL,
    type    TEXT    NOT NULL,
    text    TEXT    NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS runs (
    ord     INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id  TEXT    NOT NULL UNIQUE,
    started REAL    NOT NULL DEFAULT (julianday('now'))
);
"""


class SqliteOutbox:
    """``Outbox`` on a SQLite file (WAL, synchronous=NORMAL); depth counts kept in memory."""

    def __init__(self, path: str) -> None:
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._db.execute("DELETE FROM runs WHERE run_id NOT IN (SELECT run_id FROM outbox)")
        self._depth: Counter[str] = Counter()
        self._order: dict[str, int] = {}  # run_id -> order of first appearance
        for run_id, count, order in self._db.execute(
            "SELECT o.run_id, COUNT(*), COALESCE(r.ord, 0) FROM outbox o "
            "LEFT JOIN runs r ON r.run_id = o.run_id GROUP BY o.run_id"
        ):
            self._depth[run_id] = count
            self._order[run_id] = order
        self._in_tx = False

    @classmethod
    def in_dir(cls, data_dir: str) -> SqliteOutbox:
        return cls(os.path.join(data_dir, "outbox.db"))

    def _begin(self) -> None:
        if not self._in_tx:
            self._db.execute("BEGIN")
            self._in_tx = True

    # --- Outbox --------------------------------------------------------------------

    def add(self, run_id: str, seq: int, msg_type: str, text: str) -> None:
        self._begin()
        self._db.execute(
            "INSERT OR REPLACE INTO outbox (run_id, seq, type, text) VALUES (?, ?, ?, ?)",
            (run_id, seq, msg_type, text),
        )
        if run_id not in self._order:
            self._db.execute("INSERT OR IGNORE INTO runs (run_id) VALUES (?)", (run_id,))
            row = self._db.execute("SELECT ord FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            self._order[run_id] = int(row[0])
        self._depth[run_id] += 1

    def ack_upto(self, run_id: str, seq: int) -> int:
        if self._depth.get(run_id, 0) == 0:
            return 0
        self._begin()
        cur = self._db.execute("DELETE FROM outbox WHERE run_id = ? AND seq <= ?", (run_id, seq))
        freed = max(cur.rowcount, 0)
        self._depth[run_id] -= freed
        if self._depth[run_id] <= 0:
            del self._depth[run_id]
        return freed

    def pending_after(self, run_id: str, seq: int) -> list[Frame]:
        rows = self._db.execute(
            "SELECT seq, type, text FROM outbox WHERE run_id = ? AND seq > ? ORDER BY seq",
            (run_id, seq),
        )
        return [Frame(s, t, x) for s, t, x in rows]

    def depth(self, run_id: str | None = None) -> int:
        if run_id is not None:
            return self._depth.get(run_id, 0)
        return sum(self._depth.values())

    def runs(self) -> list[str]:
        live = [r for r, n in self._depth.items() if n > 0]
        return sorted(live, key=lambda r: self._order.get(r, 0))

    def flush(self) -> None:
        if self._in_tx:
            self._db.execute("COMMIT")
            self._in_tx = False

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._db.close()
