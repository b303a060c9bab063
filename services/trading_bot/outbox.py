"""The on-disk outbox: unacked envelopes in SQLite under the data directory.

A bot restart gets a new run_id, but the envelopes of earlier runs that were never
acked stay in this file until they are delivered, so a crash forgets nothing. The
ephemeral queue is mirrored here too (at most ``queue_size`` rows per run), and a
dropped ephemeral envelope keeps a row with no text until a stored ``gap`` declares
it: the next process can then declare what the crashed one had not, and the
backend's cumulative ack for the old run can advance to its end.

Writes are batched: changes go into the open transaction and ``flush`` (once per
simulation tick, before anything of that tick can be sent) commits it.
"""

from __future__ import annotations

import os
import sqlite3
from collections import Counter

from wscontract import CRITICAL_TYPES

from trading_bot.publisher_core import Frame

__all__ = ["SqliteOutbox"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    run_id  TEXT    NOT NULL,
    seq     INTEGER NOT NULL,
    type    TEXT    NOT NULL,
    text    TEXT,               -- NULL: an ephemeral envelope dropped, not yet declared
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS runs (
    ord     INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id  TEXT    NOT NULL UNIQUE,
    started REAL    NOT NULL DEFAULT (julianday('now'))
);
"""

_CRIT = "(" + ",".join(f"'{t}'" for t in sorted(CRITICAL_TYPES)) + ")"


class SqliteOutbox:
    """``Outbox`` on a SQLite file (WAL, synchronous=NORMAL); counts kept in memory."""

    def _migrate(self) -> None:
        """Upgrade an outbox written by an older bot (``text NOT NULL``) in place.

        The data volume outlives the image: without this, a new bot on an old volume
        failed every tick the first time it dropped an ephemeral message.
        """
        cols = {row[1]: row for row in self._db.execute("PRAGMA table_info(outbox)")}
        if "text" not in cols or not cols["text"][3]:  # no table yet, or already nullable
            return
        self._db.executescript(
            "BEGIN; ALTER TABLE outbox RENAME TO outbox_v0;"
            + _SCHEMA.split("CREATE TABLE IF NOT EXISTS runs")[0]
            + "INSERT INTO outbox SELECT run_id, seq, type, text FROM outbox_v0; DROP TABLE outbox_v0; COMMIT;"
        )

    def __init__(self, path: str) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._migrate()
        self._db.executescript(_SCHEMA)
        self._db.execute("DELETE FROM runs WHERE run_id NOT IN (SELECT run_id FROM outbox)")
        self._rows: Counter[str] = Counter()  # run_id -> rows
        self._crit: Counter[str] = Counter()  # run_id -> critical rows
        self._order: dict[str, int] = {}  # run_id -> order of first appearance
        for run_id, rows, crit, order in self._db.execute(
            f"SELECT o.run_id, COUNT(*), SUM(o.type IN {_CRIT}), COALESCE(r.ord, 0) "
            "FROM outbox o LEFT JOIN runs r ON r.run_id = o.run_id GROUP BY o.run_id"
        ):
            self._rows[run_id] = rows
            self._crit[run_id] = crit or 0
            self._order[run_id] = order
        self._in_tx = False

    @classmethod
    def in_dir(cls, data_dir: str) -> SqliteOutbox:
        return cls(os.path.join(data_dir, "outbox.db"))

    def _begin(self) -> None:
        if not self._in_tx:
            self._db.execute("BEGIN")
            self._in_tx = True

    # --- writes --------------------------------------------------------------------

    def add(self, run_id: str, seq: int, msg_type: str, text: str) -> None:
        self._begin()
        if run_id not in self._order:
            self._db.execute("INSERT OR IGNORE INTO runs (run_id) VALUES (?)", (run_id,))
            row = self._db.execute("SELECT ord FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            self._order[run_id] = int(row[0])
        cur = self._db.execute(
            "INSERT OR IGNORE INTO outbox (run_id, seq, type, text) VALUES (?, ?, ?, ?)",
            (run_id, seq, msg_type, text),
        )
        if cur.rowcount > 0:
            self._rows[run_id] += 1
            if msg_type in CRITICAL_TYPES:
                self._crit[run_id] += 1

    def mark_dropped(self, run_id: str, seq: int) -> None:
        self._begin()
        self._db.execute("UPDATE outbox SET text = NULL WHERE run_id = ? AND seq = ?", (run_id, seq))

    def forget(self, run_id: str, seqs: list[int]) -> None:
        if not seqs:
            return
        self._begin()
        cur = self._db.executemany(
            "DELETE FROM outbox WHERE run_id = ? AND seq = ? AND text IS NULL",
            [(run_id, s) for s in seqs],
        )
        self._count_down(run_id, max(cur.rowcount, 0), 0)

    def ack_upto(self, run_id: str, seq: int) -> int:
        if self._rows.get(run_id, 0) == 0:
            return 0
        self._begin()
        (crit,) = self._db.execute(
            f"SELECT COUNT(*) FROM outbox WHERE run_id = ? AND seq <= ? AND type IN {_CRIT}",
            (run_id, seq),
        ).fetchone()
        cur = self._db.execute("DELETE FROM outbox WHERE run_id = ? AND seq <= ?", (run_id, seq))
        freed = max(cur.rowcount, 0)
        self._count_down(run_id, freed, crit)
        return freed

    def _count_down(self, run_id: str, rows: int, crit: int) -> None:
        self._rows[run_id] -= rows
        self._crit[run_id] -= crit
        if self._rows[run_id] <= 0:
            self._rows.pop(run_id, None)
            self._crit.pop(run_id, None)

    def flush(self) -> None:
        if self._in_tx:
            self._db.execute("COMMIT")
            self._in_tx = False

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._db.close()

    # --- reads ---------------------------------------------------------------------

    def pending_after(self, run_id: str, seq: int) -> list[Frame]:
        rows = self._db.execute(
            "SELECT seq, type, text FROM outbox WHERE run_id = ? AND seq > ? AND text IS NOT NULL ORDER BY seq",
            (run_id, seq),
        )
        return [Frame(s, t, x) for s, t, x in rows]

    def dropped_after(self, run_id: str, seq: int) -> list[tuple[int, str]]:
        rows = self._db.execute(
            "SELECT seq, type FROM outbox WHERE run_id = ? AND seq > ? AND text IS NULL ORDER BY seq",
            (run_id, seq),
        )
        return [(s, t) for s, t in rows]

    def max_seq(self, run_id: str) -> int:
        (top,) = self._db.execute("SELECT MAX(seq) FROM outbox WHERE run_id = ?", (run_id,)).fetchone()
        return int(top or 0)

    def depth(self, run_id: str | None = None) -> int:
        if run_id is not None:
            return self._crit.get(run_id, 0)
        return sum(self._crit.values())

    def runs(self) -> list[str]:
        live = [r for r, n in self._rows.items() if n > 0]
        return sorted(live, key=lambda r: self._order.get(r, 0))
