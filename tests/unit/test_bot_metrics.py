"""Tests of trading_bot.metrics: /metrics declared once, read from /stats, same values.

Each series of ``/metrics`` is declared once in ``metrics.SERIES`` with the place in
``/stats`` its value comes from; ``STATS_ONLY`` lists the numbers of ``/stats`` that are
not exposed. These tests take a real ``App``'s ``/stats`` (trading, with its publisher),
so a number added to ``/stats`` and not declared (or a declared path that ``/stats`` does
not have) fails here. ``/metrics`` is parsed with the rig's reader (``wsrig.promtext``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from trading_bot import metrics
from trading_bot.app import App
from trading_bot.config import Config
from trading_bot.http import StatsServer, render_metrics
from trading_bot.publisher_core import MemoryOutbox
from wscontract import DATA_TYPES

from wsrig.promtext import parse_metrics, sample

#: The Prometheus names the rig and dashboards read, with their kinds: a rename is a
#: change of contract (wsrig/reconcile.py), not a refactoring.
EXPOSED = {
    "bot_messages_produced_total": "counter",
    "bot_messages_dropped_total": "counter",
    "bot_messages_sent_total": "counter",
    "bot_messages_resent_total": "counter",
    "bot_gaps_declared_total": "counter",
    "bot_reconnects_total": "counter",
    "bot_connect_failures_total": "counter",
    "bot_last_seq": "gauge",
    "bot_acked_seq": "gauge",
    "bot_queue_depth": "gauge",
    "bot_outbox_depth": "gauge",
    "bot_uptime_seconds": "gauge",
    "bot_rss_bytes": "gauge",
    "bot_open_fds": "gauge",
    "bot_connected": "gauge",
    "bot_ticks_total": "counter",
    "bot_orders_total": "counter",
    "bot_trades_total": "counter",
    "bot_equity": "gauge",
    "bot_cash": "gauge",
}


def _trading_app() -> App:
    """An app (not running) that has traded a while, with its publisher's counts set."""
    config = Config(dashboard_url="ws://127.0.0.1:1/ws", tick_interval=0.01, data_dir="/nonexistent")
    app = App(config, run_id="run-metrics", outbox=MemoryOutbox())
    now = time.monotonic()
    for i in range(600):
        app.sim.step(now + i * config.tick_interval)
        app.core.commit()
    assert app.publisher is not None
    app.publisher.errors_received["rate_limited"] = 2
    app.publisher.next_retry_at = time.time() + 5
    app.publisher.link_backoff_s = 1.25
    app.publisher.connect_failures = 3
    app.core.sent_total = 17
    return app


def _leaves(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every number in a JSON-like dict, with its path (lists are records, not counts)."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from _leaves(v, (*path, str(k)))
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield path, value


def _declared(path: tuple[str, ...]) -> bool:
    """Whether ``path`` is a declared series (or under a labelled one) or listed as stats-only."""
    for s in metrics.SERIES:
        if path == s.path or (s.label and path[: len(s.path)] == s.path and len(path) == len(s.path) + 1):
            return True
    return any(
        len(p) == len(path) and all(a in ("*", b) for a, b in zip(p, path, strict=True)) for p in metrics.STATS_ONLY
    )


def _types(text: str) -> dict[str, str]:
    return {line.split()[2]: line.split()[3] for line in text.splitlines() if line.startswith("# TYPE ")}


def test_names_and_kinds_are_the_contract():
    """/metrics exposes exactly today's names with today's kinds, in declaration order."""
    text = render_metrics(_trading_app().stats())
    assert _types(text) == EXPOSED
    assert list(_types(text)) == [s.name for s in metrics.SERIES]
    assert not [line for line in text.splitlines() if "_created" in line]


def test_every_number_of_stats_is_declared_or_listed():
    """A number added to /stats goes in metrics.SERIES or metrics.STATS_ONLY."""
    stats = _trading_app().stats()
    assert stats["trading"]["positions"] and stats["errors_received"]  # the wildcards are exercised
    undeclared = [".".join(p) for p, _ in _leaves(stats) if not _declared(p)]
    assert undeclared == []


def test_every_declared_path_is_in_stats():
    """No declared series reads a path /stats does not have (it would silently vanish)."""
    stats = _trading_app().stats()
    for s in metrics.SERIES:
        value = s.lookup(stats)
        if s.label:
            assert isinstance(value, Mapping) and value, s.name
        elif s.flag:
            assert isinstance(value, bool), s.name
        else:
            assert isinstance(value, int | float) and not isinstance(value, bool), s.name
    leaves = {p for p, _ in _leaves(stats)}
    for p in metrics.STATS_ONLY:
        if "*" not in p:
            assert p in leaves, f"STATS_ONLY lists {'.'.join(p)}, which /stats does not have"


def test_metrics_equal_stats():
    """Each series' value in /metrics is its /stats value (floats to six digits, as before)."""
    stats = _trading_app().stats()
    m = parse_metrics(render_metrics(stats))
    for s in metrics.SERIES:
        value = s.lookup(stats)
        if s.label:
            for t in DATA_TYPES | set(value):
                assert sample(m, s.name, type=t) == value.get(t, 0), (s.name, t)
        elif s.flag:
            assert sample(m, s.name) == (1 if value else 0)
        elif isinstance(value, float):
            assert sample(m, s.name) == float(f"{value:g}"), s.name
        else:
            assert sample(m, s.name) == value, s.name
    assert sample(m, "bot_messages_sent_total") == 17 and sample(m, "bot_connect_failures_total") == 3
    assert sample(m, "bot_trades_total") == stats["trading"]["trades"] > 0


def test_partial_stats_leave_out_what_is_missing():
    """Missing numbers: left out, or 0 for the trading counts and types, as before."""
    text = render_metrics({"connected": False, "rss_bytes": None, "uptime_s": True})
    m = parse_metrics(text)
    assert sample(m, "bot_connected") == 0
    assert sample(m, "bot_ticks_total") == 0 and sample(m, "bot_trades_total") == 0
    assert sample(m, "bot_messages_produced_total", type="trade") == 0
    for name in ("bot_rss_bytes", "bot_uptime_seconds", "bot_last_seq", "bot_equity"):
        assert name not in _types(text) and sample(m, name) is None


def test_served_over_the_route():
    """GET /metrics: prometheus-client's text format 0.0.4, read off stats() per request."""
    stats = {"sent_total": 1, "connected": True}
    server = StatsServer(lambda: stats)
    status, ctype, body = server.route("GET", "/metrics")
    assert (status, ctype) == (200, "text/plain; version=0.0.4; charset=utf-8")
    assert sample(parse_metrics(body.decode()), "bot_messages_sent_total") == 1
    stats["sent_total"] = 5
    assert sample(parse_metrics(server.route("GET", "/metrics")[2].decode()), "bot_messages_sent_total") == 5


def test_a_counter_must_keep_its_total_suffix():
    """prometheus-client would add _total to a counter: the declaration refuses such a name."""
    with pytest.raises(ValueError, match="_total"):
        metrics.Series("bot_things", "counter", "Things.", ("things",))
