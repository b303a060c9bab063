"""Tests of trading_bot.publisher against a tiny in-test backend on 127.0.0.1:0."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from trading_bot.config import Config
from trading_bot.publisher import Publisher
from trading_bot.publisher_core import Backoff, MemoryOutbox, PublisherCore
from websockets.asyncio.server import ServerConnection, serve
from wscontract import validate_control, validate_envelope

TOKEN = "test-token-123"


class FakeBackend:
    """Accepts hello, answers welcome with the contiguous acked seq, acks every frame."""

    def __init__(self, kill_after: int | None = None) -> None:
        self.kill_after = kill_after  # abort the first connection after this many frames
        self.connections: list[tuple[str, list[int]]] = []  # (run_id, seqs in arrival order)
        self.received: dict[str, set[int]] = {}
        self.hellos: list[dict[str, Any]] = []
        self.on_frame: Callable[[ServerConnection, dict[str, Any]], Any] | None = None

    def acked(self, run_id: str) -> int:
        got, n = self.received.get(run_id, set()), 0
        while n + 1 in got:
            n += 1
        return n

    async def handler(self, ws: ServerConnection) -> None:
        hello = json.loads(await ws.recv())
        validate_control(hello)
        self.hellos.append(hello)
        if hello["auth"] != TOKEN:
            await ws.close(1008, "bad token")
            return
        run_id = hello["run_id"]
        arrivals: list[int] = []
        self.connections.append((run_id, arrivals))
        got = self.received.setdefault(run_id, set())
        await ws.send(json.dumps({"type": "welcome", "run_id": run_id, "acked_seq": self.acked(run_id)}))
        async for raw in ws:
            env = validate_envelope(json.loads(raw))
            arrivals.append(env["seq"])
            got.add(env["seq"])
            if env["type"] == "gap":
                for a, b in env["data"]["ranges"]:
                    got.update(range(a, b + 1))
            if self.on_frame is not None:
                await self.on_frame(ws, env)
            if self.kill_after is not None and len(self.connections) == 1 and len(arrivals) >= self.kill_after:
                ws.transport.abort()  # abrupt: no close frame, like a crash
                return
            await ws.send(json.dumps({"type": "ack", "run_id": run_id, "seq": self.acked(run_id)}))


def config_for(port: int, token: str = TOKEN) -> Config:
    return Config(
        dashboard_url=f"ws://127.0.0.1:{port}/ws",
        auth_token=token,
        retry_delay=0.05,
        ping_interval=1.0,
        ping_timeout=1.0,
    )


async def wait_for(cond: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        await asyncio.sleep(0.01)
    return cond()


async def produce_for(core: PublisherCore, seconds: float) -> None:
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        i += 1
        core.produce("market_data", {"symbol": "X", "price": 1.0, "bid": 0.9, "ask": 1.1})
        if i % 3 == 0:
            core.produce(
                "trade",
                {"trade_id": f"t{i}", "order_id": f"o{i}", "symbol": "X", "side": "buy", "quantity": 1.0, "price": 1.0},
            )
        core.commit()
        await asyncio.sleep(0.005)


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout=15))


def test_survives_killed_connection_with_every_seq_in_order():
    """Across an abrupt disconnect, every seq arrives, in order per connection; dups are resends."""

    async def scenario() -> None:
        backend = FakeBackend(kill_after=60)
        async with serve(backend.handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            core = PublisherCore("run-integ-0001", MemoryOutbox(), 10_000)
            pub = Publisher(config_for(port), core, Backoff(0.05, 10))
            task = asyncio.create_task(pub.run())
            await produce_for(core, 2.0)
            assert await wait_for(lambda: core.acked_seq == core.last_seq, 5.0)
            pub.stop()
            await asyncio.wait_for(task, 5)

        assert len(backend.connections) >= 2 and pub.reconnects >= 1
        seen_before: set[int] = set()
        for run_id, arrivals in backend.connections:
            assert run_id == "run-integ-0001"
            assert arrivals == sorted(arrivals) and len(set(arrivals)) == len(arrivals)
            # a seq seen on an earlier connection may come again only as a resend
            # that starts the connection (everything after acked_seq, in order)
            dups = [s for s in arrivals if s in seen_before]
            assert dups == arrivals[: len(dups)]
            seen_before.update(arrivals)
        assert seen_before == set(range(1, core.last_seq + 1))
        assert core.outbox_depth == 0 and core.queue_depth == 0

    run(scenario())


def test_wrong_token_is_retried_never_fatal():
    """Close 1008 is counted as an auth failure and retried with backoff."""

    async def scenario() -> None:
        backend = FakeBackend()
        async with serve(backend.handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            core = PublisherCore("run-auth-0001", MemoryOutbox(), 100)
            pub = Publisher(config_for(port, token="wrong"), core, Backoff(0.01, 100))
            task = asyncio.create_task(pub.run())
            assert await wait_for(lambda: pub.auth_failures >= 3, 5.0)
            assert not task.done() and not pub.connected
            pub.stop()
            await asyncio.wait_for(task, 5)
        assert "1008" in (pub.last_error or "")
        assert all(h["auth"] == "wrong" for h in backend.hellos)

    run(scenario())


def test_error_frames_counted_connection_stays():
    """A backend error frame is counted and logged; the stream continues."""

    async def scenario() -> None:
        backend = FakeBackend()

        async def reject_first(ws: ServerConnection, env: dict[str, Any]) -> None:
            if env["seq"] == 1:
                await ws.send(json.dumps({"type": "error", "code": "schema_violation", "seq": 1, "detail": "test"}))

        backend.on_frame = reject_first
        async with serve(backend.handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            core = PublisherCore("run-err-00001", MemoryOutbox(), 100)
            pub = Publisher(config_for(port), core, Backoff(0.05, 10))
            task = asyncio.create_task(pub.run())
            await produce_for(core, 0.3)
            assert await wait_for(lambda: core.acked_seq == core.last_seq, 5.0)
            pub.stop()
            await asyncio.wait_for(task, 5)
        assert pub.errors_received == {"schema_violation": 1}
        assert pub.connections == 1

    run(scenario())


def test_old_run_delivered_first_with_its_own_hello():
    """Unacked criticals of an earlier run_id are sent under that run_id, then the new run."""

    async def scenario() -> None:
        backend = FakeBackend()
        outbox = MemoryOutbox()
        old = PublisherCore("run-old-00001", outbox, 10)
        for i in range(5):
            old.produce("alert", {"level": "info", "message": f"m{i}"})
        backend.received["run-old-00001"] = {1, 2}  # the backend already has 1..2
        async with serve(backend.handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            core = PublisherCore("run-new-00002", outbox, 10)
            core.produce("heartbeat", {"uptime_s": 0})
            pub = Publisher(config_for(port), core, Backoff(0.05, 10))
            task = asyncio.create_task(pub.run())
            assert await wait_for(lambda: core.acked_seq == 1, 5.0)
            pub.stop()
            await asyncio.wait_for(task, 5)
        assert [h["run_id"] for h in backend.hellos] == ["run-old-00001", "run-new-00002"]
        assert backend.connections[0] == ("run-old-00001", [3, 4, 5])
        assert outbox.depth("run-old-00001") == 0 and pub.old_runs_delivered == 1

    run(scenario())


def test_nothing_listening_keeps_retrying_and_buffering():
    """With no backend, production continues, messages buffer, attempts go on."""

    async def scenario() -> None:
        core = PublisherCore("run-down-0001", MemoryOutbox(), 50)
        pub = Publisher(config_for(1), core, Backoff(0.01, 100))
        task = asyncio.create_task(pub.run())
        await produce_for(core, 0.3)
        assert pub.connect_failures >= 2 and not pub.connected
        assert core.queue_depth == 50 and core.outbox_depth > 0
        pub.stop()
        await asyncio.wait_for(task, 5)

    run(scenario())


def test_link_state_goes_connecting_reconnecting_open_circuit_and_connected():
    """``/stats`` names the link's state and when it entered it: connecting before any
    handshake, reconnecting while it backs off, open_circuit on the long wait after
    MAX_RETRIES failures in a row, connected once a backend answers."""

    async def scenario() -> None:
        core = PublisherCore("run-link-0001", MemoryOutbox(), 50)
        pub = Publisher(config_for(1), core, Backoff(0.01, 3, long_wait=0.2))
        assert pub.stats()["link"]["state"] == "connecting"
        seen: set[str] = set()
        task = asyncio.create_task(pub.run())
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and "open_circuit" not in seen:
            seen.add(pub.stats()["link"]["state"])
            await asyncio.sleep(0.002)
        link = pub.stats()["link"]
        assert {"reconnecting", "open_circuit"} <= seen, seen
        assert link["since"] <= time.time() and link["backoff_s"] is not None
        pub.stop()
        await asyncio.wait_for(task, 5)

        backend = FakeBackend()
        async with serve(backend.handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            live = Publisher(config_for(port), PublisherCore("run-link-0002", MemoryOutbox(), 50))
            task = asyncio.create_task(live.run())
            assert await wait_for(lambda: live.stats()["link"]["state"] == "connected", 5)
            live.stop()
            await asyncio.wait_for(task, 5)

    run(scenario())
