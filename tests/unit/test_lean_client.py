"""The load subscribers' picows client (wsrig.load.lean_client) against a tiny picows server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_create_server

from wsrig.load import evloop
from wsrig.load.lean_client import MAX_FRAME_BYTES, open_stream

RUNNERS = {"asyncio": asyncio.run, "uvloop": evloop.run}


class _Peer(WSListener):
    """Server side of one connection: runs ``script`` once connected, records what the client sent."""

    def __init__(self, script: Callable[[WSTransport, _Peer], Awaitable[None]]) -> None:
        super().__init__()
        self.script = script
        self.received: list[tuple[WSMsgType, bytes]] = []
        self.pong = asyncio.get_running_loop().create_future()
        self.client_close: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.task: asyncio.Task[None] | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.task = asyncio.ensure_future(self.script(transport, self))

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        self.received.append((frame.msg_type, frame.get_payload_as_bytes()))
        if frame.msg_type is WSMsgType.PONG and not self.pong.done():
            self.pong.set_result(frame.get_payload_as_bytes())
        elif frame.msg_type is WSMsgType.CLOSE:
            if not self.client_close.done():
                self.client_close.set_result(int(frame.get_close_code().value))
            if not transport.is_close_frame_sent:
                transport.send_close(frame.get_close_code())
            transport.disconnect()


async def _serve(script: Callable[[WSTransport, _Peer], Awaitable[None]]) -> tuple[Any, str, list[_Peer]]:
    peers: list[_Peer] = []

    def factory(request: Any) -> _Peer | None:
        if request.path != b"/ws/stream":
            return None  # picows answers 404
        peers.append(_Peer(script))
        return peers[-1]

    server = await ws_create_server(factory, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"ws://127.0.0.1:{port}/ws/stream", peers


@pytest.mark.parametrize("runner", sorted(RUNNERS))
def test_text_frames_arrive_in_order_pings_are_answered_and_the_close_code_propagates(runner: str) -> None:
    """Every text frame in order with a receive time, a ping answered, the server's 4001 close reported."""

    async def script(transport: WSTransport, peer: _Peer) -> None:
        for i in range(500):
            transport.send(WSMsgType.TEXT, f'{{"n":{i}}}'.encode())
        transport.send(WSMsgType.BINARY, b"binary frames are not text")
        transport.send_ping(b"are you there")
        await asyncio.wait_for(peer.pong, 5)
        transport.send(WSMsgType.TEXT, b'{"n":500}')
        transport.send_close(WSCloseCode(4001), b"done")

    async def go() -> None:
        server, url, peers = await _serve(script)
        got: list[tuple[bytes, int]] = []
        t0 = time.time_ns()
        stream = await open_stream(url, lambda raw, ns: got.append((raw, ns)), timeout=5)
        assert await asyncio.wait_for(stream.closed, 5) == 4001
        assert [json.loads(raw)["n"] for raw, _ in got] == list(range(501))
        assert all(t0 <= ns <= time.time_ns() for _, ns in got)
        assert await peers[0].pong == b"are you there"
        assert await peers[0].client_close == 4001  # the client echoed the server's code
        await stream.close()  # already closed: returns at once
        server.close()

    RUNNERS[runner](asyncio.wait_for(go(), 10))


def test_send_json_reaches_the_server_and_close_waits_for_the_echo() -> None:
    """send_json is one text frame; close() sends 1000 and resolves closed with the peer's echo."""

    async def script(transport: WSTransport, peer: _Peer) -> None:
        return None

    async def go() -> None:
        server, url, peers = await _serve(script)
        stream = await open_stream(url, lambda raw, ns: None, timeout=5)
        stream.send_json({"type": "subscribe", "snapshot": False})
        await stream.close(timeout=5)
        assert stream.closed.result() == 1000
        assert peers[0].received[0] == (WSMsgType.TEXT, b'{"type": "subscribe", "snapshot": false}')
        assert await peers[0].client_close == 1000
        server.close()

    evloop.run(asyncio.wait_for(go(), 10))


def test_a_dropped_link_is_1006_and_an_oversize_frame_is_refused_with_1009() -> None:
    """No close frame: 1006. A frame over MAX_FRAME_BYTES: the client closes with 1009."""

    async def drop(transport: WSTransport, peer: _Peer) -> None:
        transport.send(WSMsgType.TEXT, b"one")
        transport.disconnect(graceful=False)

    async def oversize(transport: WSTransport, peer: _Peer) -> None:
        transport.send(WSMsgType.TEXT, b"x" * (MAX_FRAME_BYTES + 1))

    async def go() -> None:
        server, url, _ = await _serve(drop)
        got: list[bytes] = []
        stream = await open_stream(url, lambda raw, ns: got.append(raw), timeout=5)
        assert await asyncio.wait_for(stream.closed, 5) == 1006
        assert got == [b"one"]
        server.close()

        server, url, peers = await _serve(oversize)
        stream = await open_stream(url, lambda raw, ns: got.append(raw), timeout=5)
        await asyncio.wait_for(stream.closed, 5)
        assert await asyncio.wait_for(peers[0].client_close, 5) == 1009
        assert got == [b"one"]  # the big frame never reached on_text
        server.close()

    evloop.run(asyncio.wait_for(go(), 10))


def test_a_refused_handshake_is_a_connection_error() -> None:
    """HTTP 404 instead of 101: ConnectionError naming the status."""

    async def go() -> None:
        server, url, _ = await _serve(lambda transport, peer: asyncio.sleep(0))
        with pytest.raises(ConnectionError, match="HTTP 404"):
            await open_stream(url.replace("/ws/stream", "/nowhere"), lambda raw, ns: None, timeout=5)
        server.close()

    evloop.run(asyncio.wait_for(go(), 10))


def test_load_processes_run_on_uvloop_and_fall_back_to_asyncio(monkeypatch: pytest.MonkeyPatch) -> None:
    """evloop.run uses uvloop when it imports, the stdlib loop when it does not."""

    async def loop_module() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert evloop.run(loop_module()).startswith("uvloop")
    monkeypatch.setitem(__import__("sys").modules, "uvloop", None)  # import uvloop -> ImportError
    assert evloop.run(loop_module()).startswith("asyncio")
