"""Durable store of critical envelopes and run watermarks in SQLite, with group commit.

``Store`` is the synchronous SQLite layer (one writer connection, used from one worker
thread; reads open their own connection, WAL lets them run beside the writer).
``GroupCommitter`` is the asyncio glue: it gathers the critical envelopes that arrive
within ``GROUP_COMMIT_MS``, writes them and the runs' watermarks in one transaction in
the worker thread, then reports the committed seqs so the publisher can be acked.
Watermark changes from ephemeral traffic are written the same way, so what is acked
is always what a restart reloads. Only envelopes that passed validation are stored.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["GroupCommitter", "Restored", "Row", "Store"]

log = logging.getLogger("dashboard_backend.store")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    run_id  TEXT    NOT NULL,
    seq     INTEGER NOT NULL,
    type    TEXT    NOT NULL,
    ts_ns   INTEGER NOT NULL,
    recv_ns INTEGER NOT NULL,
    text    TEXT    NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX IF NOT EXISTS events_type ON events (type);
CREATE TABLE IF NOT EXISTS runs (
    run_id     TEXT PRIMARY KEY,
    acked_seq  INTEGER NOT NULL,
    last_seq   INTEGER NOT NULL,
    updated_ns INTEGER NOT NULL
);
"""

_UPSERT_RUN = """
INSERT INTO runs (run_id, acked_seq, last_seq, updated_ns) VALUES (?, ?, ?, ?)
ON CONFLICT (run_id) DO UPDATE SET
    acked_seq = MAX(acked_seq, excluded.acked_seq),
    last_seq = MAX(last_seq, excluded.last_seq),
    updated_ns = excluded.updated_ns
"""

#: (run_id, seq, type, ts_ns, recv_ns, text)
Row = tuple[str, int, str, int, int, str]
#: run_id -> (acked_seq, last_seq)
Marks = dict[str, tuple[int, int]]


@dataclass
class Restored:
    """What a restart reloads: watermarks, stored seqs above them, the dashboard state."""

    runs: Marks = field(default_factory=dict)
    committed_above: dict[str, list[int]] = field(default_factory=dict)
    positions: list[dict[str, Any]] = field(default_factory=list)
    portfolio: dict[str, Any] | None = None
    trades: list[dict[str, Any]] = field(default_factory=list)
    #: The most recent stored envelopes for the resume ring: (run_id, seq, type, text),
    #: in (run_id, seq) order.
    recent: list[tuple[str, int, str, str]] = field(default_factory=list)


class Store:
    """The SQLite file ``DATA_DIR/dashboard.db`` (WAL)."""

    def __init__(self, data_dir: str | Path) -> None:
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        self.path = Path(data_dir) / "dashboard.db"
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        self.is_open = True

    def close(self) -> None:
        if self.is_open:
            self.is_open = False
            self._db.close()

    # --- writes (one thread at a time) ------------------------------------------

    def write(self, rows: Iterable[Row], marks: Marks) -> None:
        """Insert ``rows`` (duplicates ignored) and upsert watermarks in one transaction."""
        now = time.time_ns()
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?)", rows)
            db.executemany(_UPSERT_RUN, [(r, a, s, now) for r, (a, s) in marks.items()])
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # --- reads ------------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None)
        db.execute("PRAGMA busy_timeout=5000")
        return db

    def trades(self, run_id: str | None = None, limit: int = 10_000) -> list[str]:
        """Stored trade envelopes' texts, ordered by (run_id, seq)."""
        db = self._reader()
        try:
            if run_id is None:
                cur = db.execute(
                    "SELECT text FROM events WHERE type = 'trade' ORDER BY run_id, seq LIMIT ?",
                    (limit,),
                )
            else:
                cur = db.execute(
                    "SELECT text FROM events WHERE type = 'trade' AND run_id = ? ORDER BY seq LIMIT ?",
                    (run_id, limit),
                )
            return [text for (text,) in cur]
        finally:
            db.close()

    def events(
        self,
        run_id: str | None = None,
        types: Iterable[str] | None = None,
        after_seq: int = 0,
        limit: int = 10_000,
    ) -> list[str]:
        """Stored (critical) envelopes' texts with seq > ``after_seq``, ordered by (run_id, seq).

        ``types`` None means every stored type; ``run_id`` None means every run.
        """
        where = ["seq > ?"]
        args: list[Any] = [after_seq]
        if run_id is not None:
            where.append("run_id = ?")
            args.append(run_id)
        if types is not None:
            wanted = sorted(set(types))
            if not wanted:
                return []
            where.append(f"type IN ({','.join('?' * len(wanted))})")
            args.extend(wanted)
        args.append(limit)
        sql = f"SELECT text FROM events WHERE {' AND '.join(where)} ORDER BY run_id, seq LIMIT ?"
        db = self._reader()
        try:
            return [text for (text,) in db.execute(sql, args)]
        finally:
            db.close()

    def receive_times(self, run_id: str, after_seq: int = 0, limit: int = 10_000) -> list[tuple[int, int]]:
        """``(seq, recv_ns)`` of one run's stored envelopes: when the backend received each.

        The per-hop latency split (bot -> backend -> client) needs the middle timestamp,
        and the forwarded envelope is the publisher's text, unchanged.
        """
        db = self._reader()
        try:
            rows = db.execute(
                "SELECT seq, recv_ns FROM events WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (run_id, after_seq, limit),
            )
            return [(int(seq), int(recv_ns)) for seq, recv_ns in rows]
        finally:
            db.close()

    def count_events(self) -> int:
        db = self._reader()
        try:
            return int(db.execute("SELECT COUNT(*) FROM events").fetchone()[0])
        finally:
            db.close()

    def load(self, recent_trades: int = 100, ring: int = 0) -> Restored:
        """Everything a restart needs, read in one go.

        ``ring``: how many of the most recently stored envelopes to return in ``recent``
        (to refill the resume ring), in (run_id, seq) order.
        """
        db = self._db
        out = Restored()
        for run_id, acked, last in db.execute("SELECT run_id, acked_seq, last_seq FROM runs"):
            out.runs[run_id] = (acked, last)
        above = db.execute(
            "SELECT e.run_id, e.seq FROM events e LEFT JOIN runs r USING (run_id)"
            " WHERE e.seq > COALESCE(r.acked_seq, 0) ORDER BY e.run_id, e.seq"
        )
        for run_id, seq in above:
            out.committed_above.setdefault(run_id, []).append(seq)
            acked, last = out.runs.get(run_id, (0, 0))
            out.runs[run_id] = (acked, max(last, seq))
        out.positions = [
            json.loads(text)
            for (text,) in db.execute(
                "SELECT text FROM events WHERE rowid IN (SELECT MAX(rowid) FROM events"
                " WHERE type = 'position' GROUP BY json_extract(text, '$.data.symbol'))"
                " ORDER BY rowid"
            )
        ]
        row = db.execute("SELECT text FROM events WHERE type = 'portfolio' ORDER BY rowid DESC LIMIT 1").fetchone()
        out.portfolio = json.loads(row[0]) if row else None
        trades = db.execute(
            "SELECT text FROM events WHERE type = 'trade' ORDER BY rowid DESC LIMIT ?",
            (recent_trades,),
        ).fetchall()
        out.trades = [json.loads(text) for (text,) in reversed(trades)]
        if ring > 0:
            out.recent = db.execute(
                "SELECT run_id, seq, type, text FROM (SELECT rowid, * FROM events ORDER BY rowid DESC LIMIT ?)"
                " ORDER BY run_id, seq",
                (ring,),
            ).fetchall()
        return out


