"""Connectivity stage: handshakes, live exchange, ping RTT, many clients, frame limits, status API."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import pytest
from websockets.asyncio.client import connect

from wsrig import messages
from wsrig.clients import Publisher, Subscriber
from wsrig.probe import backend_status, progress, run
from wsrig.stats import LatencySummary

pytestmark = pytest.mark.connectivity


def _live_envelopes(sub: Subscriber, run_id: str) -> int:
    return sum(1 for _, f in sub.frames if f.get("run_id") == run_id)


def test_handshake_time(cfg, record, limits):
    """N clients complete the WebSocket handshake to /ws/stream within the P99 threshold."""
    n = int(limits["handshake_clients"])

    async def body() -> list[float]:
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            async with connect(cfg.stream_url, open_timeout=10):
                times.append((time.perf_counter() - t0) * 1000)
        return times

    summary = LatencySummary.from_ms(run(body()))
    record.metrics["handshake_ms"] = summary.serialize()
    check = record.measure("handshake_p99_ms", summary.p99, limits["handshake_p99_ms"], unit=" ms")
    progress(f"handshake p50 {summary.p50} ms, p99 {summary.p99} ms over {n} clients")
    assert check.passed, f"handshake P99 {summary.p99} ms > {limits['handshake_p99_ms']} ms"


def test_subscriber_receives_live_bot_traffic(cfg, record, limits, bot_run_id):
    """A new subscriber gets a snapshot, then live envelopes of the bot's run within the deadline."""
    deadline = float(limits["first_message_within_s"])

    async def body() -> float:
        async with Subscriber(cfg.stream_url) as sub:
            t0 = time.monotonic()
            await sub.wait_for(lambda s: _live_envelopes(s, bot_run_id) > 0, deadline, "a live bot envelope")
            assert sub.snapshot is not None, "no snapshot frame before the live stream"
            return time.monotonic() - t0

    elapsed = run(body())
    check = record.measure("first_live_message_s", round(elapsed, 3), deadline, unit=" s")
    assert check.passed


def test_ping_pong_rtt(cfg, record, limits):
    """WebSocket ping/pong round trips stay under the P99 threshold."""

    async def body() -> list[float]:
        rtts = []
        async with connect(cfg.stream_url, open_timeout=10) as ws:
            for _ in range(50):
                t0 = time.perf_counter()
                pong = await ws.ping()
                await asyncio.wait_for(pong, timeout=5)
                rtts.append((time.perf_counter() - t0) * 1000)
        return rtts

    summary = LatencySummary.from_ms(run(body()))
    record.metrics["ping_rtt_ms"] = summary.serialize()
    assert record.measure("ping_rtt_p99_ms", summary.p99, limits["ping_rtt_p99_ms"], unit=" ms").passed


def test_concurrent_clients_all_receive(cfg, record, limits, bot_run_id):
    """N concurrent subscribers all receive live bot traffic, and the status API counts them."""
    n = int(limits["concurrent_clients"])

    async def body() -> tuple[int, int, list[float]]:
        subs = [Subscriber(cfg.stream_url, messages.subscribe(snapshot=False)) for _ in range(n)]
        await asyncio.gather(*(s.connect() for s in subs))
        try:
            progress(f"{n} subscribers connected; waiting for live traffic on each")
            await asyncio.gather(
                *(s.wait_for(lambda x: _live_envelopes(x, bot_run_id) > 0, 15, "live traffic") for s in subs)
            )
            status = await asyncio.to_thread(backend_status, cfg)
            return (
                sum(1 for s in subs if _live_envelopes(s, bot_run_id) > 0),
                int(status["client_count"]),
                [s.handshake_ms for s in subs],
            )
        finally:
            await asyncio.gather(*(s.close() for s in subs))

    receiving, counted, handshakes = run(body())
    record.metrics["concurrent_handshake_ms"] = LatencySummary.from_ms(handshakes).serialize()
    record.measure("concurrent_clients_receiving", receiving, n, op=">=")
    record.measure("status_api_client_count", counted, n, op=">=")
    assert receiving == n, f"only {receiving} of {n} concurrent clients received live traffic"
    assert counted >= n, f"/api/websocket/status reports {counted} clients while {n} are connected"


def test_large_message_accepted(cfg, record, limits):
    """A frame just under the size limit is accepted and acknowledged."""
    size = int(limits["large_message_bytes"])

    async def body() -> dict:
        async with Publisher(cfg.ingest_url, cfg.auth_token) as pub:
            data = dict(messages.SAMPLE_DATA["market_data"], padding="x" * size)
            env = await pub.publish("market_data", data)
            return await pub.wait_ack(env["seq"], timeout=10)

    ack = run(body())
    record.measure("large_frame_bytes_accepted", size, int(cfg.setting("SYSTEM__MAX_FRAME_BYTES", "1048576")), op="<")
    assert ack["type"] == "ack"


def test_oversize_message_closed_1009(cfg, record, limits):
    """A frame over the limit closes the connection with 1009 (message too big)."""
    size = int(limits["oversize_message_bytes"])

    async def body() -> int | None:
        async with Publisher(cfg.ingest_url, cfg.auth_token) as pub:
            assert pub.ws is not None
            env = messages.envelope(
                pub.run_id, pub.seq + 1, "market_data", dict(messages.SAMPLE_DATA["market_data"], padding="x" * size)
            )
            with contextlib.suppress(Exception):  # the close may race the send
                await pub.ws.send(json.dumps(env))
                await asyncio.wait_for(pub.ws.wait_closed(), timeout=10)
            return pub.ws.close_code

    code = run(body())
    record.metrics["oversize_close_code"] = code
    assert code == 1009, f"oversize frame: expected close 1009, got {code}"


def test_status_api_reflects_connections(cfg, record, bot_run_id):
    """/api/websocket/status shows the bot as publisher and our extra clients as they come and go."""

    async def body() -> tuple[int, int, int]:
        before = (await asyncio.to_thread(backend_status, cfg))["client_count"]
        subs = [Subscriber(cfg.stream_url) for _ in range(5)]
        await asyncio.gather(*(s.connect() for s in subs))
        await asyncio.sleep(0.5)
        during = await asyncio.to_thread(backend_status, cfg)
        await asyncio.gather(*(s.close() for s in subs))
        await asyncio.sleep(0.5)
        after = (await asyncio.to_thread(backend_status, cfg))["client_count"]
        publishers = [p.get("run_id") for p in during.get("publishers", [])]
        assert bot_run_id in publishers, f"bot run {bot_run_id} not among publishers {publishers}"
        return before, during["client_count"], after

    before, during, after = run(body())
    record.metrics.update(status_clients_before=before, status_clients_during=during, status_clients_after=after)
    assert during >= before + 5, f"client_count {before} -> {during} with 5 more clients connected"
    assert after <= during - 5, f"client_count did not drop after 5 clients left ({during} -> {after})"
