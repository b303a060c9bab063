"""A load run's parts merged exactly: histograms added bucket by bucket, counts summed.

Each subscriber process records one part (later: each worker of a distributed rig,
one per process); a run's history keeps the parts as they came, and the judge merges
them here. HDR histograms add without loss, so the merged percentiles are those of
one histogram fed every sample; no percentile is taken before the merge. Pure.

A part is a plain dict (``wsrig.load.subscriber`` builds it): ``name``; ``connections``,
``connected``, ``connect_failures``; encoded histograms ``connect_hist``, ``corrected``,
``uncorrected``, ``per_second`` (second as text -> histogram) and ``loop_lag_hist``;
counts ``received``, ``duplicated``, ``reordered``; ``closed`` (close codes);
``cpu_s``. A process that broke reports ``error`` instead of its measurements.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from wsrig.hdr import LatencyHistogram
from wsrig.righealth import ProcessHealth

__all__ = ["Merged", "merge"]


@dataclass
class Merged:
    """Every part of one run added together."""

    corrected: LatencyHistogram = field(default_factory=LatencyHistogram)
    uncorrected: LatencyHistogram = field(default_factory=LatencyHistogram)
    connect: LatencyHistogram = field(default_factory=LatencyHistogram)
    per_second: dict[int, LatencyHistogram] = field(default_factory=dict)
    connected: int = 0
    received: int = 0
    duplicated: int = 0
    reordered: int = 0
    closed: list[int] = field(default_factory=list)
    connect_failures: list[str] = field(default_factory=list)
    #: each measuring process's own health (its loop lag read from its histogram)
    processes: list[ProcessHealth] = field(default_factory=list)
    #: parts that broke: the rig failed to measure there
    errors: list[str] = field(default_factory=list)

    @property
    def unique(self) -> int:
        """Deliveries that arrived, each once."""
        return self.received - self.duplicated


def _health(part: Mapping[str, Any]) -> ProcessHealth:
    lag = LatencyHistogram.decode(part["loop_lag_hist"])
    return ProcessHealth(
        str(part["name"]), round(lag.percentile_ms(99), 3), round(lag.max_ms(), 3), float(part.get("cpu_s", 0.0))
    )


def merge(parts: Iterable[Mapping[str, Any]]) -> Merged:
    """The parts of one run as one: histograms merged without loss, counts summed."""
    out = Merged()
    for part in parts:
        out.connected += int(part.get("connected", 0))
        out.connect_failures += [f"subscriber connect: {f}" for f in part.get("connect_failures", [])]
        if "error" in part:
            out.errors.append(f"{part['name']}: {part['error']}")
            continue
        out.corrected.merge(LatencyHistogram.decode(part["corrected"]))
        out.uncorrected.merge(LatencyHistogram.decode(part["uncorrected"]))
        out.connect.merge(LatencyHistogram.decode(part["connect_hist"]))
        for second, data in part["per_second"].items():
            hist = out.per_second.setdefault(int(second), LatencyHistogram(digits=2))
            hist.merge(LatencyHistogram.decode(data))
        out.received += int(part["received"])
        out.duplicated += int(part.get("duplicated", 0))
        out.reordered += int(part.get("reordered", 0))
        out.closed += [int(c) for c in part.get("closed", [])]
        out.processes.append(_health(part))
    return out
