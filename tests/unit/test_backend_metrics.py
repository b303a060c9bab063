"""Tests of dashboard_backend.metrics: each number declared once, the same in both views.

The status JSON's ``counters`` and ``/metrics`` are both built from ``metrics.SERIES``;
these tests read both off one backend whose every count holds a value of its own, and
parse ``/metrics`` with the rig's own reader (``wsrig.promtext``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import urllib.request
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest
from dashboard_backend import metrics
from dashboard_backend.config import Config
from dashboard_backend.ingest import IngestCounters
from dashboard_backend.metrics import ServerCounters
from dashboard_backend.server import Backend
from websockets.asyncio.client import connect

from wsrig.promtext import parse_metrics, sample

#: The Prometheus names the rig and dashboards read, with their kinds: a rename is a
#: change of contract (tests/probes, wsrig/reconcile.py), not a refactoring.
EXPOSED = {
    "dashboard_messages_received_total": "counter",
    "dashboard_messages_unique_total": "counter",
    "dashboard_broadcast_total": "counter",
    "dashboard_duplicates_total": "counter",
    "dashboard_late_total": "counter",
    "dashboard_rejected_total": "counter",
    "dashboard_gaps_declared_total": "counter",
    "dashboard_declared_dropped_total": "counter",
    "dashboard_auth_failures_total": "counter",
    "dashboard_oversize_closes_total": "counter",
    "dashboard_origin_rejected_total": "counter",
    "dashboard_handshake_timeouts_total": "counter",
    "dashboard_connections_refused_total": "counter",
    "dashboard_rate_limit_closes_total": "counter",
    "dashboard_publisher_throttled_total": "counter",
    "dashboard_invalid_utf8_closes_total": "counter",
    "dashboard_bad_requests_total": "counter",
    "dashboard_slow_client_disconnects_total": "counter",
    "dashboard_committed_total": "counter",
    "dashboard_commit_batches_total": "counter",
    "dashboard_internal_errors_total": "counter",
    "dashboard_publisher_connections_total": "counter",
    "dashboard_client_connections_total": "counter",
    "dashboard_publishers": "gauge",
    "dashboard_clients": "gauge",
    "dashboard_run_acked_seq": "gauge",
    "dashboard_client_writes_deferred_total": "counter",
    "dashboard_gc_pauses_total": "counter",
    "dashboard_gc_pause_seconds_total": "counter",
    "dashboard_gc_pause_max_seconds": "gauge",
    "dashboard_rss_bytes": "gauge",
    # the shared log (Redis mode, docs/CLUSTER.md); 0 on a single node
    "dashboard_redis_appends_total": "counter",
    "dashboard_redis_append_failures_total": "counter",
    "dashboard_redis_duplicates_total": "counter",
    "dashboard_redis_append_batches_total": "counter",
    "dashboard_redis_applied_total": "counter",
    "dashboard_redis_read_failures_total": "counter",
    "dashboard_redis_tail_lag_ms": "gauge",
    "dashboard_redis_connected": "gauge",
}
#: The status JSON's ``counters`` keys (the rig's security stage and probes read them).
STATUS_KEYS = {
    "received",
    "received_by_type",
    "unique",
    "duplicates",
    "late",
    "rejected",
    "rejected_by_code",
    "gaps_declared",
    "declared_dropped",
    "broadcast",
    "auth_failures",
    "oversize_closes",
    "slow_client_disconnects",
    "publisher_connections_total",
    "client_connections_total",
    "publisher_takeovers",
    "bad_subscribe",
    "origin_rejected",
    "internal_errors",
    "bad_requests",
    "handshake_timeouts",
    "connections_refused",
    "rate_limit_closes",
    "publisher_throttled",
    "invalid_utf8_closes",
    "client_frames_ignored",
    "committed",
    "commit_batches",
    "commit_errors",
    "commit_pending",
    "redis_appends",
    "redis_append_failures",
    "redis_duplicates",
    "redis_append_batches",
    "redis_applied",
    "redis_read_failures",
    "redis_tail_lag_ms",
    "redis_connected",
}
#: Numbers deliberately in one view only. A new series with a key or a name only fails
#: ``test_one_sided_series_are_the_known_ones`` until it is listed here on purpose.
STATUS_ONLY = {
    "received",
    "rejected",
    "commit_errors",
    "commit_pending",
    "publisher_takeovers",
    "bad_subscribe",
    "client_frames_ignored",
}
METRICS_ONLY = {
    "dashboard_publishers",
    "dashboard_clients",
    "dashboard_run_acked_seq",
    "dashboard_client_writes_deferred_total",
    "dashboard_gc_pauses_total",
    "dashboard_gc_pause_seconds_total",
    "dashboard_gc_pause_max_seconds",
    "dashboard_rss_bytes",
}
#: Counter fields that no view reports (counted for debugging only).
UNREPORTED_FIELDS = {"http_requests"}


def _busy_backend(tmp_path: Any) -> Backend:
    """A backend (not started) whose every count holds a value no other count has."""
    backend = Backend(Config(data_dir=str(tmp_path)))
    n = 100
    for obj in (backend.counters, backend.ingest.counters):
        for f in dataclasses.fields(obj):
            if isinstance(getattr(obj, f.name), int):
                n += 1
                setattr(obj, f.name, n)
    backend.ingest.counters.received_by_type.update({"trade": 7, "market_data": 11, "order": 5})
    backend.ingest.counters.rejected_by_code.update({"schema_violation": 3, "invalid_json": 2})
    backend.hub.slow_client_disconnects = 91
    backend.committer = SimpleNamespace(committed=92, batches=93, errors=94, depth=95)  # type: ignore[assignment]
    backend.write_turns.deferred = 96
    backend.gc.count = [97, 98, 99]
    backend.gc.total_s = [0.125, 0.0000014, 2.5]
    backend.gc.max_s = [0.01, 0.0, 0.75]
    backend.ingest.restore("run-a", 40, 42)
    backend.ingest.restore("run-b", 41, 43)
    return backend


def _exposed_values(text: str, s: metrics.Series) -> dict[str, float] | float | None:
    """``s``'s value(s) in a parsed exposition: label value -> value, or the one value."""
    parsed = parse_metrics(text)
    if s.label is None:
        return sample(parsed, s.name or "")
    prefix = f'{s.name}{{{s.label}="'
    return {k[len(prefix) : -2]: v for k, v in parsed.items() if k.startswith(prefix)}


