"""A load run's verdict (``wsrig.judges.load.timed``): defective runs fail, a rig that could
not measure is invalid, a healthy one's breach fails; the benchmark table reads the rows."""

from __future__ import annotations

from _load_runs import RIG, part, run

from wsrig.judges.load import LoadRun, data_findings, invalid_reasons, ratio, ratio_check, reference_problems, timed
from wsrig.load.benchtable import bench_markdown
from wsrig.record import Check

STALLED = (180.0,) * 99 + (540.0,)  # a subscriber process's loop lag: P99 180 ms, a 540 ms stall


def _run(*parts: dict, **kw) -> LoadRun:
    return LoadRun(run(*(parts or (part(),)), **kw))


def _messages(run_: LoadRun) -> list[str]:
    return [f.message for f in data_findings(run_)]


def test_clean_run_has_no_problems():
    """A clean run: no data problem and nothing invalid."""
    assert data_findings(_run()) == [] and invalid_reasons(_run(), RIG) == []


def test_lost_deliveries_are_a_problem():
    """Deliveries that never arrived are counted and named."""
    assert _messages(_run(part(received=990))) == ["10 of 1000 deliveries never arrived"]


def test_out_of_order_duplicates_and_closed_subscribers_are_problems():
    """Disorder, duplicates and backend closes are the system's problems."""
    problems = _messages(_run(part(reordered=3, duplicated=2, closed=(1013, 1013))))
    assert "3 deliveries out of seq order" in problems and "2 deliveries duplicated" in problems
    assert "subscribers closed by the backend with codes [1013]" in problems


def test_a_broken_threshold_with_a_healthy_rig_fails():
    """Healthy rig, slow system: failed; the broken check's own finding is the row's (judge_probe)."""
    verdict = timed(_run(), RIG, [Check("sustained P99", 250.0, 100, "<", "ms")])
    assert verdict.status == "failed" and verdict.findings == [] and verdict.invalid == []


def test_a_clean_run_passes():
    verdict = timed(_run(), RIG, [Check("sustained P99", 3.0, 100, "<", "ms")])
    assert verdict.status == "passed" and verdict.findings == []
    figures = verdict.figures(_run())
    assert figures["latency_ms"]["count"] == 100 and figures["rig_health"]["loop_lag_p99_ms"] == 1.0
    assert "status" not in figures  # the findings decide a row that is not invalid


def test_stalled_rig_with_a_slow_figure_is_invalid_not_failed():
    """Stalled rig: its latency breach is not the system's; invalid, naming the measurement."""
    verdict = timed(_run(part(lag_ms=STALLED)), RIG, [Check("fan-out P99", 168.0, 100, "<", "ms")])
    assert verdict.status == "invalid" and verdict.figures(_run())["status"] == "invalid"
    assert [r.split(" ms in ")[1] for r in verdict.invalid] == ["subscriber process 0 > 10 ms", "subscriber process 0 > 50 ms"]  # fmt: skip
    assert all(f.severity == "warning" and f.check == "rig_health" for f in verdict.findings)


def test_stalled_rig_does_not_excuse_lost_messages():
    """Loss is the system's even when the rig was stalled: failed beats invalid."""
    assert timed(_run(part(lag_ms=STALLED, received=700)), RIG).status == "failed"


def test_saturation_step_loss_is_measured_not_failed():
    """A measurement run's loss is what it measured (judge_data=False), not a failed row."""
    verdict = timed(_run(part(received=700)), RIG, judge_data=False)
    assert verdict.status == "passed" and verdict.findings == []


def test_bench_table_lists_scenarios_and_checks():
    row = {"name": "fanout", "passed": True, **_run().figures()}
    summary = {
        "suite_run_id": "r1",
        "profile": "full",
        "verdict": "pass",
        "stages": [
            {
                "name": "load",
                "status": "passed",
                "duration_s": 61.0,
                "scenarios": [row],
                "metrics": {"checks": [Check("fan-out P99", 3.0, 100, "<", "ms").serialize()]},
            },
            {"name": "security", "status": "passed", "scenarios": []},
        ],
    }
    text = bench_markdown(summary)
    assert "### load (passed, 61 s)" in text and "| fanout | 100 | 5 |" in text
    assert "| fan-out P99 | 3.00 ms | < 100 ms | pass |" in text
    assert "security" not in text


def test_repeated_errors_are_counted_once():
    """The same rig error from many places is one line with its count."""
    broken = _run(part(0, error="boom"), part(1, error="boom"))
    assert invalid_reasons(broken, RIG)[:2] == ["subscriber process 0: boom", "subscriber process 1: boom"]
    refused = _run(part(received=1000) | {"connect_failures": ["connect: HTTP 503"] * 3})
    assert _messages(refused) == ["subscriber connect: connect: HTTP 503 (x3)"]


