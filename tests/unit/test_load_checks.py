"""The load stages' verdict logic fails on defective runs (loss, disorder, late generator, slow)."""

from __future__ import annotations

from wsrig.load.benchtable import bench_markdown
from wsrig.load.report import data_problems, invalid_reasons, record_run, run_problems
from wsrig.load.runner import LoadPlan, LoadResult
from wsrig.load.schedule import GeneratorHealth, Schedule
from wsrig.record import Check, StageRecord


def _result(**kw) -> LoadResult:
    r = LoadResult(LoadPlan("x", Schedule.constant(100, 2), subscribers=2))
    r.health = kw.pop("health", GeneratorHealth(planned=200, sent=200, lag_p99_ms=1.0, lag_max_ms=2.0))
    r.connected, r.expected, r.delivered = 2, 400, kw.pop("delivered", 400)
    for key, value in kw.items():
        setattr(r, key, value)
    for ms in (1.0, 2.0, 3.0):
        r.corrected.record_ms(ms)
    return r


def test_clean_run_has_no_problems():
    assert run_problems(_result(), max_lag_p99_ms=20) == []


def test_lost_deliveries_are_a_problem():
    problems = run_problems(_result(delivered=390), 20)
    assert problems == ["10 of 400 deliveries never arrived"]


def test_out_of_order_and_closed_subscribers_are_problems():
    problems = run_problems(_result(out_of_order=3, closed=[1013, 1013]), 20)
    assert "3 deliveries out of seq order" in problems
    assert "subscribers closed by the backend with codes [1013]" in problems


def test_a_late_generator_makes_the_run_invalid():
    late = GeneratorHealth(planned=200, sent=150, lag_p99_ms=50.0, lag_max_ms=90.0)
    problems = run_problems(_result(health=late), 20)
    assert any("skipped 50 of 200" in p for p in problems)
    assert any("fell behind" in p for p in problems)


def test_record_run_fails_the_row_on_a_broken_threshold_and_names_it(tmp_path):
    record = StageRecord("load")
    slow = Check("sustained P99", 250.0, 100, "<", "ms")
    row = record_run(record, tmp_path, "sustained", _result(), [], [slow])
    assert row["passed"] is False
    assert row["findings"] == [{"severity": "error", "message": "sustained P99 = 250.0ms breaks the threshold < 100ms"}]
    assert {"severity": "error", "message": "sustained: sustained P99 = 250.0ms breaks the threshold < 100ms"} in (
        record.findings
    )
    assert (tmp_path / "load.sustained_latency.csv").is_file() is False  # no per-second data in this result


def test_record_run_passes_a_clean_row(tmp_path):
    record = StageRecord("load")
    row = record_run(record, tmp_path, "sustained", _result(), [], [Check("sustained P99", 3.0, 100, "<", "ms")])
    assert row["passed"] is True and row["findings"] == [] and record.findings == []
    assert row["latency_ms"]["count"] == 3


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
    problems = run_problems(_result(connect_failures=["connect: HTTP 503"] * 3, rig_errors=["publisher: boom"]), 20)
    assert problems == ["publisher: boom", "connect: HTTP 503 (x3)"]


def test_rig_failures_make_a_run_invalid_but_refused_subscribers_do_not():
    """Saturation keeps a step with refused subscribers (the system's answer) but drops a broken rig."""
    refused = _result(connect_failures=["subscriber connect: handshake refused: HTTP 503"], delivered=200)
    assert invalid_reasons(refused, 20) == []
    assert data_problems(refused) == [
        "subscriber connect: handshake refused: HTTP 503",
        "200 of 400 deliveries never arrived",
    ]
    dead = _result(rig_errors=["subscriber process 1: MemoryError"])
    assert invalid_reasons(dead, 20) == ["subscriber process 1: MemoryError"]
    assert data_problems(dead) == []
    late = _result(health=GeneratorHealth(planned=200, sent=200, lag_p99_ms=50.0, lag_max_ms=90.0))
    assert invalid_reasons(late, 20) and not data_problems(late)
