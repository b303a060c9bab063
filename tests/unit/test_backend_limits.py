"""The backend's hostile-input limits: token bucket, origin policy, connection cap,
handshake timeout, client rate, invalid UTF-8 (real server on 127.0.0.1 port 0)."""

from __future__ import annotations

import asyncio
import json

import pytest
from dashboard_backend.limits import TokenBucket
from test_backend_server import RUN, closed_code, envelope, http_get, publisher, recv_json, running, wait_ack
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

# --- token bucket (pure) -------------------------------------------------------------


def test_bucket_allows_a_burst_then_refuses_until_refilled():
    """``allow`` takes ``burst`` tokens at once, then refuses until time refills one."""
    b = TokenBucket(rate=10, burst=3, now=0.0)
    assert [b.allow(0.0) for _ in range(4)] == [True, True, True, False]
    assert b.allow(0.05) is False
    assert b.allow(0.1) is True


def test_bucket_reserve_returns_the_wait_and_goes_into_debt():
    """``reserve`` always takes a token; past the burst it says how long to wait."""
    b = TokenBucket(rate=100, burst=2, now=0.0)
    assert b.reserve(0.0) == 0.0
    assert b.reserve(0.0) == 0.0
    assert b.reserve(0.0) == pytest.approx(0.01)
    assert b.reserve(0.0) == pytest.approx(0.02)
    assert b.reserve(1.0) == 0.0  # refilled (capped at the burst)


def test_bucket_rate_zero_is_unlimited():
    """A rate of 0 never refuses and never waits."""
    b = TokenBucket(rate=0, burst=1, now=0.0)
    assert all(b.allow(0.0) for _ in range(1000))
    assert b.reserve(0.0) == 0.0


# --- the server ------------------------------------------------------------------------


def _counters(body: dict) -> dict:
    return body["counters"]


def test_origin_allow_list_on_both_endpoints_and_missing_origin_policy(tmp_path):
    """A foreign Origin gets 403 on /ws and /ws/stream; no Origin passes unless required."""

    async def go() -> None:
        async with running(tmp_path, allowed_origins=("http://ok.example",)) as backend:
            base = f"ws://127.0.0.1:{backend.port}"
            for path in ("/ws", "/ws/stream"):
                with pytest.raises(InvalidStatus, match="403"):
                    await connect(base + path, origin="http://evil.example")
            async with connect(base + "/ws/stream") as ws:  # no Origin: a non-browser client
                await ws.send(json.dumps({"type": "subscribe"}))
                assert (await recv_json(ws))["type"] == "snapshot"
            _, body = await http_get(backend, "/api/websocket/status")
            assert _counters(body)["origin_rejected"] == 2
        async with running(tmp_path, allowed_origins=("http://ok.example",), allow_missing_origin=False) as backend:
            with pytest.raises(InvalidStatus, match="403"):
                await connect(f"ws://127.0.0.1:{backend.port}/ws/stream")

    asyncio.run(asyncio.wait_for(go(), 20))


def test_connection_limit_refuses_with_503_and_frees_on_close(tmp_path):
    """At ``max_connections`` open WebSockets the next handshake gets 503 and is counted."""

    async def go() -> None:
        async with running(tmp_path, max_connections=3) as backend:
            stream = f"ws://127.0.0.1:{backend.port}/ws/stream"
            open_ = [await connect(stream) for _ in range(3)]
            with pytest.raises(InvalidStatus, match="503"):
                await connect(stream)
            status, _ = await http_get(backend, "/health")
            assert status == 200  # plain HTTP is not counted against the limit
            await open_[0].close()
            for _ in range(50):
                try:
                    extra = await connect(stream)
                    break
                except InvalidStatus:
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError("a freed slot was never reused")
            _, body = await http_get(backend, "/api/websocket/status")
            assert _counters(body)["connections_refused"] >= 1
            for ws in [*open_[1:], extra]:
                await ws.close()

    asyncio.run(asyncio.wait_for(go(), 20))


def test_handshake_timeout_drops_a_silent_tcp_client_and_a_publisher_without_hello(tmp_path):
    """TCP open with no upgrade, and an upgrade with no hello, are both dropped and counted."""

    async def go() -> None:
        async with running(tmp_path, handshake_timeout=0.3) as backend:
            reader, writer = await asyncio.open_connection("127.0.0.1", backend.port)
            assert await asyncio.wait_for(reader.read(), 5) == b""  # the server closed it
            writer.close()
            ws = await connect(f"ws://127.0.0.1:{backend.port}/ws")
            assert await closed_code(ws) == 1008
            _, body = await http_get(backend, "/api/websocket/status")
            assert _counters(body)["handshake_timeouts"] == 2

    asyncio.run(asyncio.wait_for(go(), 20))


