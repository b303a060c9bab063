"""Tests for dashboard_backend.gcwatch and the ring entries the collector no longer walks."""

from __future__ import annotations

import gc
import logging

from dashboard_backend.fanout import Entry, Hub, Subscription
from dashboard_backend.gcwatch import ChurnCollector, GcWatch


def test_record_counts_totals_and_keeps_the_longest() -> None:
    watch = GcWatch(log_over_s=1.0)
    watch.record(0, 0.002)
    watch.record(2, 0.120)
    watch.record(2, 0.030)
    assert watch.count == [1, 0, 2]
    assert watch.max_s[2] == 0.120
    assert abs(watch.total_s[2] - 0.150) < 1e-9


def test_long_pause_is_logged(caplog) -> None:
    watch = GcWatch(log_over_s=0.05)
    with caplog.at_level(logging.INFO, logger="dashboard_backend.gc"):
        watch.record(2, 0.01)
        watch.record(2, 0.2, collected=93000)
    assert [r.getMessage() for r in caplog.records] == ["gc pause: generation 2 took 200.0 ms (93000 objects freed)"]


def test_installed_watch_sees_a_real_full_collection() -> None:
    watch = GcWatch(log_over_s=10.0)
    watch.install()
    try:
        gc.collect()
    finally:
        watch.uninstall()
    assert watch.count[2] >= 1
    assert watch.max_s[2] > 0
    assert watch._on_gc not in gc.callbacks


def test_ring_entries_drop_out_of_the_collectors_sight() -> None:
    hub = Hub(ring_size=100)
    for i in range(1, 101):
        hub.publish(Entry("run", i, "market_data", "BTC", f"frame-{i}", ((i, i),) if i % 7 == 0 else ()))
    for _ in range(3):  # the collector untracks one level of nesting per pass (declared ranges)
        gc.collect()
    assert not any(gc.is_tracked(row) for row in hub.ring)
    entries, complete = hub.replay("run", 90, Subscription())
    assert complete and [e.seq for e in entries] == list(range(91, 101))


def test_churn_collector_waits_for_many_closes_and_then_for_quiet() -> None:
    churn = ChurnCollector(after_closes=3, quiet_s=2.0)
    for t in (10.0, 10.1):
        churn.closed(t)
    assert not churn.due(20.0)  # two closes: too few to be worth a pause
    churn.closed(10.2)
    assert not churn.due(11.0)  # still leaving
    assert churn.due(12.3)
    churn.collected()
    assert not churn.due(30.0)