def test_rig_failures_make_a_run_invalid_but_refused_subscribers_do_not():
    """Saturation keeps a step with refused subscribers (the system's answer) but drops a broken rig."""
    refused = _run(part(received=500) | {"connect_failures": ["handshake refused: HTTP 503"]})
    assert invalid_reasons(refused, RIG) == []
    assert _messages(refused) == [
        "subscriber connect: handshake refused: HTTP 503",
        "500 of 1000 deliveries never arrived",
    ]
    dead = _run(part(0), part(1, error="MemoryError"))
    assert invalid_reasons(dead, RIG) == ["subscriber process 1: MemoryError"]
    assert timed(dead, RIG, judge_data=False).status == "invalid"


def test_ratio_to_reference_and_its_missing_cases():
    """SUT/ref ratios: rounded, None when the reference measured nothing."""
    assert ratio(12.0, 4.0) == 3.0 and ratio(1.0, 0.0) is None and ratio(None, 2.0) is None


def test_a_reference_run_the_rig_could_not_measure_is_no_yardstick():
    """The reference's own stall or loss: the ratio to it is not judged, and its row is invalid."""
    ref = _run(part(lag_ms=STALLED, received=950))
    reasons = reference_problems(ref, RIG)
    assert any(r.startswith("reference run: rig event-loop lag") for r in reasons)
    assert "reference run: 50 of 1000 deliveries never arrived" in reasons
    assert timed(ref, RIG, judge_data=False, also_invalid=ref.rig.lagging(RIG)).status == "invalid"


def test_met_thresholds_stand_with_a_late_rig_and_say_so():
    """A late rig with thresholds met: passed, with the rig's lag as an info finding."""
    verdict = timed(_run(part(lag_ms=STALLED)), RIG, [Check("fan-out P99", 40.0, 100, "<")])
    assert verdict.status == "passed" and verdict.invalid == []
    assert any(f.severity == "info" and "rig event-loop lag" in f.message for f in verdict.findings)


def test_a_slipping_generator_voids_even_a_met_threshold():
    """The planned load was not applied: invalid whatever the figures say."""
    verdict = timed(_run(gen_lag_ms=45.0), RIG, [Check("P99", 4.0, 100, "<")])
    assert verdict.status == "invalid" and "generator schedule slip" in verdict.invalid[0]
    skipped = timed(_run(skipped=10), RIG)
    assert skipped.status == "invalid" and skipped.invalid == ["generator skipped 10 planned sends"]


def test_slow_backend_with_a_bursty_rig_is_failed_not_invalid():
    """Backend capped: P99 1,026 ms, rig 65 ms late from the bursts: the breach is beyond the rig, failed."""
    bursty = _run(part(lag_ms=(41.9,) * 99 + (64.7,)), gen_lag_ms=4.6)
    assert timed(bursty, RIG, [Check("fan-out P99", 1026.0, 100, "<", "ms")]).status == "failed"


def test_keepalive_closes_of_a_starved_rig_are_invalid():
    """Subscribers cut with 1011 (no pong in time) while the rig stalled 2.2 s: invalid, not the system's loss."""
    starved = _run(part(lag_ms=(14.7,) * 99 + (2205.7,), received=700, closed=(1011, 1011)), gen_lag_ms=11.9)
    verdict = timed(starved, RIG, [Check("P99", 3057.0, 100, "<", "ms")])
    assert verdict.status == "invalid" and any("keepalive" in r for r in verdict.invalid)
    assert timed(_run(part(received=700, closed=(1011,))), RIG).status == "failed"


def test_a_clean_control_run_vouches_for_a_lagging_rig():
    """The reference met the bound under the same plan and rig: the system's breach is failed, not invalid."""
    verdict = timed(
        _run(part(lag_ms=STALLED)), RIG, [Check("fan-out P99", 150.0, 100, "<", "ms")], rig_vouched_by="the reference"
    )
    assert verdict.status == "failed"
    assert any("the rig measured the reference cleanly" in f.message for f in verdict.findings)


def test_ratio_check_judges_or_records_with_the_reason():
    """A clean reference: a check against the goal; otherwise recorded without a threshold, with a warning."""
    judged, warnings = ratio_check("P99 / ref", 3.0, 2, "<=", [])
    assert not judged.passed and warnings == []
    missing, _ = ratio_check("sat / ref", None, 0.5, ">=", [])
    assert missing.value == 0.0 and not missing.passed
    recorded, warnings = ratio_check("P99 / ref", 3.0, 2, "<=", ["reference run: lag"])
    assert recorded.name == "P99 / ref (not judged)" and recorded.threshold is None and recorded.passed
    assert [w.message for w in warnings] == ["ratio to reference not judged: reference run: lag"]
