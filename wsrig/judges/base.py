"""What every probe judge returns, and the helpers they share."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from wsrig.checkers import Finding
from wsrig.record import Check
from wsrig.stats import LatencySummary

__all__ = ["Check", "Finding", "Rule", "Verdict", "p99"]

#: (checks: each a value against its threshold, findings a threshold cannot express, figures for the row)
Verdict = tuple[list[Check], list[Finding], dict[str, Any]]

#: one probe's judge: its raw measurements and the stage's thresholds -> a Verdict
Rule = Callable[[Mapping[str, Any], Mapping[str, Any]], Verdict]


def p99(samples: list[float]) -> LatencySummary:
    """Latency samples in ms, summarised (P50..max) as the report prints them."""
    return LatencySummary.from_ms(samples)
