"""The load stages' verdict logic: defective runs fail, a rig that could not measure is invalid."""

from __future__ import annotations

from wsrig.load.benchtable import bench_markdown
from wsrig.load.report import data_problems, invalid_reasons, record_run
from wsrig.load.runner import LoadPlan, LoadResult
from wsrig.load.schedule import GeneratorHealth, Schedule
from wsrig.record import Check, StageRecord
from wsrig.righealth import ProcessHealth, RigHealth, RigLimits

LIMITS = RigLimits(loop_lag_p99_ms=10, loop_lag_max_ms=50, generator_lag_p99_ms=20, us_per_delivery=10)
HEALTHY = RigHealth((ProcessHealth("subscriber process 0", 1.0, 3.0, 0.001),), generator_lag_p99_ms=1.0)
STALLED = RigHealth((ProcessHealth("subscriber process 0", 180.0, 540.0, 0.001),), generator_lag_p99_ms=1.0)


def _result(**kw) -> LoadResult:
    r = LoadResult(LoadPlan("x", Schedule.constant(100, 2), subscribers=2))
    r.health = kw.pop("health", GeneratorHealth(planned=200, sent=200, lag_p99_ms=1.0, lag_max_ms=2.0))
    r.rig = kw.pop("rig", HEALTHY)
    r.connected, r.expected, r.delivered = 2, 400, kw.pop("delivered", 400)
    for key, value in kw.items():
        setattr(r, key, value)
    for ms in (1.0, 2.0, 3.0):
        r.corrected.record_ms(ms)
    return r


def test_clean_run_has_no_problems():
    """A clean run: no data problem and nothing invalid."""
    assert data_problems(_result()) == [] and invalid_reasons(_result(), LIMITS) == []


def test_lost_deliveries_are_a_problem():
    """Deliveries that never arrived are counted and named."""
    assert data_problems(_result(delivered=390)) == ["10 of 400 deliveries never arrived"]


def test_out_of_order_and_closed_subscribers_are_problems():
    """Disorder and backend closes are the system's problems."""
    problems = data_problems(_result(out_of_order=3, closed=[1013, 1013]))
    assert "3 deliveries out of seq order" in problems
    assert "subscribers closed by the backend with codes [1013]" in problems


def test_record_run_fails_the_row_on_a_broken_threshold_and_names_it(tmp_path):
    """Healthy rig, slow system: the row fails with the threshold it broke."""
    record = StageRecord("load")
    slow = record.measure("sustained P99", 250.0, 100, "<", "ms")
    row = record_run(record, tmp_path, "sustained", _result(), LIMITS, [slow])
    assert row["passed"] is False and row["status"] == "failed"
    assert row["findings"] == [{"severity": "error", "message": "sustained P99 = 250.0ms breaks the threshold < 100ms"}]
    assert {"severity": "error", "message": "sustained: sustained P99 = 250.0ms breaks the threshold < 100ms"} in (
        record.findings
    )
    assert (tmp_path / "load.sustained_latency.csv").is_file() is False  # no per-second data in this result


def test_record_run_passes_a_clean_row(tmp_path):
    """Healthy rig, fast system: passed, no finding."""
    record = StageRecord("load")
    row = record_run(record, tmp_path, "sustained", _result(), LIMITS, [Check("sustained P99", 3.0, 100, "<", "ms")])
    assert row["passed"] is True and row["status"] == "passed" and row["findings"] == [] and record.findings == []
    assert row["latency_ms"]["count"] == 3
    assert row["rig_health"]["loop_lag_p99_ms"] == 1.0


def test_stalled_rig_with_a_slow_figure_is_invalid_not_failed(tmp_path):
    """Stalled rig: its latency breach is withdrawn and the row is invalid, naming the measurement."""
    record = StageRecord("load")
    slow = record.measure("fan-out P99", 168.0, 100, "<", "ms")
    row = record_run(record, tmp_path, "fanout", _result(rig=STALLED), LIMITS, [slow])
    assert row["status"] == "invalid" and row["passed"] is False
    assert row["invalid_reasons"] == ["rig event-loop lag P99 180.0 ms in subscriber process 0 > 10 ms",
                                      "rig event-loop lag max 540.0 ms in subscriber process 0 > 50 ms"]  # fmt: skip
    assert not [f for f in record.findings if f["severity"] == "error"]


def test_stalled_rig_does_not_excuse_lost_messages(tmp_path):
    """Loss is the system's even when the rig was stalled: failed beats invalid."""
    record = StageRecord("load")
    row = record_run(record, tmp_path, "fanout", _result(rig=STALLED, delivered=300), LIMITS, [])
    assert row["status"] == "failed"


def test_saturation_step_loss_is_measured_not_failed(tmp_path):
    """A saturation step's loss is where it broke (judge_data=False), not a failed row."""
    row = record_run(StageRecord("performance"), tmp_path, "step", _result(delivered=300), LIMITS, judge_data=False)
    assert row["status"] == "passed" and row["problems"] == ["100 of 400 deliveries never arrived"]


def test_bench_table_lists_scenarios_and_checks():
    row = {"name": "fanout", "passed": True, **_result().serialize()}
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
    assert "### load (passed, 61 s)" in text and "| fanout | 100 | 2 |" in text
    assert "| fan-out P99 | 3.00 ms | < 100 ms | pass |" in text
    assert "security" not in text


def test_repeated_errors_are_counted_once():
    """The same rig error from many places is one line with its count."""
    rig = RigHealth(errors=("publisher: boom", "publisher: boom"))
    assert invalid_reasons(_result(rig=rig), LIMITS) == ["publisher: boom (x2)"]
    assert data_problems(_result(connect_failures=["connect: HTTP 503"] * 3)) == ["connect: HTTP 503 (x3)"]