def _types(text: str) -> dict[str, str]:
    return {line.split()[2]: line.split()[3] for line in text.splitlines() if line.startswith("# TYPE ")}


def test_names_and_kinds_are_the_contract(tmp_path):
    """/metrics exposes exactly today's names with today's kinds (no _total added or lost)."""
    text = _busy_backend(tmp_path).metrics()
    assert _types(text) == EXPOSED
    assert {s.name: s.kind for s in metrics.SERIES if s.name} == EXPOSED
    helps = [line for line in text.splitlines() if line.startswith("# HELP ")]
    assert [h.split()[2] for h in helps] == list(EXPOSED)  # in declaration order, once each
    assert not [line for line in text.splitlines() if "_created" in line]


def test_status_keys_are_the_contract(tmp_path):
    """The status JSON's counters keep exactly today's keys."""
    backend = _busy_backend(tmp_path)
    assert set(backend.status()["counters"]) == STATUS_KEYS
    assert set(backend.all_counters()) == STATUS_KEYS


def test_one_sided_series_are_the_known_ones():
    """A series in one view only is one of the listed ones: a new number goes in both."""
    assert {s.key for s in metrics.SERIES if s.name is None} == STATUS_ONLY
    assert {s.name for s in metrics.SERIES if s.key is None} == METRICS_ONLY


def test_every_declared_number_has_the_same_value_in_both_views(tmp_path):
    """For each series in both views, status JSON value == /metrics value (per label)."""
    backend = _busy_backend(tmp_path)
    counters = backend.status()["counters"]
    text = backend.metrics()
    both = [s for s in metrics.SERIES if s.key and s.name]
    assert len(both) == 31
    for s in both:
        assert s.key is not None
        exposed = _exposed_values(text, s)
        if s.label:
            assert exposed == {k: float(v) for k, v in counters[s.key].items()}, s.name
            assert exposed  # the busy backend has values for every labelled series
        else:
            assert exposed == counters[s.key], s.name
    for s in metrics.SERIES:
        if s.name:
            assert _exposed_values(text, s) not in (None, {}), f"{s.name} missing from /metrics"
        if s.key:
            assert s.key in counters


def test_every_counter_field_is_reported(tmp_path):
    """Each count the hot paths keep (ServerCounters, IngestCounters) shows up in a view."""
    backend = _busy_backend(tmp_path)
    counters = backend.status()["counters"]
    shown = set(parse_metrics(backend.metrics()).values())
    shown |= {float(v) for v in counters.values() if isinstance(v, int)}
    for obj in (backend.counters, backend.ingest.counters):
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            values = list(value.values()) if isinstance(value, Counter) else [value]
            if f.name not in UNREPORTED_FIELDS:
                assert values, f"{type(obj).__name__}.{f.name} holds no value in the test"
                for v in values:
                    assert float(v) in shown, f"{type(obj).__name__}.{f.name} is not reported"
    reported = {f.name for f in dataclasses.fields(ServerCounters)} | {
        f.name for f in dataclasses.fields(IngestCounters)
    }
    assert reported >= UNREPORTED_FIELDS  # the allowance names real fields


