"""A lean ``/ws/stream`` client: websockets' sans-I/O protocol on a plain asyncio Protocol.

The rig's subscribers share two cores with the backend they measure. The full asyncio
client of websockets costs a future, a lock and an assembler per message; at tens of
thousands of messages per second that made the rig, not the backend, the bottleneck
(event-loop lag in the subscriber processes over a second). Here every TCP read is
parsed in one go by websockets' own frame parser and each text frame goes straight to
a callback with its receive time. Pings are answered by the protocol itself.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

__all__ = ["LeanStream", "open_stream"]

OnText = Callable[[bytes, int], None]


class LeanStream(asyncio.Protocol):
    """One client connection; ``opened`` resolves after the handshake (or fails)."""

    def __init__(self, url: str, on_text: OnText, max_size: int = 2**20) -> None:
        self.proto = ClientProtocol(parse_uri(url), max_size=max_size)
        self.on_text = on_text
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.proto.send_request(self.proto.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        now = time.time_ns()
        self.proto.receive_data(data)
        for event in self.proto.events_received():
            if isinstance(event, Frame):
                if event.opcode is Opcode.TEXT:
                    self.on_text(bytes(event.data), now)
            elif isinstance(event, Response) and not self.opened.done():
                if self.proto.state is State.OPEN:
                    self.opened.set_result(None)
                else:
                    self.opened.set_exception(ConnectionError(f"handshake refused: HTTP {event.status_code}"))
        self._flush()

    def eof_received(self) -> bool | None:
        self.proto.receive_eof()
        self._flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(self.proto.close_code or 1006)

    def _flush(self) -> None:
        assert self.transport is not None
        for data in self.proto.data_to_send():
            if data:
                self.transport.write(data)
            elif self.transport.can_write_eof():
                self.transport.write_eof()
        if self.proto.close_expected() and self.proto.state is State.CLOSED:
            self.transport.close()

    def send_json(self, obj: dict[str, Any]) -> None:
        self.proto.send_text(json.dumps(obj).encode())
        self._flush()

    async def close(self, timeout: float = 2.0) -> None:
        if self.proto.state is State.OPEN:
            self.proto.send_close(1000)
            self._flush()
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), timeout)
        except TimeoutError:
            if self.transport is not None:
                self.transport.abort()


async def open_stream(url: str, on_text: OnText, timeout: float = 10.0) -> LeanStream:
    """Connect and complete the WebSocket handshake to ``url`` (ws://host:port/path)."""
    uri = parse_uri(url)
    loop = asyncio.get_running_loop()

    async def go() -> LeanStream:
        _, stream = await loop.create_connection(lambda: LeanStream(url, on_text), uri.host, uri.port)
        await stream.opened
        return stream

    return await asyncio.wait_for(go(), timeout)
