"""Frames built once per broadcast are the bytes websockets would have sent to each client."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from dashboard_backend.batching import BatchingConnection, payload_of, text_frame
from websockets.frames import OP_TEXT, Frame
from websockets.protocol import CLOSING, OPEN
from websockets.server import ServerProtocol


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65_535, 65_536, 70_000])
def test_text_frame_is_websockets_own_serialization(size: int) -> None:
    payload = ("é" * size).encode()[:size]
    expected = Frame(OP_TEXT, payload).serialize(mask=False, extensions=[])
    assert text_frame(payload) == expected
    assert payload_of(text_frame(payload)) == payload


class _Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass


def _connection() -> tuple[BatchingConnection, _Transport]:
    """An open server connection on a fake transport (call inside a running loop)."""
    protocol = ServerProtocol()
    protocol.state = OPEN
    conn = BatchingConnection(protocol, None)  # type: ignore[arg-type]  # no Server needed
    transport = _Transport()
    conn.transport = transport  # type: ignore[assignment]
    return conn, transport


def _in_loop(check: Callable[[], None]) -> None:
    async def scenario() -> None:
        check()

    asyncio.run(scenario())


def test_direct_writes_only_on_a_plain_open_idle_connection() -> None:
    _in_loop(_direct_writes_only_on_a_plain_open_idle_connection)


def _direct_writes_only_on_a_plain_open_idle_connection() -> None:
    conn, transport = _connection()
    assert conn.direct_ok()
    frames: list[Any] = [text_frame(b'{"a":1}'), text_frame(b'{"b":2}')]
    conn.write_frames(frames)
    assert transport.written == [b"".join(frames)]

    conn.paused = True  # flow control: left to send_frames, which waits for the drain
    assert not conn.direct_ok()
    conn.paused = False
    conn.protocol.extensions = [object()]  # type: ignore[list-item]  # e.g. permessage-deflate
    assert not conn.direct_ok()
    conn.protocol.extensions = []
    transport.closing = True
    assert not conn.direct_ok()
    transport.closing = False
    conn.protocol.send_ping(b"x")  # the protocol's own bytes are waiting: they go first
    assert not conn.direct_ok()
    conn.send_data()
    assert conn.direct_ok()
    conn.protocol.state = CLOSING
    assert not conn.direct_ok()


def test_write_frames_frames_texts_mixed_in() -> None:
    _in_loop(_write_frames_frames_texts_mixed_in)


def _write_frames_frames_texts_mixed_in() -> None:
    conn, transport = _connection()
    conn.write_frames(["hi", text_frame(b"there")])
    conn.write_frames(["one"])
    assert transport.written == [text_frame(b"hi") + text_frame(b"there"), text_frame(b"one")]


def test_send_frames_without_extensions_is_byte_identical_to_websockets() -> None:
    async def scenario() -> list[bytes]:
        conn, transport = _connection()
        await conn.send_frames(["a", text_frame(b"b"), "c" * 200])
        return transport.written

    reference = [Frame(OP_TEXT, p).serialize(mask=False, extensions=[]) for p in (b"a", b"b", b"c" * 200)]
    assert asyncio.run(scenario()) == [b"".join(reference)]
