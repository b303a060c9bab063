"""The reference server's glue: picows listeners moving bytes between sockets and ``core``.

One port serves everything: ``/ws`` (publishers), ``/ws/stream`` (clients), and
``/health`` and ``/ready`` as plain HTTP 200 (picows answers a non-101 response from the
listener factory and closes the connection, so no second port is needed).

Hot path: a publisher's frame is decoded for its keys, framed once and pushed to the
turn's batch; one ``call_soon`` flush per event-loop turn writes each client its share
in one ``transport.write`` and then sends each publisher one cumulative ack. A client
whose unsent bytes pass ``client_buffer_bytes`` (the transport's high-water mark) is
closed with 1013.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from picows import (
    WSCloseCode,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
    ws_create_server,
)

from .core import (
    Config,
    Fanout,
    Filter,
    Rejected,
    Runs,
    ack_frame,
    check_hello,
    envelope_keys,
    parse_subscribe,
    snapshot_frame,
    text_frame,
    welcome_frame,
)

__all__ = ["ReferenceServer"]

log = logging.getLogger("reference_server")

TEXT = WSMsgType.TEXT
BINARY = WSMsgType.BINARY
CLOSE = WSMsgType.CLOSE
#: After a 1013 close frame is queued, a client that never reads is cut after this.
SLOW_CLOSE_GRACE_S = 5.0
HEALTH_PATHS = (b"/health", b"/ready")
HEALTH_BODY = b'{"status":"ok"}'


def _answer_close(transport: WSTransport, frame: WSFrame) -> None:
    """The peer's close frame: echo its code (1000 if it gave none) and hang up."""
    code = frame.get_close_code()
    transport.send_close(code if code != WSCloseCode.NO_INFO else WSCloseCode.OK)
    transport.disconnect()


class _Publisher(WSListener):
    """One ``/ws`` connection: hello first, then envelopes."""

    def __init__(self, server: ReferenceServer) -> None:
        super().__init__()
        self.server = server
        self.transport: WSTransport | None = None
        self.run_id: str | None = None
        self.acked = 0

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.server.transports.add(transport)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind != TEXT and kind != BINARY:
            if kind == CLOSE:
                _answer_close(transport, frame)
            return
        if not frame.fin:
            transport.send_close(WSCloseCode.UNSUPPORTED_DATA, b"fragmented messages are not supported")
            transport.disconnect()
            return
        payload = frame.get_payload_as_bytes()
        if self.run_id is not None:
            self.server.ingest(self, payload)
        else:
            self._hello(transport, payload)

    def _hello(self, transport: WSTransport, payload: bytes) -> None:
        hello = check_hello(payload, self.server.config.auth_token)
        if hello.run_id is None:
            log.info("publisher refused (close %d)", hello.close)
            if hello.error is not None:
                transport.send(TEXT, hello.error)
            transport.send_close(WSCloseCode(hello.close), b"expected a hello with the right token")
            transport.disconnect()
            return
        self.run_id = hello.run_id
        self.acked = self.server.runs.acked(hello.run_id)
        transport.send(TEXT, welcome_frame(hello.run_id, self.acked))
        log.info("publisher %s connected (acked_seq=%d)", hello.run_id, self.acked)

    def send_ack(self) -> None:
        """One cumulative ack, if the run's highest seq moved since the last one."""
        assert self.run_id is not None and self.transport is not None
        seq = self.server.runs.acked(self.run_id)
        if seq > self.acked:
            self.acked = seq
            self.transport.send(TEXT, ack_frame(self.run_id, seq))

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.server.transports.discard(transport)
        self.server.acks_due.pop(self, None)
        if self.run_id is not None:
            log.info("publisher %s disconnected", self.run_id)


class _Client(WSListener):
    """One ``/ws/stream`` connection: a subscribe (or the default after a wait), then writes."""

    def __init__(self, server: ReferenceServer) -> None:
        super().__init__()
        self.server = server
        self.transport: WSTransport | None = None
        self.filter: Filter | None = None
        self.slow = False
        #: The fan-out's write: the socket transport's own, bound once connected.
        self.write: Callable[[bytes], None] = self._not_connected
        self._timer: asyncio.TimerHandle | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.server.transports.add(transport)
        under = transport.underlying_transport
        # The fan-out's writes go straight to the socket transport: the frames are
        # already framed, and one write carries a whole turn's share.
        self.write = under.write
        under.set_write_buffer_limits(high=self.server.config.client_buffer_bytes)
        self._timer = asyncio.get_running_loop().call_later(
            self.server.config.subscribe_wait_s, self.server.attach, self, Filter(), True, True
        )

    @staticmethod
    def _not_connected(data: bytes) -> None:
        raise ConnectionError("not connected")

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind == CLOSE:
            _answer_close(transport, frame)
        elif kind == TEXT and self.filter is None:
            try:
                sub = parse_subscribe(frame.get_payload_as_bytes())
            except Rejected as exc:
                transport.send(TEXT, exc.frame)
                self.server.attach(self, Filter(), True, True)
                return
            self.server.attach(self, sub.filter, sub.snapshot, sub.resumed)
        # Anything after the subscribe is ignored, as the backend does.

    def pause_writing(self) -> None:
        """Unsent bytes passed the bound: close with 1013 (from the loop, not mid-flush)."""
        if not self.slow:
            self.slow = True
            asyncio.get_running_loop().call_soon(self.server.kick, self)

    def resume_writing(self) -> None:
        pass

    def cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.cancel_timer()
        self.server.transports.discard(transport)
        self.server.detach(self)


