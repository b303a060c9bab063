"""Tests of trading_bot.app: wiring, /stats shape, graceful stop keeps the outbox."""

from __future__ import annotations

import asyncio
import json
import urllib.request

from trading_bot.app import App, process_stats
from trading_bot.config import Config
from trading_bot.outbox import SqliteOutbox


def test_process_stats_reads_proc():
    """rss_bytes and open_fds are positive on Linux."""
    s = process_stats()
    assert s["rss_bytes"] and s["rss_bytes"] > 0 and s["open_fds"] and s["open_fds"] > 0


def test_app_trades_offline_serves_stats_and_keeps_outbox(tmp_path):
    """With no backend the app trades, serves /stats, and leaves criticals on disk at stop."""
    config = Config(
        dashboard_url="ws://127.0.0.1:1/ws",
        tick_interval=0.01,
        data_dir=str(tmp_path),
        http_port=1,  # replaced below by port 0
    )

    async def scenario() -> dict:
        app = App(config)
        app.http._port = 0  # bind any free port
        stop = asyncio.Event()
        task = asyncio.create_task(app.run(stop))
        for _ in range(200):
            await asyncio.sleep(0.02)
            if app.sim.portfolio.trades >= 3:
                break
        url = f"http://127.0.0.1:{app.http.port}/stats"
        body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=2).read())
        stop.set()
        await asyncio.wait_for(task, 10)
        return json.loads(body)

    stats = asyncio.run(scenario())
    assert stats["connected"] is False and stats["trading"]["trades"] >= 3
    for key in (
        "run_id",
        "last_seq",
        "acked_seq",
        "produced_by_type",
        "declared_gaps",
        "queue_depth",
        "outbox_depth",
        "reconnects",
        "last_error",
        "ws_url",
        "uptime_s",
        "rss_bytes",
        "open_fds",
    ):
        assert key in stats
    box = SqliteOutbox.in_dir(str(tmp_path))
    assert box.runs() == [stats["run_id"]] and box.depth() >= stats["outbox_depth"]
    box.close()


def test_session_ends_then_idles_and_serves_books(tmp_path):
    """With SYSTEM__TRADING_SESSION_S the tick loop stops; /api/state stays served and still."""
    config = Config(
        dashboard_url="ws://127.0.0.1:1/ws",
        tick_interval=0.01,
        data_dir=str(tmp_path),
        trading_session_s=0.3,
    )

    async def scenario() -> tuple[dict, dict, bool]:
        app = App(config)
        app.http._port = 0
        stop = asyncio.Event()
        task = asyncio.create_task(app.run(stop))
        for _ in range(500):  # bounded: 10 s at most
            await asyncio.sleep(0.02)
            if app.session_ended:
                break
        url = f"http://127.0.0.1:{app.http.port}/api/state"
        first = json.loads(await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=2).read()))
        await asyncio.sleep(0.1)
        second = json.loads(await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=2).read()))
        ended = app.stats()["session_ended"]
        stop.set()
        await asyncio.wait_for(task, 10)
        return first, second, ended

    first, second, ended = asyncio.run(scenario())
    assert ended and first["session_ended"] is True
    assert first == second, "books moved after the session ended"
    assert first["orders"]["placed"] == first["orders"]["filled"] + first["orders"]["cancelled"]
    assert set(first) >= {"run_id", "last_seq", "positions", "portfolio", "trades_by_symbol", "orders"}


def test_config_rejects_negative_session():
    """A negative SYSTEM__TRADING_SESSION_S names the variable."""
    import pytest

    with pytest.raises(ValueError, match="TRADING_SESSION_S"):
        Config.from_env({"SYSTEM__TRADING_SESSION_S": "-1"})
    assert Config.from_env({"SYSTEM__TRADING_SESSION_S": "60"}).trading_session_s == 60.0
