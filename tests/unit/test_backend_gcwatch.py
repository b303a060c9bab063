"""Tests for dashboard_backend.gcwatch and the ring entries the collector no longer walks."""

from __future__ import annotations

import gc
import logging

from dashboard_backend.fanout import Entry, Hub, Subscription
from dashboard_backend.gcwatch import (
    AUTOMATIC_FULL_OFF,
    FullCollections,
    GcWatch,
    heap_census,
    take_over_full_collections,
)


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


def test_full_collection_after_many_closes_once_clients_stop_leaving() -> None:
    full = FullCollections(after_closes=3, quiet_s=2.0, every_s=1000.0)
    for t in (10.0, 10.1):
        full.closed(t)
    assert not full.due(20.0)  # two closes: too few to be worth a pause
    full.closed(10.2)
    assert not full.due(11.0)  # still leaving
    assert full.due(12.3)
    full.collected(12.3)
    assert not full.due(30.0)


def test_periodic_full_collection_waits_for_arrivals_but_not_forever() -> None:
    full = FullCollections(quiet_s=1.0, every_s=60.0, max_defer_s=30.0, now=0.0)
    assert not full.due(59.0)
    full.arrived(59.5)
    assert not full.due(60.0)  # a client is connecting: not now
    assert full.due(60.6)  # quiet again
    for t in range(61, 90):  # clients keep arriving ...
        full.arrived(float(t))
        assert not full.due(t + 0.1)
    full.arrived(90.0)
    assert full.due(90.1)  # ... but memory must stay bounded: 60 + 30 s at most
    full.collected(90.1)
    assert not full.due(100.0)


def test_backend_takes_over_full_collections_and_gives_them_back() -> None:
    before = gc.get_threshold()
    previous = take_over_full_collections()
    try:
        assert previous == before
        assert gc.get_threshold() == (before[0], before[1], AUTOMATIC_FULL_OFF)
    finally:
        gc.set_threshold(*previous)
    assert gc.get_threshold() == before


def test_heap_census_counts_types_most_common_first():
    class Conn:
        pass

    objects = [Conn() for _ in range(3)] + [[], {}, {}]
    line = heap_census(objects, top=2)
    assert line.startswith("heap census: 6 tracked objects; ")
    assert line.endswith("test_heap_census_counts_types_most_common_first.<locals>.Conn=3, dict=2")
