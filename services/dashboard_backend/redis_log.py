"""The shared log's I/O: appends to the Redis Stream, the tail every replica reads.

Only in Redis mode (``SYSTEM__REDIS_URL`` set; docs/CLUSTER.md). ``RedisLog.submit``
queues an accepted envelope; the appender sends everything queued in one event-loop turn
as one pipeline of ``APPEND_LUA`` calls (group commit), one pipeline at a time so the
log keeps each publisher's order. A duplicate (run_id, seq) is reported to
``on_duplicate``; a pipeline that fails or times out reports each of its runs to
``on_failed`` (the publisher is closed and reconnects elsewhere) and nothing of it is
acked: acks come from the tail, which only sees what Redis stored. The tail replays the
log from its start (XRANGE in chunks), then follows it (XREAD BLOCK) and hands every
entry to ``apply``, on every replica, the ingesting one included. ``health`` says
whether the replica is in step (``shared_log.LogHealth``). The rules are in
``shared_log``; this module only talks to Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, RedisError

from .shared_log import (
    APPEND_LUA,
    LOG_KEY,
    PRESENCE_KEY,
    PRESENCE_S,
    LogEntry,
    LogHealth,
    append_args,
    append_keys,
    cluster_view,
    entry_of,
    id_ms,
)

__all__ = ["RETRY_S", "RedisLog"]

log = logging.getLogger("dashboard_backend.redis")

#: Pause before reading again after a failed read.
RETRY_S = 0.1
#: A queued append: (run_id, seq, type, text, recv_ns).
Pending = tuple[str, int, str, str, int]


def _noop_run(run_id: str) -> None:
    pass


def _noop_dup(run_id: str, msg_type: str) -> None:
    pass


class RedisLog:
    """One replica's link to the shared log: the appender and the tail."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float,
        stale_s: float,
        batch: int,
        apply: Callable[[list[LogEntry]], None],
    ) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.batch = batch
        #: How long one tail read blocks waiting for new entries.
        self.block_ms = max(10, int(stale_s * 1000 / 4))
        self.apply = apply
        self.on_failed: Callable[[str], None] = _noop_run
        self.on_duplicate: Callable[[str, str], None] = _noop_dup
        self.health = LogHealth(stale_s)
        self._queue: list[Pending] = []
        self._wake = asyncio.Event()
        #: Runs whose append failed: nothing more of theirs is appended until their
        #: publisher says hello again (``reopen``), so the log keeps no hole before a later seq.
        self._failed: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._writer: Any = None
        self._reader: Any = None
        self._sha = ""
        self.last_id = "0-0"
        # --- counts (metrics.SERIES) ---
        self.appends = 0
        self.append_failures = 0
        self.duplicates = 0
        self.append_batches = 0
        self.applied = 0
        self.read_failures = 0
        #: now - Redis's time of the last entry applied, ms (0 before any).
        self.tail_lag_ms = 0.0
        self.connected = False
        #: The cluster as the last presence round saw it (``shared_log.cluster_view``);
        #: None before the first round.
        self.cluster: dict[str, Any] | None = None

    # --- lifecycle ------------------------------------------------------------

    async def start_presence(self, replica_id: str, report: Callable[[], dict[str, Any]]) -> None:
        """Report this replica's publishers and clients, and read the others', every ``PRESENCE_S``."""
        self._tasks.append(asyncio.create_task(self._presence_loop(replica_id, report), name="redis-presence"))

    async def _presence_loop(self, replica_id: str, report: Callable[[], dict[str, Any]]) -> None:
        while True:
            try:
                mine = json.dumps({"t": time.time(), **report()})
                pipe = self._writer.pipeline(transaction=False)
                pipe.hset(PRESENCE_KEY, replica_id, mine)
                pipe.hgetall(PRESENCE_KEY)
                _, raw = await asyncio.wait_for(pipe.execute(), self.timeout_s)
                reports = {k.decode(): v.decode() for k, v in raw.items()}
                self.cluster = cluster_view(reports, time.time())
            except (RedisError, OSError, TimeoutError):
                self.cluster = None
            await asyncio.sleep(PRESENCE_S)

    async def start(self) -> None:
        """Connect lazily (the first command does) and start the appender and the tail."""
        common: dict[str, Any] = {"socket_connect_timeout": self.timeout_s, "health_check_interval": 0}
        self._writer = aioredis.from_url(self.url, socket_timeout=self.timeout_s, **common)
        self._reader = aioredis.from_url(self.url, socket_timeout=self.block_ms / 1000 + self.timeout_s, **common)
        self._tasks = [
            asyncio.create_task(self._append_loop(), name="redis-append"),
            asyncio.create_task(self._tail_loop(), name="redis-tail"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for client in (self._writer, self._reader):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.aclose()

    # --- appends --------------------------------------------------------------

    def submit(self, run_id: str, seq: int, msg_type: str, text: str, recv_ns: int) -> None:
        """Queue one accepted envelope (or a rejected seq's marker) for the next pipeline."""
        if run_id in self._failed:
            return
        self._queue.append((run_id, seq, msg_type, text, recv_ns))
        self._wake.set()

    def reopen(self, run_id: str) -> None:
        """A publisher of ``run_id`` said hello: its appends go to the log again."""
        self._failed.discard(run_id)

    @property
    def depth(self) -> int:
        return len(self._queue)

    async def _append_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            # What the rest of this loop turn receives goes in the same pipeline.
            await asyncio.sleep(0)
            while self._queue:
                # At most ``batch`` entries per pipeline, so one pipeline stays well
                # within the timeout however far the publishers are ahead.
                batch, self._queue = self._queue[: self.batch], self._queue[self.batch :]
                await self._append(batch)

    async def _send(self, batch: list[Pending]) -> list[Any]:
        """One pipeline of EVALSHA calls, one per entry, in order; their replies."""
        pipe = self._writer.pipeline(transaction=False)
        sha = self._sha
        for run_id, seq, msg_type, text, recv_ns in batch:
            pipe.evalsha(sha, 2, *append_keys(run_id), *append_args(run_id, seq, msg_type, text, recv_ns))
        return list(await asyncio.wait_for(pipe.execute(), self.timeout_s))

    async def _append(self, batch: list[Pending]) -> None:
        try:
            if not self._sha:
                self._sha = await asyncio.wait_for(self._writer.script_load(APPEND_LUA), self.timeout_s)
            try:
                results = await self._send(batch)
            except NoScriptError:
                # A restarted Redis has an empty script cache (scripts are not in the AOF);
                # no EVALSHA of the pipeline ran, so sending it again appends each once.
                self._sha = await asyncio.wait_for(self._writer.script_load(APPEND_LUA), self.timeout_s)
                results = await self._send(batch)
        except (RedisError, OSError, TimeoutError) as exc:
            self.append_failures += len(batch)
            self.health.last_append_failed = time.monotonic()
            self.connected = False
            runs = {row[0] for row in batch}
            self._failed |= runs
            log.warning(
                "append of %d entries failed (%s: %s): closing their publishers", len(batch), type(exc).__name__, exc
            )
            for run_id in runs:
                self.on_failed(run_id)
            return
        self.health.last_append_ok = time.monotonic()
        self.connected = True
        self.append_batches += 1
        for row, result in zip(batch, results, strict=True):
            if result == 0:
                self.duplicates += 1
                self.on_duplicate(row[0], row[2])
            else:
                self.appends += 1

    # --- the tail -------------------------------------------------------------

    async def _tail_loop(self) -> None:
        reader, batch, health = self._reader, self.batch, self.health
        logged = False
        while True:
            try:
                if not health.replayed:
                    low = "-" if self.last_id == "0-0" else f"({self.last_id}"
                    rows = await reader.xrange(LOG_KEY, min=low, max="+", count=batch)
                else:
                    reply = await reader.xread({LOG_KEY: self.last_id}, count=batch, block=self.block_ms)
                    rows = reply[0][1] if reply else []
            except (RedisError, OSError, TimeoutError) as exc:
                self.read_failures += 1
                self.connected = False
                if not logged:
                    log.warning("reading the shared log failed (%s: %s); retrying", type(exc).__name__, exc)
                    logged = True
                await asyncio.sleep(RETRY_S)
                continue
            if logged:
                log.info("reading the shared log again from %s", self.last_id)
                logged = False
            self.connected = True
            full = len(rows) >= batch
            if rows:
                entries = [entry_of(i, f) for i, f in rows]
                self.last_id = entries[-1].id
                self.apply(entries)
                self.applied += len(entries)
                self.tail_lag_ms = max(0.0, time.time() * 1000 - id_ms(self.last_id))
            else:
                self.tail_lag_ms = 0.0
            now = time.monotonic()
            health.read(now, full)
            if not health.replayed and not full:
                health.replayed = True
                log.info("replayed the shared log: %d entries, up to %s", self.applied, self.last_id)
            if rows:
                await asyncio.sleep(0)  # a long replay still lets the loop run