def test_client_over_its_rate_is_closed_1008_and_ignored_frames_are_counted(tmp_path):
    """A /ws/stream client flooding frames is closed with 1008; frames after subscribe are counted."""

    async def go() -> None:
        async with running(tmp_path, client_max_msgs_per_s=1, client_msg_burst=5) as backend:
            stream = f"ws://127.0.0.1:{backend.port}/ws/stream"
            async with connect(stream) as ws:
                await ws.send(json.dumps({"type": "subscribe", "snapshot": False}))
                for _ in range(3):
                    await ws.send("ignored")
            flood = await connect(stream)
            await flood.send(json.dumps({"type": "subscribe", "snapshot": False}))
            with pytest.raises(ConnectionClosed):
                for _ in range(200):
                    await flood.send("x")
                    await asyncio.sleep(0)
                await flood.recv()
            assert flood.close_code == 1008
            _, body = await http_get(backend, "/api/websocket/status")
            c = _counters(body)
            assert c["rate_limit_closes"] == 1
            assert c["client_frames_ignored"] >= 3 + 5

    asyncio.run(asyncio.wait_for(go(), 20))


def test_publisher_over_its_rate_is_throttled_not_dropped(tmp_path):
    """Past its burst a publisher is slowed down (counted); every frame is still handled."""

    async def go() -> None:
        async with running(tmp_path, publisher_max_msgs_per_s=200, publisher_msg_burst=10) as backend:
            pub, _ = await publisher(backend)
            for _ in range(40):
                await pub.send("not json")
            codes = [(await recv_json(pub))["code"] for _ in range(40)]
            assert codes == ["invalid_json"] * 40
            _, body = await http_get(backend, "/api/websocket/status")
            c = _counters(body)
            assert c["publisher_throttled"] >= 1
            assert c["rejected_by_code"]["invalid_json"] == 40
            await pub.close()

    asyncio.run(asyncio.wait_for(go(), 20))


def test_invalid_utf8_text_frame_closes_1007_binary_gets_an_error(tmp_path):
    """Non-UTF-8 in a text frame breaks RFC 6455 (close 1007, counted); in a binary frame it is invalid_json."""

    async def go() -> None:
        async with running(tmp_path) as backend:
            pub, _ = await publisher(backend)
            await pub.send(b"\xff\xfe{}", text=False)
            assert (await recv_json(pub))["code"] == "invalid_json"
            await pub.send(b"\xff\xfe{}", text=True)
            assert await closed_code(pub) == 1007
            for _ in range(50):
                _, body = await http_get(backend, "/api/websocket/status")
                if _counters(body)["invalid_utf8_closes"] == 1:
                    break
                await asyncio.sleep(0.05)
            assert _counters(body)["invalid_utf8_closes"] == 1

    asyncio.run(asyncio.wait_for(go(), 20))


def test_ts_ns_beyond_sqlite_integer_range_does_not_poison_the_group_commit(tmp_path):
    """A valid critical envelope with ts_ns >= 2**63 is stored as sent and later ones still commit.

    Found while building the fuzz: one such row used to fail every later commit (acks stalled).
    """

    async def go() -> None:
        async with running(tmp_path) as backend:
            pub, _ = await publisher(backend)
            env = json.loads(envelope(1))
            env.update(type="alert", ts_ns=2**70, data={"level": "info", "message": "far future"})
            await pub.send(json.dumps(env))
            await pub.send(envelope(2))
            await wait_ack(pub, 2)
            _, body = await http_get(backend, "/api/events?run_id=" + RUN)
            assert [e["seq"] for e in body["events"]] == [1, 2]
            assert body["events"][0]["ts_ns"] == 2**70
            assert _counters(await _status(backend))["commit_errors"] == 0
            await pub.close()

    asyncio.run(asyncio.wait_for(go(), 20))


async def _status(backend) -> dict:
    _, body = await http_get(backend, "/api/websocket/status")
    return body


def test_frames_of_a_client_that_closed_at_once_are_all_counted(tmp_path):
    """Bad subscribe + more frames + immediate close: bad_subscribe +1 and every later frame counted."""

    async def go() -> None:
        async with running(tmp_path) as backend:
            stream = f"ws://127.0.0.1:{backend.port}/ws/stream"
            for first in ("[]", json.dumps({"type": "subscribe", "snapshot": False})):
                async with connect(stream) as ws:
                    await ws.send(first)
                    for i in range(8):
                        await ws.send(f"x{i}")
            for _ in range(50):
                c = _counters(await _status(backend))
                if c["client_frames_ignored"] == 16:
                    break
                await asyncio.sleep(0.05)
            assert (c["client_frames_ignored"], c["bad_subscribe"]) == (16, 1)

    asyncio.run(asyncio.wait_for(go(), 20))
