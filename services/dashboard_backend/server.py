"""asyncio glue: the WebSocket endpoints and the HTTP API on one port.

``/ws`` takes one publisher per run (hello, welcome, envelopes, acks), ``/ws/stream``
serves dashboard clients (subscribe, snapshot, replay, live), and plain HTTP GETs are
answered from ``process_request`` (the API, and the live dashboard page: ``page``). The
decisions live in ``ingest``, ``fanout``, ``state`` and ``store``; this module only moves
frames between them and the sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import hmac
import itertools
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from wscontract import (
    DATA_TYPES,
    SCHEMA_BASE,
    Invalid,
    parse_frame,
    schema_dir,
    validate_control,
    validate_envelope,
)

from .batching import BatchingConnection, text_frame
from .config import Config
from .deadletter import DeadLetters
from .fanout import Client, Entry, Group, Hub, Outgoing, Subscription, declared_of, symbol_of
from .fastcheck import EnvelopeCheck
from .gcwatch import FullCollections, GcWatch, take_over_full_collections
from .ingest import Ingest
from .limits import TokenBucket
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .metrics import counters_json, exposition, registry_for, rss_bytes
from .page import CONTENT_SECURITY_POLICY, Page
from .state import DashboardState
from .store import GroupCommitter, Store
from .turns import WriteTurns

__all__ = ["Backend", "ServerCounters"]

log = logging.getLogger("dashboard_backend")

SUBSCRIBE_TIMEOUT_S = 1.0
FULL_GC_CHECK_S = 0.5  # how often the backend asks whether a full collection is due (gcwatch.FullCollections)
ACK_INTERVAL_S = 0.005
SEND_BATCH = 512
YIELD_EVERY = 32
TRADES_LIMIT_MAX = 1_000_000
#: Close code for a publisher connection replaced by a newer one of the same run.
SUPERSEDED = 4000
#: Largest integer an SQLite INTEGER column holds.
SQLITE_MAX_INT = 2**63 - 1
#: Close code for a client over its frame rate (policy violation, RFC 6455).
RATE_LIMITED = 1008
#: How long a closing client's reader may take to drain frames it already received.
DRAIN_READER_S = 2.0
#: How long a closing handshake may take (a dead link's included), as the bot's.
CLOSE_TIMEOUT_S = 2.0
#: Graceful stop: how long publishers get to finish their close handshake.
STOP_PUBLISHERS_S = 1.0
#: Graceful stop: how long, in total, client senders get to flush what is queued.
STOP_FLUSH_S = 1.0
#: Graceful stop: how long a client gets to answer the 1001 close after the flush.
STOP_CLOSE_S = 1.0


@dataclass
class ServerCounters:
    """Counts kept by the glue (the sequencing ones live in ``IngestCounters``).

    Plain ints, incremented on the hot paths; ``metrics.SERIES`` declares how each one is
    reported (status JSON key, Prometheus name), and they are read only then.
    """

    broadcast: int = 0
    auth_failures: int = 0
    oversize_closes: int = 0
    publisher_connections_total: int = 0
    client_connections_total: int = 0
    publisher_takeovers: int = 0
    bad_subscribe: int = 0
    origin_rejected: int = 0
    internal_errors: int = 0
    bad_requests: int = 0
    #: TCP connections dropped because the upgrade (or a publisher's hello) did not
    #: complete within ``handshake_timeout``.
    handshake_timeouts: int = 0
    #: WebSocket handshakes refused with 503 at ``max_connections``.
    connections_refused: int = 0
    #: Clients closed with 1008 for sending over their frame rate.
    rate_limit_closes: int = 0
    #: Times a publisher's reader paused to hold it to its frame rate.
    publisher_throttled: int = 0
    #: Connections closed with 1007 (a text frame that is not UTF-8).
    invalid_utf8_closes: int = 0
    #: Client frames after the subscribe (ignored: clients only ever send one).
    client_frames_ignored: int = 0
    http_requests: Counter[str] = field(default_factory=Counter)


@dataclass(eq=False, slots=True)
class _Stream:
    """The glue's side of one ``/ws/stream`` client: its connection and its sender's state."""

    ws: BatchingConnection
    client: Client
    #: Set to wake the sender task (frames it must send itself, overflow, stop).
    wake: asyncio.Event
    #: Set while the sender has nothing left to send (or has ended).
    idle: asyncio.Event
    #: The sender waits on ``wake`` with the snapshot and backlog sent: live frames may
    #: be written from ``Backend._flush`` directly, no task involved.
    parked: bool = False
    #: In ``Backend._dirty``: frames were queued since the last flush.
    dirty: bool = False


@dataclass(eq=False)
class _Publisher:
    ws: ServerConnection
    run_id: str
    remote: str
    connected_at: str
    last_ack: int
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    superseded: bool = False


class _HandshakeNoise(logging.Filter):
    """Turn websockets' "opening handshake failed" tracebacks into a counter.

    Bad HTTP (POST, HEAD, garbage, half-open probes) is hostile or broken input, not a
    server error: it is counted as ``bad_requests`` and logged at debug level, so a log
    scan for errors finds real ones.
    """

    def __init__(self, counters: ServerCounters) -> None:
        super().__init__()
        self.counters = counters

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage() != "opening handshake failed":
            return True
        self.counters.bad_requests += 1
        exc = record.exc_info[1] if record.exc_info else None
        cause = exc.__cause__ if exc is not None and exc.__cause__ is not None else exc
        log.debug("rejected a bad request: %s", cause)
        return False


def _connection_class(on_timeout: Callable[[], None]) -> type[BatchingConnection]:
    """A ``BatchingConnection`` that reports an opening handshake cut by ``open_timeout``.

    websockets drops such a connection silently (the timeout cancels ``handshake``);
    the backend counts it as ``handshake_timeouts``.
    """

    class _Connection(BatchingConnection):
        async def handshake(self, *args: Any, **kwargs: Any) -> None:
            try:
                await super().handshake(*args, **kwargs)
            except asyncio.CancelledError:
                on_timeout()
                raise

    return _Connection


def _masked(hello: dict[str, Any]) -> str:
    """A hello as it may be kept: its token hidden (a wrong token may be a near-right one)."""
    return json.dumps({**hello, "auth": "***"})


def _paging(
    query: dict[str, list[str]], after: str = "after_seq", default_limit: int = 10000
) -> tuple[int, int] | Response:
    """``after`` (a seq or an id) and ``limit`` of a query, or the 400 response saying what is wrong."""
    try:
        after_seq = int(query.get(after, ["0"])[0])
        limit = int(query.get("limit", [str(default_limit)])[0])
    except ValueError:
        return _json_response(400, {"error": f"{after} and limit must be integers"})
    if not 0 <= limit <= TRADES_LIMIT_MAX:
        return _json_response(400, {"error": f"limit must be in [0, {TRADES_LIMIT_MAX}]"})
    return after_seq, limit


def _remote(ws: ServerConnection) -> str:
    addr = ws.remote_address
    if isinstance(addr, tuple) and len(addr) >= 2:
        return f"{addr[0]}:{addr[1]}"
    return str(addr)


def _json_response(status: int, body: Any) -> Response:
    data = json.dumps(body, separators=(",", ":")).encode()
    return _response(status, data, "application/json")


def _response(status: int, data: bytes, content_type: str, extra: tuple[tuple[str, str], ...] = ()) -> Response:
    phrase = HTTPStatus(status).phrase
    headers = Headers(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(data))),
            ("Cache-Control", "no-store"),
            ("Connection", "close"),
            *extra,
        ]
    )
    return Response(status, phrase, headers, data)


#: Headers of the dashboard page's files (``/``, ``/static/<name>``).
PAGE_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
)


def _same_origin(request: Request) -> bool:
    """Whether the handshake's Origin is this backend's own page: ``http(s)://`` + its Host."""
    origin = request.headers.get("Origin")
    host = request.headers.get("Host")
    if not origin or not host:
        return False
    origin, host = origin.lower(), host.lower()
    return origin in (f"http://{host}", f"https://{host}")


