"""Performance stage: ingest and durable rates, step-load saturation, bot latency per hop.

Throughput runs are closed loop on purpose (at most ``ingest_window`` unacked: the highest
rate the backend acknowledges); latency runs are open loop at a constant rate, measured
from intended send time. Thresholds: [*.performance] in config/thresholds.toml.
"""

from __future__ import annotations

import pytest

from wsrig.load.bot_latency import measure_bot_latency
from wsrig.load.report import ratio_check, record_run, reference_config
from wsrig.load.runner import LoadPlan, run_load
from wsrig.load.saturation import SaturationResult, Step, judge, search
from wsrig.load.schedule import Schedule
from wsrig.probe import conclude, progress
from wsrig.righealth import INVALID_PREFIX, scenario_status
from wsrig.stack import DockerStack

pytestmark = pytest.mark.performance


@pytest.fixture(scope="module")
def stack(cfg):
    return DockerStack(cfg)


def _closed_loop(name: str, msg_type: str, count: int, window: int) -> LoadPlan:
    # One phase whose count is the number of messages; the window paces the sends.
    return LoadPlan(name, Schedule.constant(count, 1), subscribers=0, msg_type=msg_type, window=window)


@pytest.mark.parametrize(
    "name,msg_type,count_key,floor_key",
    [
        ("ingest", "market_data", "ingest_messages", "ingest_min_per_s"),
        ("durable", "trade", "durable_messages", "durable_min_per_s"),
    ],
)
def test_acknowledged_rate(cfg, stack, record, limits, rig_limits, results_dir, name, msg_type, count_key, floor_key):
    """The highest rate one publisher gets acknowledged: validated (ingest) and stored (durable)."""
    count, window = limits[count_key], limits["ingest_window"]
    progress(f"{name}: {count} {msg_type} envelopes, at most {window} unacked")
    result = run_load(cfg, _closed_loop(name, msg_type, count, window), stack, progress)
    problems = []
    if result.publisher.get("acked_seq", 0) < result.publisher.get("sent", -1):
        problems.append(f"only {result.publisher.get('acked_seq')} of {result.publisher.get('sent')} acknowledged")
    if result.publisher.get("errors"):
        problems.append(f"{result.publisher['errors']} error frames, first: {result.publisher['first_error']}")
    rate = record.measure(f"{name} acked msg/s", result.acked_per_s, limits[floor_key], ">=", "/s")
    conclude(record_run(record, results_dir, name, result, rig_limits, [rate], problems=problems))


def _saturation(cfg, stack, record, limits, rig_limits, results_dir, prefix: str) -> SaturationResult:
    """Step the rate up to a fixed set of subscribers against ``cfg``'s server until P99 breaks."""
    subs, secs, p99_limit = limits["saturation_subscribers"], limits["saturation_step_s"], limits["saturation_p99_ms"]

    def measure(rate: float) -> Step:
        progress(f"{prefix}: {rate:g} msg/s x {subs} subscribers for {secs} s")
        plan = LoadPlan(
            f"step_{rate:g}",
            Schedule.constant(rate, secs),
            subscribers=subs,
            processes=limits["subscriber_processes"],
            settle_s=limits["settle_s"],
        )
        result = run_load(cfg, plan, stack, progress)
        p99, lost = result.corrected.summary().p99, result.lost + len(result.closed)
        # Blocking (the load was not applied) voids any step; a late rig voids a step
        # that broke (the break may be the rig's), not one that held (righealth).
        invalid = result.rig.blocking(rig_limits)
        if p99 >= p99_limit or lost:
            invalid += result.rig.lagging(rig_limits)
        step = Step(
            rate=rate,
            deliveries_per_s=result.deliveries_per_s,
            p99_ms=p99,
            lost=lost,
            valid=not invalid,
            note="; ".join(invalid),
        )
        # A step past the saturation point is the measurement, not a failure: its problem
        # is recorded beside it; a rig that could not keep up makes the row invalid.
        record_run(
            record,
            results_dir,
            f"{prefix}_{rate:g}",
            result,
            rig_limits,
            judge_data=False,
            also_invalid=invalid,
            step_problem=step.problem(p99_limit) or None,
        )
        return step

    found = search(limits["saturation_rates"], measure, p99_limit)
    progress(f"{prefix}: best {found.best_deliveries_per_s:g} deliveries/s; {found.reason}")
    return found


