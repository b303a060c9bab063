"""Tests of trading_bot.http: routes, the minimal HTTP server and Prometheus text."""

from __future__ import annotations

import asyncio
import json

from trading_bot.http import StatsServer, render_metrics

from wsrig.promtext import parse_metrics, sample

STATS = {
    "produced_by_type": {"trade": 3, "market_data": 10},
    "dropped_by_type": {"market_data": 2},
    "reconnects": 1,
    "queue_depth": 5,
    "outbox_depth": 2,
    "connected": True,
    "trading": {"ticks": 9, "orders": 3, "trades": 3, "equity": 1.5, "cash": 1.0},
}


def test_render_metrics_has_required_series():
    """Counters by type and the named gauges appear with the stats' values."""
    m = parse_metrics(render_metrics(STATS))
    assert sample(m, "bot_messages_produced_total", type="trade") == 3
    assert sample(m, "bot_messages_dropped_total", type="market_data") == 2
    assert sample(m, "bot_messages_dropped_total", type="order") == 0
    for name, value in (
        ("bot_reconnects_total", 1),
        ("bot_trades_total", 3),
        ("bot_queue_depth", 5),
        ("bot_outbox_depth", 2),
        ("bot_connected", 1),
    ):
        assert sample(m, name) == value


def test_routes():
    """/health, /stats, /metrics answer 200; unknown paths 404 JSON; POST 405."""
    server = StatsServer(lambda: STATS)
    assert server.route("GET", "/health")[0] == 200
    assert json.loads(server.route("GET", "/stats?x=1")[2])["reconnects"] == 1
    assert server.route("GET", "/metrics")[1].startswith("text/plain")
    status, ctype, body = server.route("GET", "/nope")
    assert status == 404 and ctype == "application/json" and json.loads(body)["error"]
    assert server.route("POST", "/health")[0] == 405


def test_server_over_tcp():
    """A real GET over TCP gets a full HTTP/1.1 response and the connection closes."""

    async def scenario() -> tuple[bytes, bytes]:
        server = StatsServer(lambda: STATS, host="127.0.0.1", port=0)
        await server.start()
        try:
            out = []
            for req in (b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", b"garbage\r\n\r\n"):
                reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
                writer.write(req)
                await writer.drain()
                out.append(await asyncio.wait_for(reader.read(), 2))  # EOF: closed
                writer.close()
            return out[0], out[1]
        finally:
            await server.close()

    ok, bad = asyncio.run(scenario())
    head, _, body = ok.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and json.loads(body) == {"status": "ok"}
    assert bad.startswith(b"HTTP/1.1 400")


def test_api_state_route():
    """/api/state serves the books when the server has them, 404 otherwise."""
    books = {"run_id": "r", "positions": {}}
    assert json.loads(StatsServer(lambda: STATS, state=lambda: books).route("GET", "/api/state")[2]) == books
    assert StatsServer(lambda: STATS).route("GET", "/api/state")[0] == 404
