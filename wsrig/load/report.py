"""Turn a load run into the stage record: scenario row, checks vs thresholds, CSV series.

One place so the load and performance stages record a run the same way.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path
from typing import Any

from wsrig.config import RigConfig
from wsrig.load.resources import COLUMNS as RESOURCE_COLUMNS
from wsrig.load.runner import LoadResult
from wsrig.record import Check, StageRecord
from wsrig.righealth import INVALID_PREFIX, RigLimits, beyond_rig, scenario_status

__all__ = [
    "data_problems",
    "invalid_reasons",
    "ratio",
    "ratio_check",
    "record_run",
    "reference_config",
    "reference_problems",
    "scenario_findings",
]

LATENCY_COLUMNS = ["t", "delivered", "p50_ms", "p99_ms", "max_ms"]
#: The close code a WebSocket server sends when its keepalive ping got no pong in time.
KEEPALIVE_CLOSE = 1011


def _counted(lines: list[str]) -> list[str]:
    """The same line from many connections once, with its count."""
    return [f"{e} (x{n})" if n > 1 else e for e, n in Counter(lines).items()]


def invalid_reasons(result: LoadResult, limits: RigLimits) -> list[str]:
    """Why the run measured the rig rather than the system (``wsrig.righealth``).

    A run with any of these cannot judge the system's timing: it is invalid, not passed,
    not failed, and not a saturation step.
    """
    return _counted(result.rig.invalid_reasons(limits))


def reference_config(cfg: RigConfig) -> RigConfig:
    """The same rig pointed at the reference broadcast server (DESIGN.md section 9)."""
    return dataclasses.replace(cfg, dashboard_ws_url=cfg.reference_ws_url, dashboard_service=cfg.reference_service)


def reference_problems(ref: LoadResult, limits: RigLimits) -> list[str]:
    """Why a reference run cannot serve as the yardstick: its rig's health, or its own loss.

    The reference is part of the instrument: a late rig inflates the reference's P99 and
    so deflates the ratio, in either direction of the verdict. When it did not measure
    cleanly, the ratio to it is not judged (its reason recorded), never a finding
    against the system.
    """
    return [f"reference run: {p}" for p in invalid_reasons(ref, limits) + data_problems(ref)]


def ratio(value: float | None, reference: float | None) -> float | None:
    """``value / reference`` rounded, or None when either is missing or the reference is 0."""
    if value is None or not reference:
        return None
    return round(value / reference, 2)


def ratio_check(
    record: StageRecord, label: str, value: float | None, limit: float, op: str, not_judged: list[str], scenario: str
) -> Check | None:
    """A ratio to the reference as a check, or, when the reference run cannot serve as the
    yardstick (``not_judged`` says why), recorded beside a warning and not judged."""
    if not_judged:
        record.measure(f"{label} (not judged)", value, None, op, "x")
        record.finding("warning", f"{scenario}: ratio to reference not judged: {'; '.join(not_judged)}")
        return None
    missing = float("inf") if op.startswith("<") else 0.0  # no reference figure: the worst case
    return record.measure(label, value if value is not None else missing, limit, op, "x")


def data_problems(result: LoadResult) -> list[str]:
    """What the system did wrong, whatever the rig's health: refused subscribers, loss, disorder, closes."""
    out = _counted(result.connect_failures)
    if result.lost:
        out.append(f"{result.lost} of {result.expected} deliveries never arrived")
    if result.out_of_order:
        out.append(f"{result.out_of_order} deliveries out of seq order")
    if result.closed:
        out.append(f"subscribers closed by the backend with codes {sorted(set(result.closed))}")
    return out


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
    limits: RigLimits,
    checks: list[Check] | tuple[Check, ...] = (),
    problems: list[str] | tuple[str, ...] = (),
    judge_data: bool = True,
    also_invalid: list[str] | tuple[str, ...] = (),
    rig_vouched_by: str = "",
    **extra: Any,
) -> dict[str, Any]:
    """Scenario row (latency_ms = corrected summary, rig health, status) plus CSV series.

    ``problems`` are correctness findings of the probe's own on top of ``data_problems``;
    ``checks`` are timing thresholds, believable only when the rig was healthy. Status
    (``righealth.scenario_status``): correctness problems fail; else an unhealthy rig
    makes the row ``invalid`` (its broken timing checks are not the system's, and are
    withdrawn from the stage's findings); else broken checks fail; else passed.
    ``judge_data=False`` for a saturation step, where loss past the saturation point is
    the measurement (recorded in ``problems``), not a failure. ``also_invalid``: reasons
    from elsewhere that this row's figures cannot be trusted (its reference run's rig).
    A broken latency bound larger than the rig's worst stall (``righealth.beyond_rig``)
    is the system's; ``rig_vouched_by`` names a control run (the reference server under
    the same plan, rig and cores) that met the bounds: the rig could measure this plan,
    so its lag voids nothing.
    """
    correctness = data_problems(result) + list(problems)
    judged = correctness if judge_data else []
    blocking = list(dict.fromkeys(_counted(result.rig.blocking(limits)) + list(also_invalid)))
    lagging = _counted(result.rig.lagging(limits))
    vouched = bool(lagging and rig_vouched_by)
    if lagging and judged and result.closed and set(result.closed) <= {KEEPALIVE_CLOSE}:
        # The backend cut subscribers that did not answer its pings in time, while the
        # rig's loops ran late: the closes (and what they lost) are the rig's, not the system's.
        blocking.append(
            f"subscribers closed {KEEPALIVE_CLOSE} (keepalive timeout) while the rig lagged: " + "; ".join(judged)
        )
        judged = []
    broken = [c for c in checks if not c.passed]
    stall = result.rig.worst_stall_ms
    beyond = [c for c in broken if c.unit == "ms" and beyond_rig(c.value, c.op, c.threshold, stall)]
    # A breach beyond the rig's reach, or a rig vouched for by a control run, is judged as if the rig were healthy.
    status = scenario_status(judged, [c.breach() for c in broken], blocking, [] if beyond or vouched else lagging)
    invalid = list(dict.fromkeys(blocking + lagging)) if status == "invalid" else []
    if status == "invalid":
        for c in broken:
            record.retract_finding(c.breach())
        findings = [{"severity": "warning", "message": f"{INVALID_PREFIX}: {r}"} for r in invalid]
        for f in findings:
            record.finding("warning", f"{name}: {f['message']}")
    else:
        findings = scenario_findings(record, name, judged, checks)
        if vouched:
            why = f"the rig measured {rig_vouched_by} cleanly under the same plan"
        elif beyond:
            why = f"the breach is larger than the rig's worst stall, {stall:.1f} ms"
        else:
            why = "thresholds met: a late rig only adds latency"
        findings += [{"severity": "info", "message": f"rig health: {r} ({why})"} for r in lagging]
    fields = result.serialize()
    fields.update(extra, status=status, problems=correctness, invalid_reasons=invalid, findings=findings)
    if result.per_second:
        record.add_series(results, f"{name}_latency", "latency", LATENCY_COLUMNS, result.per_second, unit="ms")
    if result.resources:
        record.add_series(results, f"{name}_resources", "resources", RESOURCE_COLUMNS, result.resources)
    return record.scenario(name, status == "passed", **fields)