def _serialize(found: SaturationResult) -> dict:
    return {
        "best_rate": found.best.rate if found.best else None,
        "best_deliveries_per_s": found.best_deliveries_per_s,
        "broke_at_rate": found.broke_at.rate if found.broke_at else None,
        "reason": found.reason,
        "steps": [s.__dict__ for s in found.steps],
    }


def test_saturation_point(cfg, stack, record, limits, rig_limits, results_dir):
    """Step the rate up until P99 breaks; the same steps against the reference server give the ratio.

    ``saturation.judge`` decides from what the steps prove: a search that ended on the rig
    (its breaking step void) gives a lower bound. A floor that only a void step kept out
    of reach is invalid, not failed; a ratio the bounds cannot decide is recorded and
    not judged (as fan-out's, when its reference run was not clean).
    """
    found = _saturation(cfg, stack, record, limits, rig_limits, results_dir, "saturation")
    ref = _saturation(reference_config(cfg), stack, record, limits, rig_limits, results_dir, "reference_saturation")
    verdict = judge(found, ref, limits["saturation_min_deliveries_per_s"], limits["saturation_ratio_min"])
    best = record.measure(
        "saturation: best deliveries/s with P99 under threshold",
        found.best_deliveries_per_s,
        limits["saturation_min_deliveries_per_s"],
        ">=",
        "/s",
    )
    versus = ratio_check(
        record,
        "saturation / reference saturation",
        verdict.ratio_value,
        limits["saturation_ratio_min"],
        ">=",
        list(verdict.reasons) if verdict.ratio == "undecided" else [],
        "saturation",
    )
    # Judged only when the bounds decide it (``judge``), and then the measured value decides
    # it the same way: a failed upper bound is under the minimum, a passed lower bound over.
    record.metrics["saturation"] = _serialize(found)
    record.metrics["reference_saturation"] = _serialize(ref)
    record.metrics["saturation_ratio_to_reference"] = verdict.ratio_value
    failed = [c for c in (best, versus) if c is not None and not c.passed]
    invalid = [f"saturation: {found.reason}"] if verdict.floor == "undecided" else []
    status = scenario_status([], [c.breach() for c in failed], [], invalid)
    if status == "invalid":
        for c in failed:
            record.retract_finding(c.breach())
        for reason in invalid:
            record.finding("warning", f"{INVALID_PREFIX}: {reason}")
    row = record.scenario(
        "saturation",
        status == "passed",
        status=status,
        invalid_reasons=invalid if status == "invalid" else [],
        best_deliveries_per_s=found.best_deliveries_per_s,
        lower_bound=found.ended_on_rig or found.broke_at is None,
        reference={"saturation_per_s": ref.best_deliveries_per_s, "reason": ref.reason},
        ratio_to_reference={
            "saturation": verdict.ratio_value,
            "judged": verdict.ratio != "undecided",
            "verdict": verdict.ratio,
            "not_judged_because": list(verdict.reasons) if verdict.ratio == "undecided" else [],
        },
        findings=[{"severity": "error", "message": c.breach()} for c in failed] if status == "failed" else [],
    )
    conclude(row)


def test_bot_latency_per_hop(cfg, record, limits, bot_run_id):
    """The bot's own stream: production -> backend -> client, P99 end to end under the threshold."""
    progress(f"bot latency: following run {bot_run_id} for {limits['bot_latency_s']} s")
    measured = measure_bot_latency(cfg, bot_run_id, limits["bot_latency_s"])
    fields = measured.serialize()
    e2e = record.measure("bot end-to-end P99", fields["latency_ms"]["p99"], limits["bot_p99_ms"], "<", "ms")
    ok = measured.envelopes > 0 and measured.critical_with_receive_time > 0 and measured.hops.negative_hops == 0
    record.scenario("bot_latency", ok and e2e.passed, **fields)
    assert measured.envelopes > 0, "no envelope of the bot's run arrived"
    assert measured.critical_with_receive_time > 0, "no critical envelope had a backend receive time"
    assert measured.hops.negative_hops == 0, f"{measured.hops.negative_hops} hops had negative duration"
    assert e2e.passed, f"bot end-to-end P99 {e2e.value} ms >= {e2e.threshold} ms"
