"""Integration tests: the real backend on 127.0.0.1 port 0 with a temporary data dir."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import socket
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import uvloop
from dashboard_backend.config import Config
from dashboard_backend.server import Backend
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from wscontract import validate_control, validate_envelope

RUN = "run-1111-2222-3333"
TOKEN = "test-token"
TIMEOUT = 5.0

DATA: dict[str, dict[str, Any]] = {
    "market_data": {"symbol": "BTC", "price": 100.5, "bid": 100.0, "ask": 101.0, "volume": 3},
    "signal": {"symbol": "ETH", "action": "buy", "strength": 0.7},
    "order": {"order_id": "o1", "symbol": "BTC", "side": "buy", "quantity": 1, "status": "new"},
    "trade": {
        "trade_id": "t1",
        "order_id": "o1",
        "symbol": "BTC",
        "side": "buy",
        "quantity": 1,
        "price": 100.5,
    },
    "position": {"symbol": "BTC", "quantity": 1, "avg_price": 100.5},
    "portfolio": {"cash": 900, "equity": 1000, "realized_pnl": 0, "unrealized_pnl": 0},
    "alert": {"level": "info", "message": "hello"},
    "heartbeat": {"uptime_s": 1.5},
    "bot_status": {"state": "trading", "connected": True},
}
CYCLE = list(DATA)


def envelope(seq: int, run_id: str = RUN) -> str:
    msg_type = CYCLE[seq % len(CYCLE)]
    data = dict(DATA[msg_type])
    if msg_type == "trade":
        data["trade_id"] = f"t{seq}"
    env = {
        "v": 1,
        "type": msg_type,
        "source": "ai-trading-bot",
        "run_id": run_id,
        "seq": seq,
        "ts_ns": 1_700_000_000_000_000_000 + seq,
        "data": data,
    }
    validate_envelope(env)
    return json.dumps(env)


def hello(run_id: str = RUN, token: str = TOKEN) -> str:
    return json.dumps({"type": "hello", "v": 1, "source": "ai-trading-bot", "run_id": run_id, "auth": token})


@asynccontextmanager
async def running(tmp_path: Any, **overrides: Any) -> AsyncIterator[Backend]:
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "auth_token": TOKEN,
        "data_dir": str(tmp_path),
        "max_frame_bytes": 64 * 1024,
        "ping_interval": 1.0,
        "ping_timeout": 2.0,
    }
    settings.update(overrides)
    backend = Backend(Config(**settings))
    await backend.start()
    try:
        yield backend
    finally:
        await backend.stop()


async def http_get(backend: Backend, path: str) -> tuple[int, Any]:
    url = f"http://127.0.0.1:{backend.port}{path}"

    def fetch() -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT) as resp:
                body = resp.read()
                status = resp.status
                ctype = resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as err:
            body, status, ctype = err.read(), err.code, err.headers.get("Content-Type", "")
        return status, json.loads(body) if ctype.startswith("application/json") else body

    return await asyncio.to_thread(fetch)


async def recv_json(ws: ClientConnection) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))


async def wait_ack(ws: ClientConnection, seq: int) -> list[dict[str, Any]]:
    """Read frames until an ack for ``seq``; return the non-ack frames seen."""
    others = []
    while True:
        frame = await recv_json(ws)
        if frame["type"] == "ack":
            validate_control(frame)
            if frame["seq"] >= seq:
                assert frame["seq"] == seq
                return others
        else:
            others.append(frame)


async def publisher(backend: Backend, run_id: str = RUN) -> tuple[ClientConnection, int]:
    ws = await connect(f"ws://127.0.0.1:{backend.port}/ws")
    await ws.send(hello(run_id))
    welcome = await recv_json(ws)
    validate_control(welcome)
    assert welcome["type"] == "welcome" and welcome["run_id"] == run_id
    return ws, welcome["acked_seq"]


async def closed_code(ws: ClientConnection) -> int | None:
    with pytest.raises(ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    return ws.close_code


@pytest.fixture(autouse=True, params=["asyncio", "uvloop"])
def event_loop_kind(request: pytest.FixtureRequest) -> Any:
    """Every test here runs on asyncio's own loop and on uvloop (the backend's default)."""
    if request.param == "asyncio":
        yield request.param
        return
    previous = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    try:
        yield request.param
    finally:
        asyncio.set_event_loop_policy(previous)


# --- the end-to-end story -----------------------------------------------------------


def test_publish_ack_fanout_errors_and_restart(tmp_path):
    """200 envelopes are acked, fanned out in order, stored, and survive a restart."""

    async def go() -> None:
        sent = [envelope(seq) for seq in range(1, 201)]
        trades = [s for s in sent if json.loads(s)["type"] == "trade"]
        async with running(tmp_path) as backend:
            sub = await connect(f"ws://127.0.0.1:{backend.port}/ws/stream")
            await sub.send(json.dumps({"type": "subscribe"}))
            snapshot = await recv_json(sub)
            validate_control(snapshot)
            assert snapshot["type"] == "snapshot" and snapshot["runs"] == {}

            pub, acked = await publisher(backend)
            assert acked == 0
            for text in sent:
                await pub.send(text)
            assert await wait_ack(pub, 200) == []
            with sqlite3.connect(tmp_path / "dashboard.db") as db:  # an ack means on disk
                stored = db.execute("SELECT acked_seq FROM runs WHERE run_id = ?", (RUN,))
                assert stored.fetchone()[0] >= 200

            got = [await asyncio.wait_for(sub.recv(), TIMEOUT) for _ in range(200)]
            assert got == sent  # unchanged text, in order, no duplicates

            await pub.send("{not json")
            err = await recv_json(pub)
            validate_control(err)
            assert err["code"] == "invalid_json"
            bad = json.loads(envelope(201))
            del bad["ts_ns"]
            await pub.send(json.dumps(bad))
            err = await recv_json(pub)
            assert err["code"] == "schema_violation" and err["seq"] == 201
            await pub.send(sent[0])  # a duplicate: silently ignored
            await pub.send(envelope(202))
            await wait_ack(pub, 202)  # the rejected 201 counts as accounted
            assert json.loads(await asyncio.wait_for(sub.recv(), TIMEOUT))["seq"] == 202

            status, body = await http_get(backend, "/api/websocket/status")
            assert status == 200
            c = body["counters"]
            assert body["publisher_count"] == 1 and body["client_count"] == 1
            assert c["received"] == 202 and c["duplicates"] == 1 and c["broadcast"] == 201
            assert c["rejected_by_code"] == {"invalid_json": 1, "schema_violation": 1}
            assert body["runs"][RUN]["acked_seq"] == 202
            await pub.close()
            await sub.close()

        async with running(tmp_path) as backend:
            pub, acked = await publisher(backend)
            assert acked == 202
            await pub.close()
            status, body = await http_get(backend, f"/api/trades?run_id={RUN}")
            assert status == 200 and body["count"] == len(trades)
            assert [json.dumps(t) for t in body["trades"]] == trades
            status, state = await http_get(backend, "/api/state")
            assert state["positions"]["BTC"]["avg_price"] == 100.5
            assert state["recent_trades"][-1] == json.loads(trades[-1])

    asyncio.run(asyncio.wait_for(go(), 12))


# --- bad input ----------------------------------------------------------------------


def test_wrong_token_oversize_and_bad_hello(tmp_path):
    """Wrong token -> 1008, oversize frame -> 1009, non-hello first frame -> error + 1008."""

    async def go() -> None:
        async with running(tmp_path) as backend:
            url = f"ws://127.0.0.1:{backend.port}/ws"
            async with connect(url) as ws:
                await ws.send(hello(token="wrong"))
                assert await closed_code(ws) == 1008

            pub, _ = await publisher(backend)
            await pub.send("x" * (64 * 1024 + 1))
            assert await closed_code(pub) == 1009

            async with connect(url) as ws:
                await ws.send(envelope(1))
                assert (await recv_json(ws))["code"] == "expected_hello"
                assert await closed_code(ws) == 1008

            _, body = await http_get(backend, "/api/websocket/status")
            assert body["counters"]["auth_failures"] == 1
            for _ in range(50):  # the handler's bookkeeping runs after the close
                _, body = await http_get(backend, "/api/websocket/status")
                if body["counters"]["oversize_closes"] == 1:
                    break
                await asyncio.sleep(0.01)
            assert body["counters"]["oversize_closes"] == 1

    asyncio.run(asyncio.wait_for(go(), 10))


def test_takeover_and_run_mismatch(tmp_path):
    """A second hello for a run replaces the first connection; a foreign run_id is refused."""

    async def go() -> None:
        async with running(tmp_path) as backend:
            old, _ = await publisher(backend)
            new, _ = await publisher(backend)
            assert await closed_code(old) == 4000
            await new.send(envelope(1, run_id="another-run-id"))
            err = await recv_json(new)
            assert err["code"] == "run_mismatch"
            await new.send(envelope(1))
            await wait_ack(new, 1)
            await new.close()

    asyncio.run(asyncio.wait_for(go(), 10))


# --- clients ------------------------------------------------------------------------


def test_subscriber_filter_resume_and_bad_subscribe(tmp_path):
    """Filters apply, resume replays the missed seqs, a bad subscribe keeps the default."""

    async def go() -> None:
        async with running(tmp_path) as backend:
            pub, _ = await publisher(backend)
            for seq in range(1, 31):
                await pub.send(envelope(seq))
            await wait_ack(pub, 30)
            stream = f"ws://127.0.0.1:{backend.port}/ws/stream"

            async with connect(stream) as ws:
                sub = {"type": "subscribe", "types": ["trade", "heartbeat"], "symbols": ["ETH"]}
                sub["resume"] = {"run_id": RUN, "after_seq": 20}
                await ws.send(json.dumps(sub))
                snap = await recv_json(ws)
                assert snap["resumed"] is True and snap["runs"] == {RUN: 30}
                # heartbeat has no symbol (passes); trades are BTC (filtered out)
                want = [s for s in range(21, 31) if CYCLE[s % len(CYCLE)] == "heartbeat"]
                got = [(await recv_json(ws))["seq"] for _ in want]
                assert got == want

            async with connect(stream) as ws:
                await ws.send("[1, 2]")
                err = await recv_json(ws)
                assert err["type"] == "error" and err["code"] == "bad_subscribe"
                assert (await recv_json(ws))["type"] == "snapshot"
                await pub.send(envelope(31))
                assert (await recv_json(ws))["seq"] == 31
            await pub.close()

    asyncio.run(asyncio.wait_for(go(), 10))


def test_http_endpoints_and_origin(tmp_path):
    """Health, ready, metrics, 404 and the origin check on /ws/stream."""

    async def go() -> None:
        async with running(tmp_path, allowed_origins=("http://ok.example",)) as backend:
            assert await http_get(backend, "/health") == (200, {"status": "ok"})
            assert await http_get(backend, "/ready") == (200, {"ready": True})
            status, _ = await http_get(backend, "/nope")
            assert status == 404
            status, _ = await http_get(backend, "/api/trades?limit=abc")
            assert status == 400
            status, text = await http_get(backend, "/metrics")
            assert status == 200 and b"dashboard_clients 0" in text
            stream = f"ws://127.0.0.1:{backend.port}/ws/stream"
            with pytest.raises(Exception, match="403"):
                await connect(stream, origin="http://evil.example")
            async with connect(stream, origin="http://ok.example") as ws:
                await ws.send(json.dumps({"type": "subscribe", "snapshot": True}))
                assert (await recv_json(ws))["type"] == "snapshot"

    asyncio.run(asyncio.wait_for(go(), 10))


def test_slow_client_is_closed_with_1013_and_others_unaffected(tmp_path):
    """A client that stops reading is closed with 1013; a reading client gets everything."""

    async def go() -> None:
        async with running(tmp_path, client_queue_size=30, max_frame_bytes=256 * 1024) as backend:
            stream = f"ws://127.0.0.1:{backend.port}/ws/stream"
            # A tiny receive buffer (no autotuning) so the kernel cannot absorb the stream.
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", backend.port))
            slow = await connect(stream, sock=sock, max_size=None, max_queue=1)
            fast = await connect(stream, max_size=None)
            for ws in (slow, fast):
                await ws.send(json.dumps({"type": "subscribe", "snapshot": False}))
            await asyncio.sleep(0.05)
            pub, _ = await publisher(backend)
            padding = secrets.token_urlsafe(75_000)  # incompressible: defeats deflate
            n = 150
            seen = []

            async def read_fast() -> None:
                while len(seen) < n:
                    seen.append(json.loads(await asyncio.wait_for(fast.recv(), TIMEOUT))["seq"])

            reader = asyncio.create_task(read_fast())
            for seq in range(1, n + 1):
                env = json.loads(envelope(seq))
                env["data"]["padding"] = padding
                await pub.send(json.dumps(env))
                await asyncio.sleep(0.002)  # a pace the reading client can follow
            await wait_ack(pub, n)
            await reader
            assert seen == list(range(1, n + 1))
            assert await closed_code(slow) == 1013
            _, body = await http_get(backend, "/api/websocket/status")
            assert body["counters"]["slow_client_disconnects"] == 1
            await pub.close()
            await fast.close()

    asyncio.run(asyncio.wait_for(go(), 12))


def test_bad_http_is_counted_not_logged_as_error(tmp_path, caplog):
    """POST and garbage requests are refused and counted without an ERROR log line."""

    async def go() -> None:
        async with running(tmp_path) as backend:
            for request in (b"POST /health HTTP/1.1\r\nHost: x\r\n\r\n", b"garbage\r\n\r\n"):
                reader, writer = await asyncio.open_connection("127.0.0.1", backend.port)
                writer.write(request)
                await writer.drain()
                await asyncio.wait_for(reader.read(), TIMEOUT)
                writer.close()
            # websockets counts (logs) a failed handshake once it sees the connection
            # lost, which may come after our next request is served (it does on uvloop).
            deadline = time.monotonic() + TIMEOUT
            while True:
                _, body = await http_get(backend, "/api/websocket/status")
                if body["counters"]["bad_requests"] >= 2 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.02)
            assert body["counters"]["bad_requests"] == 2

    with caplog.at_level(logging.INFO):
        asyncio.run(asyncio.wait_for(go(), 10))
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


# --- restart, resume and graceful stop ------------------------------------------------


def is_critical(seq: int) -> bool:
    return CYCLE[seq % len(CYCLE)] in {"order", "trade", "position", "portfolio", "alert", "gap"}


async def subscribe(backend: Backend, **frame: Any) -> tuple[ClientConnection, dict[str, Any]]:
    """A /ws/stream client with this subscribe frame, and its snapshot ({} without one)."""
    ws = await connect(f"ws://127.0.0.1:{backend.port}/ws/stream", max_size=None, close_timeout=0.5)
    await ws.send(json.dumps({"type": "subscribe", **frame}))
    if frame.get("snapshot") is False:
        return ws, {}
    snap = await recv_json(ws)
    validate_control(snap)
    assert snap["type"] == "snapshot"
    return ws, snap


def test_events_endpoint_returns_stored_critical_envelopes(tmp_path):
    """/api/events: every critical type, by seq, filtered by run, types and after_seq."""

    async def go() -> None:
        sent = {seq: envelope(seq) for seq in range(1, 31)}
        async with running(tmp_path) as backend:
            pub, _ = await publisher(backend)
            for text in sent.values():
                await pub.send(text)
            await wait_ack(pub, 30)
            critical = [s for s in sent if is_critical(s)]
            status, body = await http_get(backend, f"/api/events?run_id={RUN}")
            assert status == 200 and body["count"] == len(critical)
            assert [json.dumps(e) for e in body["events"]] == [sent[s] for s in critical]
            status, body = await http_get(backend, f"/api/events?run_id={RUN}&types=order,alert&after_seq=12&limit=3")
            want = [s for s in critical if s > 12 and CYCLE[s % len(CYCLE)] in ("order", "alert")][:3]
            assert status == 200 and [e["seq"] for e in body["events"]] == want and body["count"] == 3
            status, body = await http_get(backend, "/api/events?run_id=nope")
            assert (status, body) == (200, {"events": [], "count": 0})
            for bad in ("types=bogus", "after_seq=x", "limit=-1"):
                status, _ = await http_get(backend, f"/api/events?{bad}")
                assert status == 400, bad
            await pub.close()

    asyncio.run(asyncio.wait_for(go(), 10))


def test_receive_times_endpoint_gives_backend_receive_time_per_stored_seq(tmp_path):
    """/api/receive_times: [seq, recv_ns] of stored envelopes, stamped between send and ack."""

    async def go() -> None:
        async with running(tmp_path) as backend:
            pub, _ = await publisher(backend)
            before = time.time_ns()
            for seq in range(1, 21):
                await pub.send(envelope(seq))
            await wait_ack(pub, 20)
            after = time.time_ns()
            status, body = await http_get(backend, f"/api/receive_times?run_id={RUN}&after_seq=2")
            critical = [s for s in range(3, 21) if is_critical(s)]
            assert status == 200 and [row[0] for row in body["recv_ns"]] == critical
            assert all(before <= row[1] <= after for row in body["recv_ns"])
            for bad in ("", "run_id=x&after_seq=y", "run_id=x&limit=-1"):
                status, _ = await http_get(backend, f"/api/receive_times?{bad}")
                assert status == 400, bad
            await pub.close()

    asyncio.run(asyncio.wait_for(go(), 10))


def test_resume_after_graceful_restart_never_claims_a_hole(tmp_path):
    """After a restart, a resume either replays every missing seq or says resumed=false.

    The ring is refilled from the store, so the critical envelopes are replayed even
    when the ephemeral ones are gone (and then ``resumed`` is false).
    """

    async def go() -> None:
        n = 50
        async with running(tmp_path) as backend:
            lagging, _ = await subscribe(backend, snapshot=False)
            current, _ = await subscribe(backend, snapshot=False)
            await asyncio.sleep(0.05)
            pub, _ = await publisher(backend)
            for seq in range(1, n + 1):
                await pub.send(envelope(seq))
            await wait_ack(pub, n)
            seen = [(await recv_json(lagging))["seq"] for _ in range(20)]  # reads some only
            assert seen == list(range(1, 21))
            assert [(await recv_json(current))["seq"] for _ in range(n)] == list(range(1, n + 1))
            await pub.close()
        # The backend is stopped (gracefully) and started again on the same data dir.
        for ws in (lagging, current):
            await ws.close()

        async with running(tmp_path) as backend:
            ws, snap = await subscribe(backend, resume={"run_id": RUN, "after_seq": seen[-1]})
            caught_up, snap2 = await subscribe(backend, resume={"run_id": RUN, "after_seq": n})
            trades, snap3 = await subscribe(backend, types=["trade"], resume={"run_id": RUN, "after_seq": 0})
            assert snap2["resumed"] is True and snap["runs"] == {RUN: n}
            pub, acked = await publisher(backend)
            assert acked == n
            await pub.send(envelope(n + 1))
            await wait_ack(pub, n + 1)
            got = []
            while not got or got[-1] != n + 1:
                got.append((await recv_json(ws))["seq"])
            missing = list(range(seen[-1] + 1, n + 2))
            # Never resumed=true with a hole; the critical ones come back from the store.
            assert snap["resumed"] is False or got == missing
            assert got == [s for s in missing if is_critical(s) or s == n + 1]
            assert snap["resumed"] is False  # the ephemeral ones in between are gone
            assert (await recv_json(caught_up))["seq"] == n + 1
            trade_seqs = [s for s in range(1, n + 2) if CYCLE[s % len(CYCLE)] == "trade"]
            got = [(await recv_json(trades))["seq"] for _ in trade_seqs]
            assert got == trade_seqs and snap3["resumed"] is False
            for c in (ws, caught_up, trades, pub):
                await c.close()

    asyncio.run(asyncio.wait_for(go(), 15))


def test_graceful_stop_flushes_what_clients_were_due(tmp_path):
    """A client with frames still queued at stop gets them all before the 1001 close."""

    async def go() -> None:
        n = 150
        backend = Backend(
            Config(
                host="127.0.0.1",
                port=0,
                auth_token=TOKEN,
                data_dir=str(tmp_path),
                max_frame_bytes=256 * 1024,
                ping_interval=1.0,
                ping_timeout=2.0,
            )
        )
        await backend.start()
        stopping = None
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", backend.port))
            sub = await connect(f"ws://127.0.0.1:{backend.port}/ws/stream", sock=sock, max_size=None, max_queue=1)
            await sub.send(json.dumps({"type": "subscribe", "snapshot": False}))
            await asyncio.sleep(0.05)
            pub, _ = await publisher(backend)
            padding = secrets.token_urlsafe(75_000)
            for seq in range(1, n + 1):
                env = json.loads(envelope(seq))
                env["data"]["padding"] = padding
                await pub.send(json.dumps(env))
            await wait_ack(pub, n)
            _, body = await http_get(backend, "/api/websocket/status")
            assert body["clients"][0]["queue_depth"] > 0  # the stop has something to flush
            stopping = asyncio.create_task(backend.stop())
            seen = []
            with pytest.raises(ConnectionClosed):
                while True:
                    seen.append(json.loads(await asyncio.wait_for(sub.recv(), TIMEOUT))["seq"])
            assert seen == list(range(1, n + 1))
            assert sub.close_code == 1001
            await stopping
        finally:
            if stopping is None:
                await backend.stop()

        async with running(tmp_path) as backend:  # and the client resumes without a hole
            ws, snap = await subscribe(backend, resume={"run_id": RUN, "after_seq": n})
            assert snap["resumed"] is True
            await ws.close()

    asyncio.run(asyncio.wait_for(go(), 15))


def test_the_loop_is_the_one_asked_for(event_loop_kind):
    """The fixture really switches loops (uvloop's loop is a C class of its own)."""

    async def kind() -> str:
        return "uvloop" if isinstance(asyncio.get_running_loop(), uvloop.Loop) else "asyncio"

    assert asyncio.run(kind()) == event_loop_kind


@pytest.mark.parametrize("flush_ms", [0.0, 5.0])
def test_live_fanout_with_lanes_joining_mid_stream_and_paced_flushes(tmp_path, flush_ms):
    """Clients that join while frames flow (snapshot, resume, filters) each get every frame
    of theirs exactly once and in order, whether flushes go every turn or paced."""

    async def go() -> None:
        async with running(tmp_path, client_flush_ms=flush_ms, client_flush_burst=2) as backend:
            pub, _ = await publisher(backend)
            early, _ = await subscribe(backend)
            filtered, _ = await subscribe(backend, types=["market_data", "trade"])  # attached once the snapshot is in
            total, seen = 300, {"early": [], "filtered": [], "late": [], "resumed": []}
            clients: dict[str, ClientConnection] = {"early": early, "filtered": filtered}

            async def read(name: str, ws: ClientConnection, want: int) -> None:
                while len(seen[name]) < want:
                    seen[name].append(json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["seq"])

            for seq in range(1, total + 1):
                await pub.send(envelope(seq))
                if seq == 100:
                    clients["late"], _ = await subscribe(backend, snapshot=False)
                if seq == 150:
                    clients["resumed"], snap = await subscribe(backend, resume={"run_id": RUN, "after_seq": 120})
                    assert snap["resumed"] is True
                if seq % 20 == 0:
                    await asyncio.sleep(0.003)
            await wait_ack(pub, total)
            kinds = {"market_data", "trade"}
            want = {
                "early": list(range(1, total + 1)),
                "filtered": [s for s in range(1, total + 1) if CYCLE[s % len(CYCLE)] in kinds],
                "resumed": list(range(121, total + 1)),
            }
            await asyncio.gather(*(read(n, clients[n], len(w)) for n, w in want.items()))
            for name, expected in want.items():
                assert seen[name] == expected, name
            # The late one joined somewhere after seq 100 was sent: from there on, every seq.
            await read("late", clients["late"], 1)
            first = seen["late"][0]
            await read("late", clients["late"], total - first + 1)
            assert seen["late"] == list(range(first, total + 1))
            _, body = await http_get(backend, "/api/websocket/status")
            assert body["counters"]["broadcast"] == sum(len(v) for v in seen.values())
            assert all(c["queue_depth"] == 0 for c in body["clients"])
            # Every client ended up served from its group's lane (the path under test).
            assert sum(len(g.lane) for g in backend.hub.groups.values()) == len(clients)
            for ws in (pub, *clients.values()):
                await ws.close()

    asyncio.run(asyncio.wait_for(go(), 15))


def test_every_rejected_publisher_frame_is_dead_lettered(tmp_path):
    """Invalid JSON, a schema violation, a run mismatch, a wrong token and an oversize frame:
    each is kept with its code, run, seq and (truncated) bytes, counted in the status API and
    readable over HTTP; the wrong token is masked; valid frames leave no letter."""

    async def go() -> None:
        async with running(tmp_path, dead_letter_capacity=5) as backend:
            pub, _ = await publisher(backend)
            bad = json.loads(envelope(2))
            del bad["ts_ns"]
            frames = ["{not json", json.dumps(bad), envelope(3, run_id="another-run-0000"), "x" * 2000]
            for text in frames:
                await pub.send(text)
                await recv_json(pub)
            await pub.send(envelope(1))
            await wait_ack(pub, 2)  # the rejected seq 2 counts as accounted
            intruder = await connect(f"ws://127.0.0.1:{backend.port}/ws")
            await intruder.send(hello(token="wrong-token-xyz"))
            assert await closed_code(intruder) == 1008
            big = await connect(f"ws://127.0.0.1:{backend.port}/ws")
            await big.send(hello("run-big-0000"))
            await recv_json(big)
            await big.send("y" * (70 * 1024))
            assert await closed_code(big) == 1009
            await asyncio.sleep(0.1)

            status, body = await http_get(backend, "/api/dead_letters")
            assert status == 200
            codes = [d["code"] for d in body["letters"]]
            assert body["total"] == 6 and body["kept"] == 5 and body["evicted"] == 1
            assert codes == ["schema_violation", "run_mismatch", "invalid_json", "auth_failed", "too_big"]
            schema, mismatch, junk, auth, too_big = body["letters"]
            assert (schema["run_id"], schema["seq"]) == (RUN, 2) and json.loads(schema["raw"]) == bad
            assert (mismatch["run_id"], mismatch["seq"]) == ("another-run-0000", 3)
            assert junk["size"] == 2000 and len(junk["raw"]) == 512
            assert auth["source"] == "hello" and "wrong-token" not in auth["raw"] and '"***"' in auth["raw"]
            assert too_big["raw"] == "" and "1009" in too_big["detail"]
            _, only = await http_get(backend, f"/api/dead_letters?run_id={RUN}&code=schema_violation")
            assert [d["seq"] for d in only["letters"]] == [2]
            _, after = await http_get(backend, f"/api/dead_letters?after_id={too_big['id'] - 1}")
            assert [d["code"] for d in after["letters"]] == ["too_big"]
            assert (await http_get(backend, "/api/dead_letters?limit=x"))[0] == 400
            _, st = await http_get(backend, "/api/websocket/status")
            assert st["dead_letters"]["by_code"] == {
                "auth_failed": 1, "invalid_json": 2, "run_mismatch": 1, "schema_violation": 1, "too_big": 1,
            }  # fmt: skip

    asyncio.run(go())
