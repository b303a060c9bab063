"""Summary building (verdicts, not_run, JUnit) and the Markdown report."""

import json

import pytest

from wsrig.record import StageRecord
from wsrig.report import render_markdown
from wsrig.stages import STAGES, stage_by_name, write_status
from wsrig.summary import InvalidSummary, build_summary, junit_counts, write_summary

JUNIT_OK = """<?xml version="1.0"?><testsuites><testsuite name="s" tests="2">
<testcase classname="c" name="test_a"/><testcase classname="c" name="test_b"/></testsuite></testsuites>"""
JUNIT_FAIL = """<?xml version="1.0"?><testsuites><testsuite name="s" tests="2">
<testcase classname="c" name="test_a"/><testcase classname="c" name="test_lost">
<failure message="AssertionError: run abc: LOST 3 message(s)">trace</failure></testcase></testsuite></testsuites>"""


def _summary(tmp_path, selected):
    return build_summary(
        tmp_path, selected, suite_run_id="r1", started_at="2026-01-01T00:00:00+00:00",
        finished_at="2026-01-01T00:01:00+00:00",
        environment={"git_sha": "x", "docker_version": "d", "compose_version": "c", "images": {}, "host": {}},
        thresholds={},
    )  # fmt: skip


def _stage(tmp_path, name, status, junit):
    write_status(tmp_path, stage_by_name(name), status, duration_s=1.5)
    (tmp_path / f"{name}.junit.xml").write_text(junit)


def test_junit_counts_and_failure_message(tmp_path):
    """Failed test cases become findings carrying their assertion message."""
    (tmp_path / "x.xml").write_text(JUNIT_FAIL)
    counts, findings = junit_counts(tmp_path / "x.xml")
    assert counts["passed"] == 1 and counts["failed"] == 1
    assert "LOST 3" in findings[0]["message"]


def test_all_selected_passed_is_pass(tmp_path):
    """Verdict pass when every selected stage passed; unselected ones are skipped."""
    _stage(tmp_path, "connectivity", "passed", JUNIT_OK)
    s = _summary(tmp_path, {"connectivity": True})
    assert s["verdict"] == "pass"
    assert {x["name"]: x["status"] for x in s["stages"]}["message_flow"] == "skipped"
    write_summary(s, tmp_path / "test_summary.json")


def test_not_run_stage_fails_the_verdict(tmp_path):
    """A selected stage that is not built yet is not_run and the verdict is fail."""
    _stage(tmp_path, "connectivity", "passed", JUNIT_OK)
    write_status(tmp_path, stage_by_name("security"), "not_run", "not built yet")
    s = _summary(tmp_path, {"connectivity": True, "security": True})
    assert s["verdict"] == "fail"
    assert "Not run" in render_markdown(s)


def test_missing_status_is_error(tmp_path):
    """A selected stage with no status file (interrupted) is an error, never passed."""
    s = _summary(tmp_path, {"connectivity": True})
    assert s["stages"][0]["status"] == "error" and s["verdict"] == "fail"


def test_failed_scenario_fails_stage_even_if_tests_passed(tmp_path):
    """A scenario recorded as failed turns a passed stage into failed."""
    _stage(tmp_path, "fault_tolerance", "passed", JUNIT_OK)
    rec = StageRecord("fault_tolerance")
    rec.scenario("dashboard_crash", False, lost=3, duplicated=0, reordered=0)
    rec.save(tmp_path / "fault_tolerance.record.json")
    s = _summary(tmp_path, {"fault_tolerance": True})
    assert s["stages"][2]["status"] == "failed" and s["verdict"] == "fail"


def test_report_puts_verdict_and_failure_first(tmp_path):
    """The report's first lines give the verdict and what failed, with the finding."""
    _stage(tmp_path, "connectivity", "failed", JUNIT_FAIL)
    rec = StageRecord("connectivity")
    rec.measure("handshake_p99_ms", 250.0, 100, unit=" ms")
    rec.save(tmp_path / "connectivity.record.json")
    text = render_markdown(_summary(tmp_path, {"connectivity": True}))
    head = "\n".join(text.splitlines()[:8])
    assert "FAIL" in head and "connectivity" in head and "handshake_p99_ms" in head
    assert "| handshake_p99_ms | 250 ms | <= 100 ms | **NO** |" in text


def test_invalid_summary_fails_loudly(tmp_path):
    """A summary that breaks its schema is refused with the problem named."""
    s = _summary(tmp_path, {})
    s["verdict"] = "maybe"
    with pytest.raises(InvalidSummary, match="verdict"):
        write_summary(s, tmp_path / "t.json")


def test_stage_names_and_flags_are_unique():
    """Every stage has its own name, flag and marker."""
    for attr in ("name", "flag", "marker"):
        assert len({getattr(s, attr) for s in STAGES}) == len(STAGES)


