"""The WebSocket handlers: frames from a socket into a session, its answers back out.

``/ws`` connections feed a ``PublisherSession``, ``/ws/stream`` ones a ``ClientSession``
(the rules, without I/O); this layer only awaits the socket, performs the ``Send`` and
``Close`` actions the sessions return, runs the acker and the client's reader, and hands
each client's stream to the ``Delivery``. Also here: the handshake's admission (Origin
allow-list, connection limit) and what websockets reports about handshakes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from .actions import Action, Close
from .batching import BatchingConnection
from .client_session import SUBSCRIBE_TIMEOUT_S, Clients, ClientSession
from .config import Config
from .delivery import Delivery
from .gcwatch import FullCollections
from .http_api import json_response
from .metrics import ServerCounters
from .publisher_session import INTERNAL_ERROR, SUPERSEDED, Publishers, PublisherSession

__all__ = [
    "ACK_INTERVAL_S",
    "DRAIN_READER_S",
    "WS_PATHS",
    "YIELD_EVERY",
    "Connections",
    "HandshakeNoise",
    "connection_class",
    "remote_of",
    "same_origin",
]

log = logging.getLogger("dashboard_backend")

#: The WebSocket endpoints: publishers, clients.
WS_PATHS = ("/ws", "/ws/stream")
ACK_INTERVAL_S = 0.005
YIELD_EVERY = 32
#: How long a closing client's reader may take to drain frames it already received.
DRAIN_READER_S = 2.0


def remote_of(ws: ServerConnection) -> str:
    addr = ws.remote_address
    if isinstance(addr, tuple) and len(addr) >= 2:
        return f"{addr[0]}:{addr[1]}"
    return str(addr)


def same_origin(request: Request) -> bool:
    """Whether the handshake's Origin is this backend's own page: ``http(s)://`` + its Host."""
    origin = request.headers.get("Origin")
    host = request.headers.get("Host")
    if not origin or not host:
        return False
    origin, host = origin.lower(), host.lower()
    return origin in (f"http://{host}", f"https://{host}")


class HandshakeNoise(logging.Filter):
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


def connection_class(on_timeout: Callable[[], None]) -> type[BatchingConnection]:
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


async def _perform(ws: ServerConnection, actions: list[Action]) -> None:
    """Send and close as a session asked, in order."""
    for action in actions:
        if isinstance(action, Close):
            await ws.close(action.code, action.reason)
        else:
            await ws.send(action.text)