def test_exposition_parses_with_the_rigs_reader(tmp_path):
    """wsrig.promtext reads the generated text: a few names and values by hand."""
    backend = _busy_backend(tmp_path)
    m = parse_metrics(backend.metrics())
    assert sample(m, "dashboard_messages_received_total", type="trade") == 7
    assert sample(m, "dashboard_messages_received_total", type="market_data") == 11
    assert sample(m, "dashboard_rejected_total", code="invalid_json") == 2
    assert sample(m, "dashboard_broadcast_total") == backend.counters.broadcast
    assert sample(m, "dashboard_committed_total") == 92
    assert sample(m, "dashboard_slow_client_disconnects_total") == 91
    assert sample(m, "dashboard_run_acked_seq", run_id="run-a") == 40
    assert sample(m, "dashboard_gc_pauses_total", generation="2") == 99
    assert sample(m, "dashboard_gc_pause_seconds_total", generation="1") == 0.000001  # rounded to 6 places
    assert sample(m, "dashboard_clients") == 0
    assert (sample(m, "dashboard_rss_bytes") or 0) > 0


def test_fresh_backend_counts_zero_and_omits_nothing_declared(tmp_path):
    """Before anything happens: zeros, empty labelled families still declared (HELP/TYPE)."""
    backend = Backend(Config(data_dir=str(tmp_path)))
    text = backend.metrics()
    assert _types(text) == EXPOSED
    counters = backend.all_counters()
    assert counters["committed"] == 0 and counters["received_by_type"] == {}
    assert sample(parse_metrics(text), "dashboard_committed_total") == 0
    assert "dashboard_rejected_total{" not in text


def test_a_counter_must_keep_its_total_suffix():
    """prometheus-client would add _total to a counter: the declaration refuses such a name."""
    with pytest.raises(ValueError, match="_total"):
        metrics.Series("k", "dashboard_things", "counter", "Things.", lambda b: 0)


def test_live_backend_serves_both_views_alike(tmp_path):
    """Over HTTP, on a running backend that took envelopes: same numbers, text/plain 0.0.4."""
    token = "test-token"
    run = "run-metrics-1"

    def envelope(seq: int) -> str:
        data = {"symbol": "BTC", "price": 100.5, "bid": 100.0, "ask": 101.0, "volume": 3}
        env = {"v": 1, "type": "market_data", "source": "ai-trading-bot", "run_id": run, "seq": seq}
        return json.dumps({**env, "ts_ns": 1_700_000_000_000_000_000 + seq, "data": data})

    async def go() -> tuple[str, str, dict[str, Any]]:
        backend = Backend(Config(host="127.0.0.1", port=0, auth_token=token, data_dir=str(tmp_path)))
        await backend.start()
        try:
            base = f"127.0.0.1:{backend.port}"
            async with connect(f"ws://{base}/ws") as pub:
                hello = {"type": "hello", "v": 1, "source": "ai-trading-bot", "run_id": run, "auth": token}
                await pub.send(json.dumps(hello))
                assert json.loads(await pub.recv())["type"] == "welcome"
                for seq in range(1, 6):
                    await pub.send(envelope(seq))
                await pub.send("{not json")
                await pub.send(envelope(3))  # a duplicate
                await pub.send(envelope(6))  # acked once everything before it is handled
                while True:
                    frame = json.loads(await asyncio.wait_for(pub.recv(), 5))
                    if frame["type"] == "ack" and frame["seq"] >= 6:
                        break

            def get(path: str) -> tuple[str, bytes]:
                with urllib.request.urlopen(f"http://{base}{path}", timeout=5) as resp:
                    return resp.headers["Content-Type"], resp.read()

            ctype, body = await asyncio.to_thread(get, "/metrics")
            _, status = await asyncio.to_thread(get, "/api/websocket/status")
            return ctype, body.decode(), json.loads(status)
        finally:
            await backend.stop()

    ctype, text, status = asyncio.run(asyncio.wait_for(go(), 20))
    assert ctype == "text/plain; version=0.0.4; charset=utf-8"
    counters = status["counters"]
    assert counters["received_by_type"] == {"market_data": 7} and counters["duplicates"] == 1
    assert counters["rejected_by_code"] == {"invalid_json": 1}
    for s in metrics.SERIES:
        if s.key and s.name:
            exposed = _exposed_values(text, s)
            expected = {k: float(v) for k, v in counters[s.key].items()} if s.label else counters[s.key]
            assert exposed == expected, s.name
    assert sample(parse_metrics(text), "dashboard_run_acked_seq", run_id=run) == 6
    assert Counter(_types(text).values()) == Counter(EXPOSED.values())
