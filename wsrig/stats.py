"""Latency summaries: exact percentiles from samples, in milliseconds.

Pure. Small sample sets (connectivity probes) are summarised exactly here; the
load stages will use an HDR histogram for long runs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass

__all__ = ["LATENCY_OVER_TIME_COLUMNS", "LatencySummary", "latency_over_time", "percentile"]


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of already sorted values (0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(pct * len(sorted_values) / 100.0 - 1e-9))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass(frozen=True)
class LatencySummary:
    """``latency_ms`` as the summary schema names it."""

    p50: float
    p90: float
    p99: float
    p999: float
    max: float
    count: int

    @classmethod
    def from_ms(cls, samples: Iterable[float]) -> LatencySummary:
        values = sorted(float(v) for v in samples)
        return cls(
            p50=round(percentile(values, 50), 3),
            p90=round(percentile(values, 90), 3),
            p99=round(percentile(values, 99), 3),
            p999=round(percentile(values, 99.9), 3),
            max=round(values[-1], 3) if values else 0.0,
            count=len(values),
        )

    def serialize(self) -> dict[str, float | int]:
        return asdict(self)


LATENCY_OVER_TIME_COLUMNS = ["t", "p50_ms", "p99_ms", "max_ms", "count"]


def latency_over_time(samples: Iterable[tuple[float, float]], bucket_s: float = 1.0) -> list[list[float | int]]:
    """(time Unix s, latency ms) samples -> one row per ``bucket_s`` for the chart.

    Rows follow ``LATENCY_OVER_TIME_COLUMNS``; ``t`` is the bucket's start, empty
    buckets are left out (a gap in the chart is the truth: nothing arrived).
    """
    buckets: dict[int, list[float]] = {}
    for t, ms in samples:
        buckets.setdefault(int(t // bucket_s), []).append(float(ms))
    rows: list[list[float | int]] = []
    for key in sorted(buckets):
        values = sorted(buckets[key])
        rows.append(
            [
                round(key * bucket_s, 3),
                round(percentile(values, 50), 3),
                round(percentile(values, 99), 3),
                round(values[-1], 3),
                len(values),
            ]
        )
    return rows
