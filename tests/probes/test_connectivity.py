"""Connectivity stage: handshakes, live exchange, ping RTT, many clients, frame limits, status API.

Each probe drives and records what it measured in a ``ProbeHistory``;
``wsrig.judges`` decides (and ``wsrig judge`` can again, offline).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import pytest
from websockets.asyncio.client import connect

from wsrig import messages
from wsrig.clients import Publisher, Subscriber
from wsrig.probe import backend_status, progress, record_probe, run

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

    times = run(body())
    progress(f"{len(times)} handshakes of {n} clients timed")
    record_probe(record, limits, "handshake_time", clients=n, handshake_ms=times)


def test_subscriber_receives_live_bot_traffic(cfg, record, limits, bot_run_id):
    """A new subscriber gets a snapshot, then live envelopes of the bot's run within the deadline."""
    deadline = float(limits["first_message_within_s"])

    async def body() -> tuple[float | None, bool]:
        async with Subscriber(cfg.stream_url) as sub:
            t0 = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await sub.wait_for(lambda s: _live_envelopes(s, bot_run_id) > 0, deadline * 2, "a live bot envelope")
            elapsed = time.monotonic() - t0 if _live_envelopes(sub, bot_run_id) else None
            return elapsed, sub.snapshot is not None

    elapsed, snapshot = run(body())
    record_probe(record, limits, "first_live_message", first_live_s=elapsed, snapshot=snapshot, bot_run_id=bot_run_id)


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

    record_probe(record, limits, "ping_rtt", pings=50, rtt_ms=run(body()))


def test_concurrent_clients_all_receive(cfg, record, limits, bot_run_id):
    """N concurrent subscribers all receive live bot traffic, and the status API counts them."""
    n = int(limits["concurrent_clients"])

    async def body() -> tuple[int, int, list[float]]:
        subs = [Subscriber(cfg.stream_url, messages.subscribe(snapshot=False)) for _ in range(n)]
        await asyncio.gather(*(s.connect() for s in subs))
        try:
            progress(f"{n} subscribers connected; waiting for live traffic on each")
            with contextlib.suppress(TimeoutError):  # who got nothing is the judge's to count
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
    record_probe(
        record,
        limits,
        "concurrent_clients",
        clients=n,
        receiving=receiving,
        status_client_count=counted,
        handshake_ms=handshakes,
    )


def test_large_message_accepted(cfg, record, limits):
    """A frame just under the size limit is accepted and acknowledged."""
    size = int(limits["large_message_bytes"])

    async def body() -> str | None:
        async with Publisher(cfg.ingest_url, cfg.auth_token) as pub:
            data = dict(messages.SAMPLE_DATA["market_data"], padding="x" * size)
            env = await pub.publish("market_data", data)
            try:
                return str((await pub.wait_ack(env["seq"], timeout=10)).get("type"))
            except (TimeoutError, ConnectionError) as exc:
                return f"no ack ({exc})"

    record_probe(record, limits, "large_message", size=size, ack_type=run(body()))


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

    record_probe(record, limits, "oversize_message", size=size, close_code=run(body()))


def test_status_api_reflects_connections(cfg, record, limits, bot_run_id):
    """/api/websocket/status shows the bot as publisher and our extra clients as they come and go."""

    extra = 5

    async def body() -> tuple[int, int, int, list]:
        before = (await asyncio.to_thread(backend_status, cfg))["client_count"]
        subs = [Subscriber(cfg.stream_url) for _ in range(extra)]
        await asyncio.gather(*(s.connect() for s in subs))
        await asyncio.sleep(0.5)
        during = await asyncio.to_thread(backend_status, cfg)
        await asyncio.gather(*(s.close() for s in subs))
        await asyncio.sleep(0.5)
        after = (await asyncio.to_thread(backend_status, cfg))["client_count"]
        publishers = [p.get("run_id") for p in during.get("publishers", [])]
        return before, during["client_count"], after, publishers

    before, during, after, publishers = run(body())
    record_probe(
        record,
        limits,
        "status_api",
        extra=extra,
        before=before,
        during=during,
        after=after,
        publishers=publishers,
        bot_run_id=bot_run_id,
    )