class GroupCommitter:
    """Batches critical rows and watermark changes into one transaction per window.

    ``submit`` queues a critical row; ``poke`` says a watermark may have moved (an
    ephemeral seq was received). Either wakes the loop, which waits ``window_s`` to
    gather more, then writes rows and changed watermarks in one transaction in the
    worker thread and calls ``on_commit``. Acks are built from what ``on_commit``
    reports, so an acked seq is always durable, ephemeral progress included: a restart
    never forgets a seq the publisher was told it may drop.
    """

    RETRY_S = 0.5

    def __init__(
        self,
        store: Store,
        window_s: float,
        *,
        projected: Callable[[str, list[int]], int],
        last_seq: Callable[[str], int],
        changed: Callable[[], Marks],
        on_commit: Callable[[dict[str, list[int]], Marks], None],
    ) -> None:
        self.store = store
        self.window_s = window_s
        self._projected = projected
        self._last_seq = last_seq
        self._changed = changed
        self._on_commit = on_commit
        self._pending: list[Row] = []
        self._poked = False
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self.committed = 0
        self.batches = 0
        self.errors = 0

    # --- input ----------------------------------------------------------------

    def submit(self, row: Row) -> None:
        self._pending.append(row)
        self._wake.set()

    def poke(self) -> None:
        if not self._poked:
            self._poked = True
            self._wake.set()

    @property
    def depth(self) -> int:
        return len(self._pending)

    # --- loop -----------------------------------------------------------------

    async def run(self) -> None:
        """Commit forever; cancel to stop (then call ``close``)."""
        just_committed = False
        while True:
            if not self._pending and not self._poked:
                just_committed = False
                await self._wake.wait()
            self._wake.clear()
            if self.window_s and not just_committed:
                await asyncio.sleep(self.window_s)
            just_committed = await self.commit()
            if not just_committed:
                await asyncio.sleep(self.RETRY_S)

    async def commit(self) -> bool:
        """Write pending rows and changed watermarks now; False on failure (kept pending)."""
        self._poked = False
        batch, self._pending = self._pending, []
        by_run: dict[str, list[int]] = defaultdict(list)
        for row in batch:
            by_run[row[0]].append(row[1])
        marks = self._changed()
        for run_id, seqs in by_run.items():
            marks[run_id] = (self._projected(run_id, seqs), self._last_seq(run_id))
        if not batch and not marks:
            return True
        try:
            await self._in_thread(self.store.write, batch, marks)
        except Exception:
            self.errors += 1
            log.exception("commit of %d rows failed; will retry", len(batch))
            self._pending[:0] = batch
            self._poked = True
            return False
        if batch:
            self.committed += len(batch)
            self.batches += 1
        self._on_commit(dict(by_run), marks)
        return True

    async def close(self) -> None:
        """Final commit, then stop the worker thread."""
        await self.commit()
        self._executor.shutdown(wait=True)

    async def _in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