class ReferenceServer:
    """Start, serve, stop; holds the run bookkeeping and the fan-out."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.runs = Runs()
        self.fanout = Fanout()
        self.transports: set[WSTransport] = set()
        #: Publishers owed an ack at the end of this turn (a dict as an ordered set).
        self.acks_due: dict[_Publisher, None] = {}
        self.ingested = 0
        self.slow_client_disconnects = 0
        self._server: asyncio.Server | None = None
        self._flush_scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._server = await ws_create_server(
            self._route,
            self.config.host,
            self.config.port,
            max_frame_size=self.config.max_frame_bytes,
            websocket_handshake_timeout=10,
            logger_name="reference_server.ws",
        )
        log.info("listening on %s:%d", self.config.host, self.port)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop accepting, close every connection with 1001, wait briefly for them."""
        if self._server is None:
            return
        self._server.close()
        transports = list(self.transports)
        for transport in transports:
            transport.send_close(WSCloseCode.GOING_AWAY, b"server shutting down")
            transport.disconnect()
        if transports:
            await asyncio.wait([asyncio.ensure_future(t.wait_disconnected()) for t in transports], timeout=2)
        self._server = None

    def _route(self, request: WSUpgradeRequest) -> WSListener | WSUpgradeResponseWithListener | None:
        path = request.path.partition(b"?")[0]
        if path == b"/ws":
            return _Publisher(self)
        if path == b"/ws/stream":
            return _Client(self)
        if path in HEALTH_PATHS:
            ok = WSUpgradeResponse.create_ok_response(HEALTH_BODY, {"Content-Type": "application/json"})
            return WSUpgradeResponseWithListener(ok, None)
        return None  # 404

    # --- publishing ----------------------------------------------------------

    def ingest(self, pub: _Publisher, payload: bytes) -> None:
        """One envelope: broadcast it if its seq is new, owe its publisher an ack."""
        assert pub.run_id is not None and pub.transport is not None
        try:
            keys = envelope_keys(payload, pub.run_id)
        except Rejected as exc:
            pub.transport.send(TEXT, exc.frame)
            return
        self.ingested += 1
        if self.runs.advance(pub.run_id, keys.seq) and self.fanout.groups:
            self.fanout.push(keys.type, keys.symbol, text_frame(payload))
        self.acks_due[pub] = None
        if not self._flush_scheduled:
            self._flush_scheduled = True
            assert self._loop is not None
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        """End of the turn: each client's share in one write, then each publisher's ack."""
        self._flush_scheduled = False
        self.fanout.flush()
        if self.acks_due:
            due, self.acks_due = self.acks_due, {}
            for pub in due:
                pub.send_ack()

    # --- clients -------------------------------------------------------------

    def attach(self, client: _Client, filt: Filter, snapshot: bool, resumed: bool) -> None:
        """Subscribe ``client``: snapshot first, then only what is published after it."""
        client.cancel_timer()
        if client.filter is not None or client.transport is None or client.transport.is_disconnected:
            return
        # Frames batched before this instant are older than the snapshot: send them to
        # the clients already attached, not to this one.
        self.fanout.flush()
        if snapshot:
            client.transport.send(TEXT, snapshot_frame(self.runs.last, resumed))
        client.filter = filt
        self.fanout.add(client, filt)

    def detach(self, client: _Client) -> None:
        if client.filter is not None:
            self.fanout.remove(client, client.filter)

    def kick(self, client: _Client) -> None:
        """Slow-client policy: 1013, then cut it if it does not read the close."""
        if client.filter is None or not self.fanout.remove(client, client.filter):
            return
        self.slow_client_disconnects += 1
        log.info("client closed with 1013: over %d unsent bytes", self.config.client_buffer_bytes)
        transport = client.transport
        assert transport is not None and self._loop is not None
        transport.send_close(WSCloseCode.TRY_AGAIN_LATER, b"slow client: send buffer full")
        self._loop.call_later(SLOW_CLOSE_GRACE_S, transport.disconnect, False)

    def counters(self) -> dict[str, Any]:
        return {
            "ingested": self.ingested,
            "delivered": self.fanout.delivered,
            "clients": self.fanout.clients,
            "slow_client_disconnects": self.slow_client_disconnects,
        }
