"""The performance stage's judges: acknowledged rates, the saturation search, the bot's hops.

Pure: each scenario's raw runs (``wsrig.judges.load.LoadRun``) and the thresholds in,
checks and findings out. The saturation search is judged from the steps it recorded:
``wsrig.load.saturation`` decides where it broke and what the steps prove.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wsrig.checkers import Finding
from wsrig.hdr import LatencyHistogram
from wsrig.judges.base import Check, Rule, Verdict
from wsrig.judges.load import LoadRun, ratio_check, rig_limits, run_row, timed
from wsrig.load.saturation import SaturationResult, Step, judge, search
from wsrig.righealth import INVALID_PREFIX, RigLimits, scenario_status

__all__ = ["RULES", "step_breaks"]


def _acked(floor_key: str) -> Rule:
    def rule(m: Mapping[str, Any], limits: Mapping[str, Any]) -> Verdict:
        """The highest rate one publisher gets acknowledged (closed loop): every envelope
        acknowledged, no error frame, the rate over its floor."""
        name = next(iter(m["runs"]))
        run = LoadRun(m["runs"][name])
        pub = run.publisher
        problems = []
        if pub.get("acked_seq", 0) < pub.get("sent", -1):
            problems.append(
                Finding(
                    "error",
                    f"only {pub.get('acked_seq')} of {pub.get('sent')} acknowledged",
                    check="acknowledged",
                    evidence={"acked_seq": pub.get("acked_seq"), "sent": pub.get("sent")},
                )
            )
        if pub.get("errors"):
            problems.append(
                Finding(
                    "error",
                    f"{pub['errors']} error frames, first: {pub['first_error']}",
                    check="error_frames",
                    evidence={"errors": pub["errors"], "first": pub["first_error"]},
                )
            )
        rate = Check(f"{name} acked msg/s", run.acked_per_s, limits[floor_key], ">=", "/s")
        verdict = timed(run, rig_limits(limits), [rate], problems=problems)
        return [rate], verdict.findings, verdict.figures(run)

    return rule


# ---- saturation -----------------------------------------------------------------------------


def _step(run: LoadRun, rig: RigLimits, p99_limit: float) -> tuple[Step, list[str]]:
    """One step of the search, and why it is void. Blocking (the load was not applied)
    voids any step; a late rig voids a step that broke (the break may be the rig's), not
    one that held (righealth)."""
    p99, lost = run.latency.p99, run.lost + len(run.closed)
    invalid = run.rig.blocking(rig)
    if p99 >= p99_limit or lost:
        invalid += run.rig.lagging(rig)
    step = Step(
        run.schedule.phases[0].rate, run.deliveries_per_s, p99, lost, valid=not invalid, note="; ".join(invalid)
    )
    return step, invalid


def step_breaks(raw: Mapping[str, Any], limits: Mapping[str, Any], rig: RigLimits) -> bool:
    """Does this recorded step end the search? The probe stops stepping up there; the judge
    decides again from the steps in the history."""
    step, _ = _step(LoadRun(raw), rig, limits["saturation_p99_ms"])
    return bool(step.problem(limits["saturation_p99_ms"]))


def _search(
    runs: Mapping[str, Any], prefix: str, rig: RigLimits, p99_limit: float
) -> tuple[SaturationResult, list[dict[str, Any]]]:
    """The search as the recorded steps ``<prefix>_<rate>`` ran it, and each step's row.

    A step past the saturation point is the measurement, not a failure: its problem is in
    its row (``step_problem``); a rig that could not keep up makes the step's row invalid.
    """
    steps: dict[float, Step] = {}
    rows = []
    for name, raw in runs.items():
        if not name.startswith(f"{prefix}_"):
            continue
        run = LoadRun(raw)
        step, invalid = _step(run, rig, p99_limit)
        steps[step.rate] = step
        verdict = timed(run, rig, judge_data=False, also_invalid=invalid)
        rows.append(run_row(name, run, verdict, role="step", step_problem=step.problem(p99_limit) or None))
    return search(steps, steps.__getitem__, p99_limit), rows


def _serialize(found: SaturationResult) -> dict[str, Any]:
    return {
        "best_rate": found.best.rate if found.best else None,
        "best_deliveries_per_s": found.best_deliveries_per_s,
        "broke_at_rate": found.broke_at.rate if found.broke_at else None,
        "reason": found.reason,
        "steps": [s.__dict__ for s in found.steps],
    }


def _saturation(m: Mapping[str, Any], limits: Mapping[str, Any]) -> Verdict:
    """Step the rate up until P99 breaks; the same steps against the reference server give the ratio.

    ``saturation.judge`` decides from what the steps prove: a search that ended on the rig
    (its breaking step void) gives a lower bound. A floor that only a void step kept out
    of reach is invalid, not failed; a ratio the bounds cannot decide is recorded and not
    judged (as fan-out's, when its reference run was not clean). When the bounds decide
    the ratio, the measured value decides it the same way: a failed upper bound is under
    the minimum, a passed lower bound over it.
    """
    rig, p99_limit = rig_limits(limits), limits["saturation_p99_ms"]
    found, rows = _search(m["runs"], "saturation", rig, p99_limit)
    ref, ref_rows = _search(m["runs"], "reference_saturation", rig, p99_limit)
    verdict = judge(found, ref, limits["saturation_min_deliveries_per_s"], limits["saturation_ratio_min"])
    best = Check(
        "saturation: best deliveries/s with P99 under threshold",
        found.best_deliveries_per_s,
        limits["saturation_min_deliveries_per_s"],
        ">=",
        "/s",
    )
    undecided = list(verdict.reasons) if verdict.ratio == "undecided" else []
    versus, findings = ratio_check(
        "saturation / reference saturation", verdict.ratio_value, limits["saturation_ratio_min"], ">=", undecided
    )
    invalid = [f"saturation: {found.reason}"] if verdict.floor == "undecided" else []
    status = scenario_status([], [c.breach() for c in (best, versus) if not c.passed], [], invalid)
    if status == "invalid":
        findings += [Finding("warning", f"{INVALID_PREFIX}: {r}", check="rig_health") for r in invalid]
    figures: dict[str, Any] = {
        "invalid_reasons": invalid if status == "invalid" else [],
        "best_deliveries_per_s": found.best_deliveries_per_s,
        "lower_bound": found.ended_on_rig or found.broke_at is None,
        "reference": {"saturation_per_s": ref.best_deliveries_per_s, "reason": ref.reason},
        "ratio_to_reference": {
            "saturation": verdict.ratio_value,
            "judged": verdict.ratio != "undecided",
            "verdict": verdict.ratio,
            "not_judged_because": undecided,
        },
        "saturation": _serialize(found),
        "reference_saturation": _serialize(ref),
        "saturation_ratio_to_reference": verdict.ratio_value,
        "runs": rows + ref_rows,
    }
    if status == "invalid":
        figures["status"] = "invalid"
    return [best, versus], findings, figures


# ---- the bot's own stream -------------------------------------------------------------------


def _bot_latency(m: Mapping[str, Any], limits: Mapping[str, Any]) -> Verdict:
    """The bot's own stream: envelopes arrived, the critical ones have the backend's receive
    time, no hop ran backwards, and production -> client P99 is under ``bot_p99_ms``."""
    hists = {
        key: LatencyHistogram.decode(m[key]).summary() for key in ("end_to_end", "bot_to_backend", "backend_to_client")
    }
    findings = []
    if not m["envelopes"]:
        findings.append(Finding("error", "no envelope of the bot's run arrived", check="bot_envelopes"))
    if not m["critical_with_receive_time"]:
        findings.append(Finding("error", "no critical envelope had a backend receive time", check="bot_receive_times"))
    if m["negative_hops"]:
        findings.append(
            Finding(
                "error",
                f"{m['negative_hops']} hops had negative duration",
                check="negative_hops",
                evidence={"count": m["negative_hops"]},
            )
        )
    e2e = Check("bot end-to-end P99", hists["end_to_end"].p99, limits["bot_p99_ms"], "<", "ms")
    figures = {
        "latency_ms": hists["end_to_end"].serialize(),
        "bot_to_backend_ms": hists["bot_to_backend"].serialize(),
        "backend_to_client_ms": hists["backend_to_client"].serialize(),
        "envelopes": m["envelopes"],
        "critical_with_receive_time": m["critical_with_receive_time"],
        "negative_hops": m["negative_hops"],
    }
    return [e2e], findings, figures


#: scenario name -> its rule
RULES: dict[str, Rule] = {
    "ingest": _acked("ingest_min_per_s"),
    "durable": _acked("durable_min_per_s"),
    "saturation": _saturation,
    "bot_latency": _bot_latency,
}
