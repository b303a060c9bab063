"""The wiring: one ``Backend`` owns the pieces, opens the store and listens on one port.

``/ws`` takes one publisher per run and ``/ws/stream`` serves dashboard clients: their
rules are ``publisher_session`` and ``client_session`` (no I/O), fed by the handlers of
``connection``; the stream is written to clients by ``delivery``. Plain HTTP GETs are
answered by ``http_api`` (the API and the dashboard page). The sequencing, storage and
fan-out decisions live in ``ingest``, ``store``, ``fanout`` and ``state``; the numbers
are declared once in ``metrics``. This module builds them, starts and stops them.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import time
import uuid
from collections.abc import Awaitable
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response
from wscontract import DATA_TYPES, SCHEMA_BASE, schema_dir

from .client_session import Clients
from .config import Config
from .connection import WS_PATHS, Connections, HandshakeNoise, connection_class
from .deadletter import DeadLetters
from .delivery import Delivery
from .fanout import Entry, Hub, declared_of, symbol_of
from .fastcheck import EnvelopeCheck
from .gcwatch import FullCollections, GcWatch, take_over_full_collections
from .http_api import HttpApi, json_response
from .ingest import Ingest
from .metrics import ServerCounters, counters_json, exposition, registry_for
from .publisher_session import Publishers
from .redis_log import RedisLog
from .shared_log import LogEntry
from .state import DashboardState
from .store import GroupCommitter, Restored, Store
from .turns import WriteTurns

__all__ = ["Backend"]

log = logging.getLogger("dashboard_backend")

FULL_GC_CHECK_S = 0.5  # how often the backend asks whether a full collection is due (gcwatch.FullCollections)
#: How often the backend asks whether it is out of step with the shared log (Redis mode).
LOG_WATCH_S = 0.1
#: How long a closing handshake may take (a dead link's included), as the bot's.
CLOSE_TIMEOUT_S = 2.0
#: Graceful stop: how long publishers get to finish their close handshake.
STOP_PUBLISHERS_S = 1.0
#: Graceful stop: how long, in total, client senders get to flush what is queued.
STOP_FLUSH_S = 1.0
#: Graceful stop: how long a client gets to answer the 1001 close after the flush.
STOP_CLOSE_S = 1.0


def _ring_entry(run_id: str, seq: int, msg_type: str, text: str) -> Entry:
    """A stored envelope as the resume ring keeps it."""
    env = json.loads(text)
    return Entry(run_id, seq, msg_type, symbol_of(env), text, declared_of(env))


class Backend:
    """The dashboard backend: one object owning the sequencer, store, hub and sockets."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.ingest: Ingest = Ingest()
        self.state = DashboardState()
        self.hub: Hub = Hub(config.ring_buffer_size)
        self.counters = ServerCounters()
        self.gc = GcWatch()
        self.full_gc = FullCollections(now=time.monotonic())
        self.write_turns = WriteTurns(config.client_writes_per_turn)
        self._gc_thresholds: tuple[int, int, int] | None = None
        self.store: Store | None = None
        self.committer: GroupCommitter | None = None
        #: every rejected publisher frame, with its reason (/api/dead_letters)
        self.dead_letters = DeadLetters(config.dead_letter_capacity)
        self._stopping = False
        self._server: Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._commit_task: asyncio.Task[None] | None = None
        self._logged_internal: set[str] = set()
        self._ws_log = logging.getLogger("dashboard_backend.ws")
        self._noise = HandshakeNoise(self.counters)
        self.publishers: Publishers = Publishers(
            config,
            ingest=self.ingest,
            hub=self.hub,
            state=self.state,
            dead_letters=self.dead_letters,
            counters=self.counters,
            envelope_ok=EnvelopeCheck.from_dir(schema_dir(), SCHEMA_BASE, DATA_TYPES),
        )
        self.clients = Clients(config, hub=self.hub, state=self.state, counters=self.counters)
        self.delivery = Delivery(
            config,
            hub=self.hub,
            counters=self.counters,
            write_turns=self.write_turns,
            internal=self.internal,
            spawn=self._spawn,
        )
        self.publishers.on_overflow = self.delivery.kick
        self.connections = Connections(
            config,
            publishers=self.publishers,
            clients=self.clients,
            delivery=self.delivery,
            counters=self.counters,
            full_gc=self.full_gc,
            internal=self.internal,
            spawn=self._spawn,
        )
        #: Redis mode (``SYSTEM__REDIS_URL``): the cluster's shared log; None on a single node.
        self.log: RedisLog | None = None
        if config.redis_url:
            self.log = RedisLog(
                config.redis_url,
                timeout_s=config.redis_timeout_s,
                stale_s=config.redis_stale_s,
                batch=config.redis_batch,
                apply=self._apply_logged,
            )
            self.log.on_failed = self.connections.append_failed
            self.log.on_duplicate = self.publishers.duplicate
        self.api = HttpApi(self)
        #: ``/metrics``: a registry of this backend's own, read off ``metrics.SERIES`` at each scrape.
        self.registry = registry_for(self)

    # --- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        """Open and reload the store, start the committer, listen."""
        self.gc.install()
        self._gc_thresholds = take_over_full_collections()
        store = Store(self.config.data_dir)
        # Redis mode: the shared log is the truth and is replayed from its start; the
        # local store is a view of it, so nothing is restored from it here.
        restored = (
            Restored()
            if self.log is not None
            else await asyncio.to_thread(store.load, ring=self.config.ring_buffer_size)
        )
        for run_id, (acked, last) in restored.runs.items():
            self.ingest.restore(run_id, acked, last, restored.committed_above.get(run_id, ()))
            self.hub.restore_last(run_id, self.ingest.last_broadcast(run_id))
        # Stored (critical) envelopes go back in the ring, so a resume after a restart
        # replays them; the ephemeral ones are gone, and ``Hub.replay`` says so.
        entries = await asyncio.to_thread(lambda: [_ring_entry(*row) for row in restored.recent])
        self.hub.refill(entries)
        self.state.restore(
            restored.positions,
            restored.portfolio,
            restored.trades,
            {r: v.broadcast_seq for r, v in self.ingest.runs().items()},
        )
        self.store = store
        self.committer = GroupCommitter(
            store,
            self.config.group_commit_ms / 1000,
            projected=self.ingest.projected_watermark,
            last_seq=self.ingest.last_broadcast,
            changed=self.ingest.changed_watermarks,
            on_commit=self._on_commit,
        )
        self.publishers.committer = self.committer
        self._commit_task = asyncio.create_task(self.committer.run(), name="group-commit")
        self._spawn(self._collect_when_due())
        if self.log is not None:
            self.publishers.log = self.log
            await self.log.start()
            await self.log.start_presence(self.config.replica_id or uuid.uuid4().hex[:8], self.api.presence)
            self._spawn(self._watch_log(self.log))
        self._ws_log.addFilter(self._noise)
        self._server = await serve(
            self.connections.handler,
            self.config.host,
            self.config.port,
            process_request=self._process_request,
            max_size=self.config.max_frame_bytes,
            ping_interval=self.config.ping_interval or None,
            ping_timeout=self.config.ping_timeout or None,
            # A dead peer never answers the close: after a keepalive timeout this is how long
            # the link still counts as up (ping interval + timeout + this = detection time).
            close_timeout=CLOSE_TIMEOUT_S,
            open_timeout=self.config.handshake_timeout,
            create_connection=connection_class(self._on_handshake_timeout),
            # No permessage-deflate: per-client compression of every frame costs more
            # CPU than the bandwidth it saves on the links this bridge serves.
            compression=None,
            server_header=None,
            logger=self._ws_log,
        )
        log.info(
            "listening on %s:%d (runs restored: %d)",
            self.config.host,
            self.port,
            len(restored.runs),
        )

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(next(iter(self._server.sockets)).getsockname()[1])

    def ready(self) -> bool:
        """The store is open and the server listens (``/ready``); in Redis mode also in step with the log."""
        if self.log is not None and not self.log.health.ready(time.monotonic()):
            return False
        return self.store is not None and self.store.is_open and self._server is not None

    def stale(self) -> bool:
        """Redis mode: not in step with the shared log, so what this replica holds may be old."""
        return self.log is not None and not self.log.health.ready(time.monotonic())

    async def _watch_log(self, shared: RedisLog) -> None:
        """Close every connection (1013) once the replica is out of step with the log.

        Its clients would get a stale stream as if it were live and its publisher no
        acks: both reconnect through the balancer, which drains this replica (``/ready``),
        to one in step, and resume there. While out of step new ones are refused (503).
        """
        lost = False
        while True:
            await asyncio.sleep(LOG_WATCH_S)
            now_lost = shared.health.lost(time.monotonic())
            if now_lost and not lost:
                log.warning("out of step with the shared log: closing every connection (1013)")
                self.connections.close_all(1013, "shared log unavailable, try again later")
            elif lost and not now_lost:
                log.info("in step with the shared log again (at %s)", shared.last_id)
            lost = now_lost

    def _apply_logged(self, entries: list[LogEntry]) -> None:
        """Redis mode: entries of the shared log, in order, to the sequencer, store, state and clients."""
        apply = self.publishers.apply
        for entry in entries:
            try:
                apply(entry)
            except Exception as exc:
                self.internal("shared log entry", exc)
        assert self.committer is not None
        self.committer.poke()

    async def stop(self) -> None:
        """Stop gracefully: publishers, then flush and close clients, commit, close the store.

        New connections are refused (503) from the first step. Publishers are closed
        first so no new envelope reaches a client queue; then each client's sender gets
        up to ``STOP_FLUSH_S`` in total to send what is already queued, so a planned
        restart loses nothing a client was already due; then every connection is closed
        (1001) and the last watermarks are committed.
        """
        self._stopping = True
        self.gc.uninstall()
        if self._gc_thresholds is not None:
            gc.set_threshold(*self._gc_thresholds)
        if self._server is not None:
            await self.connections.close_publishers(STOP_PUBLISHERS_S)
            await self.delivery.drain(STOP_FLUSH_S)
            for stream in self.delivery.streams.values():
                # A client that does not read does not answer the close either.
                stream.ws.close_timeout = STOP_CLOSE_S
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        if self.log is not None:
            await self.log.stop()
        if self._commit_task is not None:
            self._commit_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._commit_task
        if self.committer is not None:
            await self.committer.close()
        if self.store is not None:
            self.store.close()
        self._ws_log.removeFilter(self._noise)
        log.info("stopped")

    async def _collect_when_due(self) -> None:
        """The full collections CPython no longer starts itself (see ``FullCollections``)."""
        while True:
            await asyncio.sleep(FULL_GC_CHECK_S)
            if self.full_gc.due(time.monotonic()):
                gc.collect()
                self.full_gc.collected(time.monotonic())

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_commit(self, by_run: dict[str, list[int]], marks: dict[str, tuple[int, int]]) -> None:
        for run_id, seqs in by_run.items():
            self.ingest.committed(run_id, seqs)
        self.ingest.mark_persisted(marks)
        for run_id in marks:
            self.connections.wake_acker(run_id)

    def _on_handshake_timeout(self) -> None:
        if not self._stopping:
            self.counters.handshake_timeouts += 1

    def internal(self, where: str, exc: BaseException) -> None:
        """An unexpected exception: counted, and logged once per place and type."""
        self.counters.internal_errors += 1
        key = f"{where}:{type(exc).__name__}"
        if key not in self._logged_internal:
            self._logged_internal.add(key)
            log.error("internal error in %s (logged once)", where, exc_info=exc)

    # --- routing --------------------------------------------------------------

    async def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        path, _, query = request.path.partition("?")
        if path in WS_PATHS:
            if self._stopping:
                return json_response(503, {"error": "shutting down"})
            if self.stale():
                return json_response(503, {"error": "not in step with the shared log"})
            return self.connections.admit(conn, request)
        return await self.api.respond(path, query)

    # --- the numbers (``metrics.SERIES``) -------------------------------------

    def all_counters(self) -> dict[str, Any]:
        """The status JSON's ``counters``."""
        return counters_json(self)

    def status(self) -> dict[str, Any]:
        """The ``/api/websocket/status`` body."""
        return self.api.status()

    def metrics(self) -> str:
        """Prometheus text exposition of the counters and gauges."""
        return exposition(self.registry).decode()
