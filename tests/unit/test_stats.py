"""Latency summaries."""

from wsrig.stats import LatencySummary, percentile


def test_percentile_nearest_rank():
    """p50 of 1..100 is 50, p99 is 99, p100 is the max."""
    values = [float(i) for i in range(1, 101)]
    assert percentile(values, 50) == 50 and percentile(values, 99) == 99 and percentile(values, 100) == 100


def test_summary_shows_a_single_outlier_in_max_and_p999():
    """One slow sample among 1000 shows in p99.9 and max, not in p50."""
    s = LatencySummary.from_ms([1.0] * 999 + [1000.0])
    assert s.p50 == 1.0 and s.max == 1000.0 and s.p999 == 1.0 and s.count == 1000
    s2 = LatencySummary.from_ms([1.0] * 998 + [1000.0] * 2)
    assert s2.p999 == 1000.0


def test_summary_empty():
    """No samples: zeros, count 0."""
    assert LatencySummary.from_ms([]).count == 0


def test_latency_over_time_buckets_per_second():
    """Samples fall into 1 s buckets with p50, p99, max and count; empty seconds are absent."""
    from wsrig.stats import LATENCY_OVER_TIME_COLUMNS, latency_over_time

    rows = latency_over_time([(100.2, 5.0), (100.9, 1.0), (100.5, 3.0), (103.1, 40.0)])
    assert LATENCY_OVER_TIME_COLUMNS == ["t", "p50_ms", "p99_ms", "max_ms", "count"]
    assert rows == [[100.0, 3.0, 5.0, 5.0, 3], [103.0, 40.0, 40.0, 40.0, 1]]
