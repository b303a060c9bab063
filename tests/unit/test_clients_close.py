"""wsrig.clients.close_quietly: closing after the peer closed (1009) raises nothing."""

from __future__ import annotations

import asyncio

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.protocol import State

from wsrig.clients import close_quietly


async def _echo(ws) -> None:
    async for msg in ws:
        await ws.send(msg)


def test_close_quietly_after_the_peer_closed_for_size_and_on_an_open_connection() -> None:
    async def go() -> None:
        async with serve(_echo, "127.0.0.1", 0, max_size=1024) as server:
            port = server.sockets[0].getsockname()[1]
            ws = await connect(f"ws://127.0.0.1:{port}")
            await ws.send("x" * 4096)  # the server closes with 1009
            for _ in range(100):
                if ws.state is not State.OPEN:
                    break
                await asyncio.sleep(0.01)
            await close_quietly(ws)
            assert ws.state is State.CLOSED and ws.close_code == 1009
            ok = await connect(f"ws://127.0.0.1:{port}")
            await close_quietly(ok)
            assert ok.state is State.CLOSED and ok.close_code == 1000

    asyncio.run(asyncio.wait_for(go(), 10))
