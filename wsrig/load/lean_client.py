"""A lean ``/ws/stream`` client: picows (a Cython WebSocket protocol) calling back per frame.

The rig's subscribers share two cores with the backend they measure, so their cost per
delivered message decides whether the rig or the backend saturates first. websockets'
full asyncio client costs a future, a lock and an assembler per message; its sans-I/O
protocol on an asyncio Protocol (this module's previous transport) still parsed every
frame in Python generators: ~45 % of a subscriber process's py-spy samples at 50,000
deliveries/s. picows parses frames in C straight from the socket's read buffer and
calls ``on_ws_frame`` once per frame, which hands the payload to ``on_text`` with the
time it saw the frame. Pings are answered inside picows (``enable_auto_pong``). A frame
over ``MAX_FRAME_BYTES`` (the limit websockets had here) closes the link with 1009.

The receive time is taken per frame: one ``time.time_ns()`` costs about what tracking
``WSFrame.last_in_buffer`` to stamp once per TCP read would, and the per-read variant
would carry a stale stamp over when a ping (answered inside picows, never shown to the
listener) ends a read.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from picows import WSCloseCode, WSFrame, WSHandshakeError, WSListener, WSMsgType, WSTransport, ws_connect

__all__ = ["MAX_FRAME_BYTES", "LeanStream", "open_stream"]

OnText = Callable[[bytes, int], None]

#: Largest frame accepted from the backend; a bigger one closes the link with 1009.
MAX_FRAME_BYTES = 2**20
#: Close code when the peer sent no close frame (RFC 6455 7.1.5, as websockets reports it).
ABNORMAL_CLOSURE = 1006
#: Close code when the peer's close frame carried no code.
NO_STATUS_RCVD = 1005

_TEXT = WSMsgType.TEXT
_CLOSE = WSMsgType.CLOSE
_time_ns = time.time_ns


class LeanStream(WSListener):
    """One client connection; ``closed`` resolves to the peer's close code (1006: none).

    picows calls ``on_ws_frame`` for every frame but pings, which it answers itself.
    Text frames go to ``on_text`` (the backend sends each envelope in one unfragmented
    text frame; continuation frames are dropped, as before); a close frame from the
    peer is echoed with its code and the link closed.
    """

    def __init__(self, on_text: OnText) -> None:
        super().__init__()
        self.on_text = on_text
        self.transport: WSTransport | None = None
        self.closed: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        msg_type = frame.msg_type
        if msg_type is _TEXT:
            # picows refuses a frame over max_frame_size (sends 1009, disconnects 10 ms later)
            # but still completes and hands over one that arrives in full meanwhile.
            if frame.payload_size <= MAX_FRAME_BYTES:
                self.on_text(frame.get_payload_as_bytes(), _time_ns())
        elif msg_type is _CLOSE:
            if not transport.is_close_frame_sent:  # the peer started it: echo its code (RFC 6455 5.5.1)
                transport.send_close(frame.get_close_code())
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if not self.closed.done():
            self.closed.set_result(close_code(transport))

    def send_json(self, obj: dict[str, Any]) -> None:
        assert self.transport is not None
        self.transport.send(_TEXT, json.dumps(obj).encode())

    async def close(self, timeout: float = 2.0) -> None:
        """Close with 1000 and wait for the peer's close (at most ``timeout``, then abort)."""
        transport = self.transport
        if transport is None or self.closed.done():
            return
        if not transport.is_close_frame_sent:
            transport.send_close(WSCloseCode.OK)
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), timeout)
        except TimeoutError:
            transport.disconnect(graceful=False)


def close_code(transport: WSTransport) -> int:
    """The close code the peer sent; 1006 when the link dropped without one."""
    handshake = transport.close_handshake
    if handshake is None or handshake.recv is None:
        return ABNORMAL_CLOSURE
    code = int(handshake.recv.code.value)
    return code or NO_STATUS_RCVD


async def open_stream(url: str, on_text: OnText, timeout: float = 10.0) -> LeanStream:
    """Connect and complete the WebSocket handshake to ``url`` (ws://host:port/path)."""

    async def go() -> LeanStream:
        try:
            _, stream = await ws_connect(
                lambda _request, _response: LeanStream(on_text),
                url,
                websocket_handshake_timeout=timeout,
                enable_auto_pong=True,
                max_frame_size=MAX_FRAME_BYTES,
                max_redirects=0,
            )
        except WSHandshakeError as exc:
            status = int(exc.response.status) if exc.response is not None else 0
            raise ConnectionError(f"handshake refused: HTTP {status}: {exc}") from exc
        if not isinstance(stream, LeanStream):  # picows returns no listener when the link dropped mid-handshake
            raise ConnectionError("closed during the handshake")
        return stream

    return await asyncio.wait_for(go(), timeout)
