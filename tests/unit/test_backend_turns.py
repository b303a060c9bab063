"""WriteTurns: a bounded number of client writes per event-loop turn, sockets polled between."""

from __future__ import annotations

import asyncio
import socket

from dashboard_backend.turns import WriteTurns


def _order(per_turn: int, writers: int) -> tuple[list[str], WriteTurns]:
    """Events in the order they happened: writes ("w<i>") and one ready socket ("io")."""

    async def scenario() -> tuple[list[str], WriteTurns]:
        turns = WriteTurns(per_turn=per_turn)
        events: list[str] = []
        loop = asyncio.get_running_loop()
        rsock, wsock = socket.socketpair()
        rsock.setblocking(False)

        def readable() -> None:  # stands for an accept or a handshake byte arriving
            rsock.recv(16)
            events.append("io")
            loop.remove_reader(rsock)

        async def writer(i: int) -> None:
            await turns.take()
            events.append(f"w{i}")

        loop.add_reader(rsock, readable)
        wsock.send(b"x")
        try:
            await asyncio.gather(*(writer(i) for i in range(writers)))
            await asyncio.sleep(0)
        finally:
            loop.remove_reader(rsock)
            rsock.close()
            wsock.close()
        return events, turns

    return asyncio.run(scenario())


def test_without_a_share_the_ready_socket_waits_for_every_write() -> None:
    events, turns = _order(per_turn=100, writers=7)
    assert events == [f"w{i}" for i in range(7)] + ["io"]
    assert turns.deferred == 0


def test_the_socket_is_served_after_one_share_and_every_write_still_happens_in_order() -> None:
    events, turns = _order(per_turn=3, writers=7)
    assert events == ["w0", "w1", "w2", "io", "w3", "w4", "w5", "w6"]
    assert turns.deferred == 4


def test_a_cancelled_writer_gives_its_place_up() -> None:
    async def scenario() -> list[int]:
        turns = WriteTurns(per_turn=1)
        done: list[int] = []

        async def writer(i: int) -> None:
            await turns.take()
            done.append(i)

        tasks = [asyncio.create_task(writer(i)) for i in range(4)]
        await asyncio.sleep(0)  # w0 writes, w1..w3 wait
        tasks[1].cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return done

    assert asyncio.run(scenario()) == [0, 2, 3]