@dataclass(eq=False)
class _Link:
    """A live publisher's connection and the event that wakes its acker."""

    ws: ServerConnection
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class Connections:
    """The ``serve`` handler and the handshake's admission."""

    def __init__(
        self,
        config: Config,
        *,
        publishers: Publishers,
        clients: Clients,
        delivery: Delivery,
        counters: ServerCounters,
        full_gc: FullCollections,
        internal: Callable[[str, BaseException], None],
        spawn: Callable[[Awaitable[Any]], None],
    ) -> None:
        self.config = config
        self.publishers = publishers
        self.clients = clients
        self.delivery = delivery
        self.counters = counters
        self.full_gc = full_gc
        self._internal = internal
        self._spawn = spawn
        #: Each accepted publisher session's connection.
        self._links: dict[PublisherSession, _Link] = {}
        #: WebSocket connections admitted by ``admit``, until their TCP connection is
        #: lost. A set kept current by a callback, so admitting one more client costs
        #: O(1) instead of a walk over all of them.
        self._admitted: set[ServerConnection] = set()

    # --- the handshake ----------------------------------------------------------

    def admit(self, conn: ServerConnection, request: Request) -> Response | None:
        """Origin allow-list, then the connection limit; None lets the upgrade proceed."""
        self.full_gc.arrived(time.monotonic())
        # The page this backend serves (Origin http(s):// + its own Host) passes whatever the list.
        origins = () if same_origin(request) else self.config.allowed_origins
        origin = request.headers.get("Origin")
        if origins and origin not in origins and not (origin is None and self.config.allow_missing_origin):
            self.counters.origin_rejected += 1
            return json_response(403, {"error": "origin not allowed"})
        if len(self._admitted) >= self.config.max_connections:
            self.counters.connections_refused += 1
            return json_response(503, {"error": "too many connections", "limit": self.config.max_connections})
        self._admitted.add(conn)
        conn.connection_lost_waiter.add_done_callback(lambda _: self._admitted.discard(conn))
        return None

    async def handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        path = ws.request.path.partition("?")[0]
        now = time.monotonic()
        remote = remote_of(ws)
        session = self.publishers.open(remote, now) if path == "/ws" else self.clients.open(remote, now)
        try:
            if isinstance(session, PublisherSession):
                await self._publisher(ws, session)
            else:
                await self._client(ws, session)
        except ConnectionClosed:
            pass
        finally:
            self.full_gc.closed(time.monotonic())
            close_sent = ws.protocol.close_sent
            code = close_sent.code if close_sent is not None else None
            if isinstance(session, PublisherSession):
                session.close_sent(code, close_sent.reason if close_sent is not None else "")
            else:
                session.close_sent(code)

    # --- publishers (/ws) -------------------------------------------------------

    async def _publisher(self, ws: ServerConnection, session: PublisherSession) -> None:
        try:
            raw = await asyncio.wait_for(ws.recv(), self.config.handshake_timeout)
        except TimeoutError:
            await _perform(ws, session.hello_timed_out())
            return
        actions, superseded = session.receive_hello(raw, datetime.now(UTC))
        if superseded is not None:
            old = self._links.get(superseded)
            if old is not None:
                self._spawn(old.ws.close(SUPERSEDED, "superseded by a newer connection"))
        if not session.accepted:
            await _perform(ws, actions)
            return
        link = self._links[session] = _Link(ws)
        committer = self.publishers.committer
        assert committer is not None
        acker = asyncio.create_task(self._acker(session, link))
        try:
            await _perform(ws, actions)
            handled = 0
            async for raw in ws:
                if session.superseded:
                    break
                wait = session.throttle(time.monotonic())
                if wait > 0:
                    await asyncio.sleep(wait)
                handled += 1
                if handled % YIELD_EVERY == 0:
                    # recv() does not yield while frames are buffered: let senders,
                    # the acker, the committer and pings run during a burst.
                    await asyncio.sleep(0)
                try:
                    reply = session.receive(raw, time.time_ns())
                except Exception as exc:
                    self._internal("publisher frame", exc)
                    reply = INTERNAL_ERROR
                if reply is not None:
                    await ws.send(reply)
                committer.poke()
        finally:
            acker.cancel()
            session.closed()
            del self._links[session]
            log.info("publisher %s disconnected (code %s)", session.run_id, ws.close_code)

    async def _acker(self, session: PublisherSession, link: _Link) -> None:
        """Send cumulative acks of durable watermarks, at most one per ``ACK_INTERVAL_S``."""
        wake = link.wake
        while True:
            await wake.wait()
            wake.clear()
            frame = session.ack()
            if frame is not None:
                try:
                    await link.ws.send(frame)
                except ConnectionClosed:
                    return
            await asyncio.sleep(ACK_INTERVAL_S)

    def wake_acker(self, run_id: str) -> None:
        """A commit moved ``run_id``'s durable watermark: its publisher may be due an ack."""
        session = self.publishers.get(run_id)
        if session is not None:
            link = self._links.get(session)
            if link is not None:
                link.wake.set()

    async def close_publishers(self, timeout: float) -> None:
        """Close every publisher (1001), waiting up to ``timeout`` for their handshakes."""
        closing = [asyncio.ensure_future(link.ws.close(1001, "server shutting down")) for link in self._live_links()]
        if closing:
            await asyncio.wait(closing, timeout=timeout)

    def append_failed(self, run_id: str) -> None:
        """Redis mode: an append of ``run_id`` failed. Its publisher is closed (1013) and
        reconnects through the balancer; nothing of it was acked that is not stored."""
        session = self.publishers.get(run_id)
        link = self._links.get(session) if session is not None else None
        if link is not None:
            self._spawn(link.ws.close(1013, "shared log unavailable, try again later"))

    def close_all(self, code: int, reason: str) -> None:
        """Close every publisher and client (Redis mode: the replica lost the shared log)."""
        for link in self._live_links():
            self._spawn(link.ws.close(code, reason))
        for stream in list(self.delivery.streams.values()):
            self._spawn(stream.ws.close(code, reason))

    def _live_links(self) -> list[_Link]:
        """The links of the sessions ``by_run`` holds (a superseded one is already closing)."""
        return [link for s in self.publishers.sessions() if (link := self._links.get(s)) is not None]

    # --- clients (/ws/stream) ---------------------------------------------------

    async def _client(self, ws: ServerConnection, session: ClientSession) -> None:
        try:
            raw = await asyncio.wait_for(ws.recv(), SUBSCRIBE_TIMEOUT_S)
        except TimeoutError:
            client = session.subscribe_timed_out()
        else:
            actions, client = session.receive_subscribe(raw, time.monotonic())
            # A peer that already closed still has its later frames counted by the reader.
            with contextlib.suppress(ConnectionClosed):
                await _perform(ws, actions)
        assert isinstance(ws, BatchingConnection)  # serve(create_connection=...)
        stream = self.delivery.open(ws, client)
        # No await between attach and the snapshot: both see the same instant.
        head = session.attach()
        sender = asyncio.create_task(self.delivery.sender(stream, head))
        reader = asyncio.create_task(self._ignore_input(ws, session))
        try:
            await asyncio.wait({sender, reader}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sender.cancel()
            session.closed()
            self.delivery.streams.pop(client.id, None)
            # The connection is closing: let the reader count what it already received.
            if not reader.done():
                await asyncio.wait({reader}, timeout=DRAIN_READER_S)
            reader.cancel()
            for task in (sender, reader):
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                    await task

    async def _ignore_input(self, ws: ServerConnection, session: ClientSession) -> None:
        """Count (and drop) frames after the subscribe; close a client over its rate."""
        async for _ in ws:
            close = session.receive(time.monotonic())
            if close is not None:
                await ws.close(close.code, close.reason)
                return