def test_rig_failures_make_a_run_invalid_but_refused_subscribers_do_not():
    """Saturation keeps a step with refused subscribers (the system's answer) but drops a broken rig."""
    refused = _result(connect_failures=["subscriber connect: handshake refused: HTTP 503"], delivered=200)
    assert invalid_reasons(refused, LIMITS) == []
    assert data_problems(refused) == [
        "subscriber connect: handshake refused: HTTP 503",
        "200 of 400 deliveries never arrived",
    ]
    dead = _result(rig=RigHealth(errors=("subscriber process 1: MemoryError",)))
    assert invalid_reasons(dead, LIMITS) == ["subscriber process 1: MemoryError"]
    assert data_problems(dead) == []


def test_ratio_to_reference_and_its_missing_cases():
    """SUT/ref ratios: rounded, None when the reference measured nothing."""
    from wsrig.load.report import ratio

    assert ratio(12.0, 4.0) == 3.0 and ratio(1.0, 0.0) is None and ratio(None, 2.0) is None


def test_a_reference_run_the_rig_could_not_measure_invalidates_the_ratio(tmp_path):
    """The reference's own stall or loss makes the system's row invalid, not failed."""
    from wsrig.load.report import reference_problems

    ref = _result(rig=STALLED, delivered=350)
    reasons = reference_problems(ref, LIMITS)
    assert any("reference run: rig event-loop lag" in r for r in reasons)
    assert "reference run: 50 of 400 deliveries never arrived" in reasons
    record = StageRecord("load")
    ratio_check = record.measure("fan-out P99 / reference P99", 9.0, 2, "<=", "x")
    row = record_run(record, tmp_path, "fanout", _result(), LIMITS, [ratio_check], also_invalid=reasons)
    assert row["status"] == "invalid"


def test_met_thresholds_stand_with_a_late_rig_and_say_so(tmp_path):
    """A late rig with thresholds met: passed, with the rig's lag as an info finding."""
    record = StageRecord("load")
    row = record_run(record, tmp_path, "fanout", _result(rig=STALLED), LIMITS, [Check("fan-out P99", 40.0, 100, "<")])
    assert row["status"] == "passed" and row["invalid_reasons"] == []
    assert any(f["severity"] == "info" and "rig event-loop lag" in f["message"] for f in row["findings"])


def test_a_slipping_generator_voids_even_a_met_threshold(tmp_path):
    """The planned load was not applied: invalid whatever the figures say."""
    rig = RigHealth((ProcessHealth("subscriber process 0", 1.0, 3.0, 0.001),), generator_lag_p99_ms=45.0)
    row = record_run(StageRecord("load"), tmp_path, "fanout", _result(rig=rig), LIMITS, [Check("P99", 4.0, 100, "<")])
    assert row["status"] == "invalid" and "generator schedule slip" in row["invalid_reasons"][0]


def test_slow_backend_with_a_bursty_rig_is_failed_not_invalid(tmp_path):
    """Backend capped: P99 1,026 ms, rig 65 ms late from the bursts: the breach is beyond the rig, failed."""
    rig = RigHealth((ProcessHealth("subscriber process 0", 41.9, 64.7, 0.001),), generator_lag_p99_ms=4.6)
    record = StageRecord("load")
    slow = record.measure("fan-out P99", 1026.0, 100, "<", "ms")
    row = record_run(record, tmp_path, "fanout", _result(rig=rig), LIMITS, [slow])
    assert row["status"] == "failed"


def test_keepalive_closes_of_a_starved_rig_are_invalid(tmp_path):
    """Subscribers cut with 1011 (no pong in time) while the rig stalled 2.2 s: invalid, not the system's loss."""
    rig = RigHealth((ProcessHealth("subscriber process 0", 14.7, 2205.7, 0.001),), generator_lag_p99_ms=11.9)
    starved = _result(rig=rig, delivered=300, closed=[1011, 1011])
    row = record_run(StageRecord("load"), tmp_path, "fanout", starved, LIMITS, [Check("P99", 3057.0, 100, "<", "ms")])
    assert row["status"] == "invalid"
    assert any("keepalive" in r for r in row["invalid_reasons"])
    healthy_closed = _result(delivered=300, closed=[1011])
    assert record_run(StageRecord("load"), tmp_path, "f", healthy_closed, LIMITS, [])["status"] == "failed"


def test_a_clean_control_run_vouches_for_a_lagging_rig(tmp_path):
    """The reference met the bound under the same plan and rig: the system's breach is failed, not invalid."""
    record = StageRecord("load")
    slow = record.measure("fan-out P99", 150.0, 100, "<", "ms")
    row = record_run(
        record, tmp_path, "fanout", _result(rig=STALLED), LIMITS, [slow], rig_vouched_by="the reference server"
    )
    assert row["status"] == "failed"


def test_ratio_check_judges_or_records_with_the_reason():
    """A clean reference: a check against the goal; otherwise recorded, not judged, with a warning."""
    from wsrig.load.report import ratio_check

    record = StageRecord("load")
    judged = ratio_check(record, "P99 / ref", 3.0, 2, "<=", [], "fanout")
    assert judged is not None and not judged.passed
    missing = ratio_check(StageRecord("p"), "sat / ref", None, 0.5, ">=", [], "saturation")
    assert missing is not None and missing.value == 0.0 and not missing.passed
    record = StageRecord("load")
    assert ratio_check(record, "P99 / ref", 3.0, 2, "<=", ["reference run: lag"], "fanout") is None
    assert record.findings == [
        {"severity": "warning", "message": "fanout: ratio to reference not judged: reference run: lag"}
    ]
    assert record.checks[0].name == "P99 / ref (not judged)" and record.checks[0].threshold is None
