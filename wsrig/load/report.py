"""Turn a load run into the stage record: scenario row, checks vs thresholds, CSV series.

One place so the load and performance stages record a run the same way.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from wsrig.load.resources import COLUMNS as RESOURCE_COLUMNS
from wsrig.load.runner import LoadResult
from wsrig.record import Check, StageRecord

__all__ = ["data_problems", "invalid_reasons", "record_run", "run_problems", "scenario_findings"]

LATENCY_COLUMNS = ["t", "delivered", "p50_ms", "p99_ms", "max_ms"]


def _counted(lines: list[str]) -> list[str]:
    """The same line from many connections once, with its count."""
    return [f"{e} (x{n})" if n > 1 else e for e, n in Counter(lines).items()]


def invalid_reasons(result: LoadResult, max_lag_p99_ms: float) -> list[str]:
    """Why the run measured the rig rather than the system: rig errors, a late generator.

    A run with any of these proves nothing either way: it is invalid, not passed and
    not a saturation step.
    """
    out = _counted(result.rig_errors)
    if result.health is not None:
        out += result.health.problems(max_lag_p99_ms)
    return out


def data_problems(result: LoadResult) -> list[str]:
    """What the system did wrong in a valid run: refused subscribers, loss, disorder, closes."""
    out = _counted(result.connect_failures)
    if result.lost:
        out.append(f"{result.lost} of {result.expected} deliveries never arrived")
    if result.out_of_order:
        out.append(f"{result.out_of_order} deliveries out of seq order")
    if result.closed:
        out.append(f"subscribers closed by the backend with codes {sorted(set(result.closed))}")
    return out


def run_problems(result: LoadResult, max_lag_p99_ms: float) -> list[str]:
    """Everything that fails a run: why it is invalid, then what the system lost or broke."""
    return invalid_reasons(result, max_lag_p99_ms) + data_problems(result)


def scenario_findings(
    record: StageRecord, name: str, problems: list[str], checks: list[Check] | tuple[Check, ...] = ()
) -> list[dict[str, str]]:
    """Each problem and each broken check: an error finding of the row, and of the stage as ``name: ...``."""
    findings = [{"severity": "error", "message": p} for p in problems]
    findings += [{"severity": "error", "message": c.breach()} for c in checks if not c.passed]
    for f in findings:
        record.finding("error", f"{name}: {f['message']}")
    return findings


def record_run(
    record: StageRecord,
    results: Path,
    name: str,
    result: LoadResult,
    problems: list[str],
    checks: list[Check] | tuple[Check, ...] = (),
    **extra: Any,
) -> dict[str, Any]:
    """Scenario row (latency_ms = corrected summary, findings) plus latency and resource series.

    The row passes only with no problem and every check within its threshold; each
    problem and each broken check is an error finding of the row and of the stage.
    """
    findings = scenario_findings(record, name, problems, checks)
    fields = result.serialize()
    fields.update(extra, problems=problems, findings=findings)
    passed = not findings
    if result.per_second:
        record.add_series(results, f"{name}_latency", "latency", LATENCY_COLUMNS, result.per_second, unit="ms")
    if result.resources:
        record.add_series(results, f"{name}_resources", "resources", RESOURCE_COLUMNS, result.resources)
    return record.scenario(name, passed, **fields)