def test_record_measure_adds_finding_on_breach(tmp_path):
    """A measured value over its threshold is a failed check and an error finding."""
    rec = StageRecord("x")
    assert not rec.measure("p99_ms", 120, 100).passed
    assert rec.findings[0]["severity"] == "error"
    rec.save(tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["metrics"]["checks"][0]["passed"] is False


def test_error_lines_counted_and_bounded():
    """Error-level lines and tracebacks are counted; only the first few are kept, cut to width."""
    from wsrig.summary import error_lines

    text = "\n".join(
        ["INFO fine", "2026 ERROR boom " + "x" * 400, "WARNING meh", "Traceback (most recent call last):"] * 6
    )
    count, lines = error_lines(text, limit=3, width=50)
    assert count == 12 and len(lines) == 3 and lines[0].endswith("...") and len(lines[0]) == 50


def test_wsrig_report_regenerates_markdown_charts_and_junit(tmp_path):
    """`wsrig report DIR` rewrites test_report.md, charts and junit.xml from the summary alone."""
    from click.testing import CliRunner

    from wsrig.cli import main

    _stage(tmp_path, "fault_tolerance", "failed", JUNIT_FAIL)
    rec = StageRecord("fault_tolerance")
    rec.scenario("dashboard_crash", False, fault_window={"fault": "crash", "injected_at": 100.0, "healed_at": 105.0,
                                                        "duration_s": 5.0}, findings=[])  # fmt: skip
    rec.add_series(tmp_path, "dashboard_crash_latency", "latency", ["t", "p50_ms", "p99_ms"], [[99, 1, 2], [106, 3, 9]])
    rec.save(tmp_path / "fault_tolerance.record.json")
    (tmp_path / "container_bot.log").write_text("ok\nERROR it broke\n")
    write_summary(_summary(tmp_path, {"fault_tolerance": True}), tmp_path / "test_summary.json")
    result = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "test_report.md").read_text()
    assert "chart_fault_tolerance_latency.png" in text and (tmp_path / "chart_fault_tolerance_latency.png").is_file()
    assert (tmp_path / "junit.xml").is_file() and "ERROR it broke" in text
    page = (tmp_path / "test_report.html").read_text()
    assert '<img src="data:image/png;base64,' in page and "ERROR it broke" in page


JUNIT_INVALID = """<?xml version="1.0"?><testsuites><testsuite name="s" tests="2">
<testcase classname="c" name="test_sustained"/><testcase classname="c" name="test_fanout">
<skipped type="pytest.skip" message="invalid: the rig could not measure on this host: fanout: rig event-loop lag P99 120.0 ms in subscriber process 1 &gt; 10 ms">x</skipped>
</testcase></testsuite></testsuites>"""


def test_invalid_stage_gives_invalid_verdict_and_exit_code_3(tmp_path):
    """A stage whose test ended invalid is INVALID; the run's verdict is invalid, exit code 3."""
    from wsrig.summary import EXIT_CODES

    _stage(tmp_path, "connectivity", "passed", JUNIT_OK)
    _stage(tmp_path, "load", "passed", JUNIT_INVALID)
    rec = StageRecord("load")
    rec.scenario("fanout", False, status="invalid", invalid_reasons=["rig event-loop lag P99 120.0 ms > 10 ms"])
    rec.save(tmp_path / "load.record.json")
    summary = _summary(tmp_path, {"connectivity": True, "load": True})
    load = next(s for s in summary["stages"] if s["name"] == "load")
    assert load["status"] == "invalid" and load["tests"]["invalid"] == 1
    assert "event-loop lag" in load["reason"]
    assert summary["verdict"] == "invalid" and EXIT_CODES["invalid"] == 3
    write_summary(summary, tmp_path / "test_summary.json")  # the schema knows "invalid"
    text = render_markdown(summary)
    assert "the rig could not measure on this host" in text and "INVALID" in text.splitlines()[0]
    assert "What failed" not in text


def test_failed_stage_beats_invalid_stage(tmp_path):
    """One stage failed, another invalid: the verdict is fail."""
    _stage(tmp_path, "connectivity", "failed", JUNIT_FAIL)
    _stage(tmp_path, "load", "passed", JUNIT_INVALID)
    summary = _summary(tmp_path, {"connectivity": True, "load": True})
    assert summary["verdict"] == "fail"


def test_a_stage_whose_only_test_was_invalid_is_invalid_not_error(tmp_path):
    """-k fanout with the one test invalid: the stage is invalid, not 'no test passed'."""
    only_invalid = JUNIT_INVALID.replace('<testcase classname="c" name="test_sustained"/>', "")
    _stage(tmp_path, "load", "passed", only_invalid)
    summary = _summary(tmp_path, {"load": True})
    assert summary["stages"][3]["status"] == "invalid" and summary["verdict"] == "invalid"