def _error(code: str, detail: str, seq: int | None = None) -> str:
    frame: dict[str, Any] = {"type": "error", "code": code, "detail": detail[:2048]}
    if seq is not None:
        frame["seq"] = seq
    return json.dumps(frame)


def _int_seq(obj: dict[str, Any]) -> int | None:
    seq = obj.get("seq")
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None


def _open_fds() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


def _joined(frames: list[Outgoing]) -> bytes:
    """Queued frames as the bytes of one write (texts framed here, frames as they are)."""
    if len(frames) == 1:
        only = frames[0]
        return only if isinstance(only, bytes) else text_frame(only.encode())
    return b"".join(f if isinstance(f, bytes) else text_frame(f.encode()) for f in frames)


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
        self.hub.lane_ready = self._lane_ready
        self.counters = ServerCounters()
        self.gc = GcWatch()
        self.full_gc = FullCollections(now=time.monotonic())
        self.write_turns = WriteTurns(config.client_writes_per_turn)
        #: True only for a valid envelope; otherwise validate_envelope decides (and words
        #: the error): the same verdicts at a fraction of jsonschema's cost (fastcheck).
        self.envelope_ok = EnvelopeCheck.from_dir(schema_dir(), SCHEMA_BASE, DATA_TYPES)
        self._gc_thresholds: tuple[int, int, int] | None = None
        self.store: Store | None = None
        self.committer: GroupCommitter | None = None
        self.publishers: dict[str, _Publisher] = {}
        #: every rejected publisher frame, with its reason (/api/dead_letters)
        self.dead_letters = DeadLetters(config.dead_letter_capacity)
        self._streams: dict[int, _Stream] = {}
        #: Clients with frames queued since the last ``_flush`` (which is scheduled).
        self._dirty: list[_Stream] = []
        #: Groups whose lane has frames pending since the last ``_flush``.
        self._dirty_groups: list[Group] = []
        self._flush_pending = False
        #: Paces flushes of live frames (see ``_schedule_flush``); unlimited at 0 ms.
        self._flushes = TokenBucket(
            1000 / config.client_flush_ms if config.client_flush_ms > 0 else 0,
            config.client_flush_burst,
            time.monotonic(),
        )
        self._stopping = False
        self._client_ids = itertools.count(1)
        self._server: Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._commit_task: asyncio.Task[None] | None = None
        self._started = time.monotonic()
        self._logged_internal: set[str] = set()
        self._ws_log = logging.getLogger("dashboard_backend.ws")
        self._noise = _HandshakeNoise(self.counters)
        #: WebSocket connections admitted by ``_process_request``, until their TCP
        #: connection is lost. A set kept current by a callback, so admitting one more
        #: client costs O(1) instead of a walk over all of them.
        self._admitted: set[ServerConnection] = set()
        #: The live dashboard page (static/), read once here.
        self.page = Page()
        #: ``/metrics``: a registry of this backend's own, read off ``metrics.SERIES`` at each scrape.
        self.registry = registry_for(self)
        self._routes: dict[str, Callable[[dict[str, list[str]]], Awaitable[Response]]] = {
            "/health": self._http_health,
            "/ready": self._http_ready,
            "/api/websocket/status": self._http_status,
            "/api/state": self._http_state,
            "/api/trades": self._http_trades,
            "/api/events": self._http_events,
            "/api/receive_times": self._http_receive_times,
            "/api/dead_letters": self._http_dead_letters,
            "/metrics": self._http_metrics,
        }

    # --- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        """Open and reload the store, start the committer, listen."""
        self.gc.install()
        self._gc_thresholds = take_over_full_collections()
        store = Store(self.config.data_dir)
        restored = await asyncio.to_thread(store.load, ring=self.config.ring_buffer_size)
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
        self._commit_task = asyncio.create_task(self.committer.run(), name="group-commit")
        self._spawn(self._collect_when_due())
        self._ws_log.addFilter(self._noise)
        self._server = await serve(
            self._handler,
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
            create_connection=_connection_class(self._on_handshake_timeout),
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
            await self._close_publishers()
            await self._flush_clients(STOP_FLUSH_S)
            for stream in self._streams.values():
                # A client that does not read does not answer the close either.
                stream.ws.close_timeout = STOP_CLOSE_S
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
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

    async def _close_publishers(self) -> None:
        closing = [asyncio.ensure_future(p.ws.close(1001, "server shutting down")) for p in self.publishers.values()]
        if closing:
            await asyncio.wait(closing, timeout=STOP_PUBLISHERS_S)

    async def _flush_clients(self, timeout: float) -> None:
        """Wait, up to ``timeout`` in total, until every client's sender is idle."""
        while self._dirty or self._dirty_groups:  # frames queued for a flush still to come: write them now
            self._flush(share=False)
        waiting = [asyncio.ensure_future(stream.idle.wait()) for stream in self._streams.values()]
        if not waiting:
            return
        _, pending = await asyncio.wait(waiting, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("stop: %d client(s) still had frames queued after %.1fs", len(pending), timeout)

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
            pub = self.publishers.get(run_id)
            if pub is not None:
                pub.wake.set()

    def _on_handshake_timeout(self) -> None:
        if not self._stopping:
            self.counters.handshake_timeouts += 1

    def _internal(self, where: str, exc: BaseException) -> None:
        self.counters.internal_errors += 1
        key = f"{where}:{type(exc).__name__}"
        if key not in self._logged_internal:
            self._logged_internal.add(key)
            log.error("internal error in %s (logged once)", where, exc_info=exc)

    # --- routing --------------------------------------------------------------

    async def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        path, _, query = request.path.partition("?")
        if self._stopping and path in ("/ws", "/ws/stream"):
            return _json_response(503, {"error": "shutting down"})
        if path in ("/ws", "/ws/stream"):
            return self._admit(conn, request)
        if Page.handles(path):
            return self._http_page(path)
        route = self._routes.get(path)
        self.counters.http_requests[path if route else "other"] += 1
        if route is None:
            return _json_response(404, {"error": "not found", "path": path[:200]})
        try:
            return await route(parse_qs(query))
        except Exception as exc:
            self._internal(f"http {path}", exc)
            return _json_response(500, {"error": "internal"})

    def _admit(self, conn: ServerConnection, request: Request) -> Response | None:
        """Origin allow-list, then the connection limit; None lets the upgrade proceed."""
        self.full_gc.arrived(time.monotonic())
        # The page this backend serves (Origin http(s):// + its own Host) passes whatever the list.
        origins = () if _same_origin(request) else self.config.allowed_origins
        origin = request.headers.get("Origin")
        if origins and origin not in origins and not (origin is None and self.config.allow_missing_origin):
            self.counters.origin_rejected += 1
            return _json_response(403, {"error": "origin not allowed"})
        if len(self._admitted) >= self.config.max_connections:
            self.counters.connections_refused += 1
            return _json_response(503, {"error": "too many connections", "limit": self.config.max_connections})
        self._admitted.add(conn)
        conn.connection_lost_waiter.add_done_callback(lambda _: self._admitted.discard(conn))
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        path = ws.request.path.partition("?")[0]
        try:
            if path == "/ws":
                await self._publisher(ws)
            else:
                await self._client(ws)
        except ConnectionClosed:
            pass
        finally:
            self.full_gc.closed(time.monotonic())
            close_sent = ws.protocol.close_sent
            if close_sent is not None and close_sent.code == 1009:
                self.counters.oversize_closes += 1
            elif close_sent is not None and close_sent.code == 1007:
                self.counters.invalid_utf8_closes += 1
            if path == "/ws" and close_sent is not None and close_sent.code in (1007, 1009):
                # The frame never reached us whole: the letter keeps the reason, not the bytes.
                code = "too_big" if close_sent.code == 1009 else "invalid_utf8"
                self.dead_letters.add(code, f"closed {close_sent.code}: {close_sent.reason}", b"")

    # --- publishers (/ws) -----------------------------------------------------

    async def _publisher(self, ws: ServerConnection) -> None:
        self.counters.publisher_connections_total += 1
        hello = await self._hello(ws)
        if hello is None:
            return
        run_id: str = hello["run_id"]
        old = self.publishers.get(run_id)
        if old is not None:
            old.superseded = True
            self.counters.publisher_takeovers += 1
            self._spawn(old.ws.close(SUPERSEDED, "superseded by a newer connection"))
        pub = _Publisher(
            ws=ws,
            run_id=run_id,
            remote=_remote(ws),
            connected_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
            last_ack=self.ingest.durable_watermark(run_id),
        )
        self.publishers[run_id] = pub
        log.info("publisher %s connected from %s (acked_seq=%d)", run_id, pub.remote, pub.last_ack)
        assert self.committer is not None
        acker = asyncio.create_task(self._acker(pub))
        try:
            await ws.send(json.dumps({"type": "welcome", "run_id": run_id, "acked_seq": pub.last_ack}))
            handled = 0
            bucket = TokenBucket(
                self.config.publisher_max_msgs_per_s, self.config.publisher_msg_burst, time.monotonic()
            )
            async for raw in ws:
                if pub.superseded:
                    break
                wait = bucket.reserve(time.monotonic())
                if wait > 0:
                    # Over its rate: read nothing for a while; TCP backpressure slows
                    # the sender and nothing is dropped.
                    self.counters.publisher_throttled += 1
                    await asyncio.sleep(wait)
                handled += 1
                if handled % YIELD_EVERY == 0:
                    # recv() does not yield while frames are buffered: let senders,
                    # the acker, the committer and pings run during a burst.
                    await asyncio.sleep(0)
                try:
                    reply = self._on_frame(pub, raw)
                except Exception as exc:
                    self._internal("publisher frame", exc)
                    reply = _error("internal", "internal error processing this frame")
                if reply is not None:
                    await ws.send(reply)
                self.committer.poke()
        finally:
            acker.cancel()
            if self.publishers.get(run_id) is pub:
                del self.publishers[run_id]
            log.info("publisher %s disconnected (code %s)", run_id, ws.close_code)

    async def _hello(self, ws: ServerConnection) -> dict[str, Any] | None:
        """The first frame, checked: a valid hello with the right token, else None."""
        try:
            raw = await asyncio.wait_for(ws.recv(), self.config.handshake_timeout)
        except TimeoutError:
            self.counters.handshake_timeouts += 1
            await ws.close(1008, "expected hello")
            return None
        try:
            obj = parse_frame(raw)
        except Invalid as exc:
            self._reject(exc.code, exc.detail, raw, source="hello")
            await ws.send(_error("expected_hello", f"first frame must be a hello: {exc.detail}"))
            await ws.close(1008, "expected hello")
            return None
        if obj.get("type") != "hello":
            self._reject("expected_hello", "first frame must be a hello", raw, source="hello")
            await ws.send(_error("expected_hello", "first frame must be a hello"))
            await ws.close(1008, "expected hello")
            return None
        auth = obj.get("auth")
        token = self.config.auth_token
        if not isinstance(auth, str) or not hmac.compare_digest(auth.encode("utf-8", "replace"), token.encode()):
            self.counters.auth_failures += 1
            # counted as an auth failure, not as a rejected frame; kept all the same
            self.dead_letters.add(
                "auth_failed", "authentication failed", _masked(obj), source="hello", run_id=obj.get("run_id")
            )
            log.warning("publisher from %s: authentication failed", _remote(ws))
            await ws.close(1008, "authentication failed")
            return None
        try:
            validate_control(obj)
        except Invalid as exc:
            self._reject(exc.code, exc.detail, _masked(obj), source="hello", run_id=obj.get("run_id"))
            await ws.send(_error(exc.code, exc.detail))
            await ws.close(1008, "invalid hello")
            return None
        return obj

    def _reject(
        self,
        code: str,
        detail: str,
        raw: str | bytes,
        *,
        source: str = "publisher",
        run_id: object = None,
        seq: object = None,
        own: bool = False,
    ) -> bool:
        """Count a rejected frame and keep it as a dead letter. ``own``: it is of the
        publisher's own run, so its seq counts as accounted; returns whether that seq was new."""
        self.dead_letters.add(code, detail, raw, source=source, run_id=run_id, seq=seq)
        if own and isinstance(run_id, str) and isinstance(seq, int):
            return self.ingest.reject(code, run_id, seq)
        self.ingest.reject(code)
        return False

    def _on_frame(self, pub: _Publisher, raw: str | bytes) -> str | None:
        """Process one publisher frame; return an error frame to send back, if any."""
        recv_ns = time.time_ns()
        try:
            obj = parse_frame(raw)
        except Invalid as exc:
            self._reject(exc.code, exc.detail, raw, run_id=pub.run_id)
            return _error(exc.code, exc.detail)
        seq = _int_seq(obj)
        run_id = obj.get("run_id")
        try:
            if not self.envelope_ok(obj):
                validate_envelope(obj)
        except Invalid as exc:
            if self._reject(exc.code, exc.detail, raw, run_id=run_id, seq=seq, own=run_id == pub.run_id):
                assert isinstance(run_id, str) and seq is not None
                self.hub.skip(run_id, seq)
            return _error(exc.code, exc.detail, seq)
        if run_id != pub.run_id:
            self._reject("run_mismatch", "envelope run_id is not this hello's", raw, run_id=run_id, seq=seq)
            return _error("run_mismatch", f"envelope run_id {run_id!r} is not this hello's", seq)
        assert seq is not None
        text = raw if isinstance(raw, str) else raw.decode()
        decision = self.ingest.accept(obj)
        msg_type: str = obj["type"]
        if decision.pending:
            assert self.committer is not None
            # The contract bounds ts_ns below only; SQLite's INTEGER stops at 2**63 - 1, and
            # one row that cannot be written would fail every later group commit. The
            # column is clamped; the stored text keeps what was sent.
            ts_col = min(int(obj["ts_ns"]), SQLITE_MAX_INT)
            self.committer.submit((run_id, seq, msg_type, ts_col, recv_ns, text))
        if decision.broadcast:
            self.state.apply(obj)
            entry = Entry(run_id, seq, msg_type, symbol_of(obj), text, declared_of(obj))
            # Framed once, the same bytes for every client (see batching).
            frame = text_frame(text.encode()) if self.hub.clients else None
            for client in self.hub.publish(entry, frame):
                self._kick(client)
        return None

    async def _acker(self, pub: _Publisher) -> None:
        """Send cumulative acks of durable watermarks, at most one per ``ACK_INTERVAL_S``."""
        while True:
            await pub.wake.wait()
            pub.wake.clear()
            wm = self.ingest.durable_watermark(pub.run_id)
            if wm > pub.last_ack:
                pub.last_ack = wm
                frame = {"type": "ack", "run_id": pub.run_id, "seq": wm}
                try:
                    await pub.ws.send(json.dumps(frame))
                except ConnectionClosed:
                    return
            await asyncio.sleep(ACK_INTERVAL_S)

    # --- clients (/ws/stream) -------------------------------------------------

    async def _client(self, ws: ServerConnection) -> None:
        self.counters.client_connections_total += 1
        bucket = TokenBucket(self.config.client_max_msgs_per_s, self.config.client_msg_burst, time.monotonic())
        sub, resume, want_snapshot = await self._subscribe(ws, bucket)
        assert isinstance(ws, BatchingConnection)  # serve(create_connection=...)
        client = Client(
            id=next(self._client_ids),
            remote=_remote(ws),
            capacity=self.config.client_queue_size,
            sub=sub,
        )
        stream = _Stream(ws, client, asyncio.Event(), asyncio.Event())
        client.notify = functools.partial(self._mark, stream)
        # No await between attach and the snapshot: both see the same instant.
        resumed = self.hub.attach(client, resume)
        head = json.dumps(self.state.snapshot(resumed)) if want_snapshot else None
        self._streams[client.id] = stream
        sender = asyncio.create_task(self._sender(stream, head))
        reader = asyncio.create_task(self._ignore_input(ws, bucket))
        try:
            await asyncio.wait({sender, reader}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sender.cancel()
            self.hub.detach(client)
            self._streams.pop(client.id, None)
            # The connection is closing: let the reader count what it already received.
            if not reader.done():
                await asyncio.wait({reader}, timeout=DRAIN_READER_S)
            reader.cancel()
            for task in (sender, reader):
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                    await task

    async def _subscribe(
        self, ws: ServerConnection, bucket: TokenBucket
    ) -> tuple[Subscription, tuple[str, int] | None, bool]:
        """Read the optional subscribe frame; anything wrong keeps the default."""
        try:
            raw = await asyncio.wait_for(ws.recv(), SUBSCRIBE_TIMEOUT_S)
        except TimeoutError:
            return Subscription(), None, True
        bucket.allow(time.monotonic())
        try:
            obj = parse_frame(raw)
            if obj.get("type") != "subscribe":
                raise Invalid("bad_subscribe", "expected a subscribe frame")
            validate_control(obj)
        except Invalid as exc:
            self.counters.bad_subscribe += 1
            # A peer that already closed still has its later frames counted by the reader.
            with contextlib.suppress(ConnectionClosed):
                await ws.send(_error("bad_subscribe", f"{exc.detail} (default subscription kept)"))
            return Subscription(), None, True
        resume = obj.get("resume")
        return (
            Subscription.from_frame(obj),
            (resume["run_id"], resume["after_seq"]) if resume else None,
            obj.get("snapshot", True),
        )

    async def _sender(self, stream: _Stream, head: str | None) -> None:
        """Send the snapshot, then the backlog and queue; ``idle`` is set while empty.

        Parked (waiting for frames), it leaves live frames to ``_flush``, which writes
        them directly while the connection allows (joining the client to its group's
        lane) and wakes it when not.
        """
        ws, client, wake, idle = stream.ws, stream.client, stream.wake, stream.idle
        try:
            if head is not None:
                await ws.send(head)
            while True:
                wake.clear()
                if client.overflowed:
                    return
                frames = client.take(SEND_BATCH)
                if not frames:
                    idle.set()
                    stream.parked = True
                    if not client.in_lane:
                        self._mark(stream)  # the flush may let it join the lane
                    try:
                        await wake.wait()
                    finally:
                        stream.parked = False
                    continue
                idle.clear()
                await self.write_turns.take()
                await ws.send_frames(frames)
                self.counters.broadcast += len(frames)
        finally:
            idle.set()

    def _schedule_flush(self) -> None:
        """A flush in the next loop turn; under a sustained message rate, paced.

        Each write to a client costs a trip through the kernel's TCP stack (~7 us on
        the host measured, more than all the rest of a delivery), so when messages keep
        coming faster than one per ``client_flush_ms``, flushes are spaced that far
        apart on average and the frames meanwhile share one write per client. Bursts of
        up to ``client_flush_burst`` flushes, and any traffic slower than that pace, go
        in the next loop turn as before (a token bucket of flushes).
        """
        if not self._flush_pending:
            self._flush_pending = True
            loop = asyncio.get_running_loop()
            wait = self._flushes.reserve(time.monotonic())
            if wait <= 0:
                loop.call_soon(self._flush)
            else:
                loop.call_later(wait, self._flush)

    def _mark(self, stream: _Stream) -> None:
        """``Client.notify``: frames were queued (or it overflowed); schedule a flush."""
        if not stream.dirty:
            stream.dirty = True
            self._dirty.append(stream)
            self._schedule_flush()

    def _lane_ready(self, group: Group) -> None:
        """``Hub.lane_ready``: a group's lane has frames pending; schedule a flush."""
        self._dirty_groups.append(group)
        self._schedule_flush()

    def _flush(self, share: bool = True) -> None:
        """Write what was queued since the last flush: directly, one write per client.

        First the lanes: each group's pending frames are joined once and written to each
        lane member whose sender is parked on a connection that takes direct writes;
        a member that cannot take them now leaves the lane with them in its own queue.
        Then each client with frames of its own: a parked sender on such a connection
        has them written here (and the client joins its group's lane when it may); any
        other (snapshot or replay still going, flow control paused, closing, overflowed)
        has its sender woken to send them the ordinary way. At most the ``WriteTurns``
        share per loop turn (``share``): the rest is flushed in the next turn, after the
        sockets are polled.
        """
        loop = asyncio.get_running_loop()
        self._flush_pending = True  # marks made while flushing join this flush
        try:
            deferred = self._flush_now(share)
        finally:
            self._flush_pending = False
        if deferred:  # over this turn's share: the rest in the next turn
            self._flush_pending = True
            loop.call_soon(self._flush)

    def _flush_now(self, share: bool) -> bool:
        """``_flush``'s work; True when clients are left for the next turn."""
        turns = self.write_turns
        hub = self.hub
        broadcast = 0
        groups, self._dirty_groups = self._dirty_groups, []
        for group in groups:
            frames = hub.take_lane(group)
            if not frames:
                continue
            n = len(frames)
            data = _joined(frames)
            for client in list(group.lane.values()):
                stream = self._streams.get(client.id)
                if stream is None:
                    continue
                if stream.parked and (not share or turns.try_take()) and stream.ws.direct_ok():
                    try:
                        stream.ws.transport.write(data)
                    except Exception as exc:  # the transport refused: let websockets' path report it
                        self._internal("direct write", exc)
                    else:
                        broadcast += n
                        continue
                # Not now: the frames go to its own queue, for the per-client pass below
                # (or the next turn's), or its sender.
                if not hub.demote(client, frames):
                    hub.slow_client_disconnects += 1
                    hub.detach(client)
                    self._kick(client)
                self._mark(stream)
        dirty, self._dirty = self._dirty, []
        for i, stream in enumerate(dirty):
            if share and not turns.try_take():
                self._dirty.extend(dirty[i:])
                self.counters.broadcast += broadcast
                return True
            stream.dirty = False
            client = stream.client
            if client.in_lane:
                continue
            if client.overflowed or not stream.parked:
                stream.wake.set()  # the sender sends what is queued, or ends (overflow)
                continue
            if not stream.ws.direct_ok():
                if client.queue or client.backlog:
                    stream.wake.set()
                continue
            if client.queue:
                frames = client.take_queue()
                try:
                    stream.ws.write_frames(frames)
                except Exception as exc:  # the transport refused: let websockets' path report it
                    self._internal("direct write", exc)
                    client.queue.extendleft(reversed(frames))
                    stream.wake.set()
                    continue
                broadcast += len(frames)
            hub.promote(client)
        self.counters.broadcast += broadcast
        return False

    async def _ignore_input(self, ws: ServerConnection, bucket: TokenBucket) -> None:
        """Count (and drop) frames after the subscribe; close a client over its rate."""
        async for _ in ws:
            self.counters.client_frames_ignored += 1
            if not bucket.allow(time.monotonic()):
                self.counters.rate_limit_closes += 1
                log.warning("client %s: over %s frames/s, closing", _remote(ws), self.config.client_max_msgs_per_s)
                await ws.close(RATE_LIMITED, "rate limit exceeded")
                return

    def _kick(self, client: Client) -> None:
        """Close an overflowed client with 1013 (slow-client policy)."""
        stream = self._streams.get(client.id)
        log.warning("client %d (%s): queue full, closing with 1013", client.id, client.remote)
        if stream is not None:
            self._spawn(stream.ws.close(1013, "slow client: send queue full"))

    # --- HTTP -----------------------------------------------------------------

    def _http_page(self, path: str) -> Response:
        """``/`` (the dashboard page) and ``/static/<name>`` (its files); 404 for any other name."""
        self.counters.http_requests["/" if path == "/" else "/static/"] += 1
        asset = self.page.asset(path)
        if asset is None:
            return _json_response(404, {"error": "not found", "path": path[:200]})
        return _response(200, asset.data, asset.content_type, PAGE_HEADERS)

    async def _http_health(self, query: dict[str, list[str]]) -> Response:
        return _json_response(200, {"status": "ok"})

    async def _http_ready(self, query: dict[str, list[str]]) -> Response:
        ready = self.store is not None and self.store.is_open and self._server is not None
        return _json_response(200 if ready else 503, {"ready": ready})

    def all_counters(self) -> dict[str, Any]:
        """The status JSON's ``counters`` (declared in ``metrics.SERIES``)."""
        return counters_json(self)

    def status(self) -> dict[str, Any]:
        """The ``/api/websocket/status`` body."""
        return {
            "publishers": [
                {"run_id": p.run_id, "remote": p.remote, "connected_at": p.connected_at}
                for p in self.publishers.values()
            ],
            "publisher_count": len(self.publishers),
            "client_count": len(self.hub.clients),
            "clients": [
                {
                    "id": c.id,
                    "remote": c.remote,
                    "types": sorted(c.sub.types) if c.sub.types is not None else None,
                    "symbols": sorted(c.sub.symbols) if c.sub.symbols is not None else None,
                    "queue_depth": c.depth,
                }
                for c in self.hub.clients.values()
            ],
            "counters": self.all_counters(),
            "runs": {r: v.serialize() for r, v in self.ingest.runs().items()},
            "ring_size": len(self.hub.ring),
            "dead_letters": self.dead_letters.summary(),
            "uptime_s": round(time.monotonic() - self._started, 3),
            "rss_bytes": rss_bytes(),
            "open_fds": _open_fds(),
        }

    async def _http_status(self, query: dict[str, list[str]]) -> Response:
        return _json_response(200, self.status())

    async def _http_state(self, query: dict[str, list[str]]) -> Response:
        return _json_response(
            200,
            {
                "positions": self.state.positions,
                "portfolio": self.state.portfolio,
                "runs": {r: v.serialize() for r, v in self.ingest.runs().items()},
                "recent_trades": list(self.state.recent_trades),
            },
        )

    async def _http_trades(self, query: dict[str, list[str]]) -> Response:
        run_id = query.get("run_id", [None])[0] or None
        raw_limit = query.get("limit", ["10000"])[0]
        try:
            limit = int(raw_limit)
        except ValueError:
            return _json_response(400, {"error": "limit must be an integer"})
        if not 0 <= limit <= TRADES_LIMIT_MAX:
            return _json_response(400, {"error": f"limit must be in [0, {TRADES_LIMIT_MAX}]"})
        if self.store is None or not self.store.is_open:
            return _json_response(503, {"error": "store not open"})
        texts = await asyncio.to_thread(self.store.trades, run_id, limit)
        # Stored texts are validated JSON objects: splice them without re-encoding.
        body = ('{"trades":[' + ",".join(texts) + f'],"count":{len(texts)}}}').encode()
        return _response(200, body, "application/json")

    async def _http_events(self, query: dict[str, list[str]]) -> Response:
        """Stored (critical) envelopes: ``?run_id=&types=a,b&after_seq=&limit=``, by seq."""
        run_id = query.get("run_id", [None])[0] or None
        raw_types = query.get("types", [""])[0]
        types = [t for t in raw_types.split(",") if t] if raw_types else None
        if types is not None and not set(types) <= DATA_TYPES:
            unknown = sorted(set(types) - DATA_TYPES)
            return _json_response(400, {"error": f"unknown types: {','.join(unknown)[:200]}"})
        paging = _paging(query)
        if isinstance(paging, Response):
            return paging
        after_seq, limit = paging
        if self.store is None or not self.store.is_open:
            return _json_response(503, {"error": "store not open"})
        texts = await asyncio.to_thread(self.store.events, run_id, types, after_seq, limit)
        body = ('{"events":[' + ",".join(texts) + f'],"count":{len(texts)}}}').encode()
        return _response(200, body, "application/json")

    async def _http_dead_letters(self, query: dict[str, list[str]]) -> Response:
        """Rejected publisher frames, oldest first: ``?after_id=&run_id=&code=&limit=``."""
        paging = _paging(query, "after_id", 1000)
        if isinstance(paging, Response):
            return paging
        after_id, limit = paging
        run_id = query.get("run_id", [""])[0] or None
        code = query.get("code", [""])[0] or None
        letters = self.dead_letters.query(after_id, run_id, code, limit)
        return _json_response(
            200, {**self.dead_letters.summary(), "letters": [d.serialize() for d in letters], "count": len(letters)}
        )

    async def _http_receive_times(self, query: dict[str, list[str]]) -> Response:
        """``?run_id=&after_seq=&limit=``: when each stored envelope of a run was received."""
        run_id = query.get("run_id", [""])[0]
        if not run_id:
            return _json_response(400, {"error": "run_id is required"})
        paging = _paging(query)
        if isinstance(paging, Response):
            return paging
        after_seq, limit = paging
        if self.store is None or not self.store.is_open:
            return _json_response(503, {"error": "store not open"})
        rows = await asyncio.to_thread(self.store.receive_times, run_id, after_seq, limit)
        return _json_response(200, {"run_id": run_id, "recv_ns": rows, "count": len(rows)})

    async def _http_metrics(self, query: dict[str, list[str]]) -> Response:
        return _response(200, exposition(self.registry), METRICS_CONTENT_TYPE)

    def metrics(self) -> str:
        """Prometheus text exposition of the counters and gauges (declared in ``metrics.SERIES``)."""
        return exposition(self.registry).decode()
