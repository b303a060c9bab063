"""``wsrig judge``: a finished run judged again from its histories gives the run's verdict,
and a different one when the thresholds or the history say so."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from test_scenario_judge import LIMITS, _late, clean

from wsrig.cli import main
from wsrig.rejudge import rejudge
from wsrig.scenario_history import ClientLog, ScenarioHistory, history_path
from wsrig.scenario_judge import judge_scenario


def _stage(name: str, status: str, rows: list[dict], findings: list[dict]) -> dict:
    return {
        "name": name,
        "status": status,
        "reason": "",
        "duration_s": 1.0,
        "tests": {"passed": len(rows), "failed": 0, "skipped": 0, "errors": 0},
        "metrics": {},
        "findings": findings,
        "scenarios": rows,
    }


def _run(tmp_path: Path, history: ScenarioHistory) -> Path:
    """A results folder as the fault stage leaves it: the history, its row and findings."""
    path = history.save(history_path(tmp_path, "fault_tolerance", history.name))
    result = judge_scenario(history, LIMITS)
    row = {**result.serialize(), "history": path.name}
    findings = [{"severity": f.severity, "message": f"{history.name}: {f.message}"} for f in result.findings]
    summary = {
        "verdict": "pass" if result.passed else "fail",
        "profile": "quick",
        "thresholds": {"fault_tolerance": LIMITS},
        "stages": [
            _stage("connectivity", "passed", [{"name": "handshake", "passed": True}], []),
            _stage("fault_tolerance", "passed" if result.passed else "failed", [row], findings),
            _stage("load", "skipped", [], []),
        ],
    }
    (tmp_path / "test_summary.json").write_text(json.dumps(summary))
    return tmp_path


def test_the_run_judged_again_gives_its_verdict_and_findings(tmp_path):
    results = _run(tmp_path, clean())
    out = rejudge(results)
    recorded = json.loads((results / "test_summary.json").read_text())
    assert out.summary["verdict"] == "pass" and not out.changes
    assert out.judged == {"fault_tolerance": ["dashboard_crash"]} and out.carried == ["connectivity"]
    assert [s["findings"] for s in out.summary["stages"]] == [s["findings"] for s in recorded["stages"]]
    assert out.summary["stages"][1]["scenarios"] == recorded["stages"][1]["scenarios"]


def test_tighter_thresholds_fail_the_run_and_name_the_change(tmp_path):
    h = clean()
    h.live = ClientLog.of(_late(5), 1, [], [])  # recovery 5 s: passes under 15, fails under 2
    out = rejudge(_run(tmp_path, h), {"quick": {"fault_tolerance": {**LIMITS, "recovery_bound_s": 2}}})
    assert out.summary["verdict"] == "fail"
    assert out.changes == ["fault_tolerance/dashboard_crash: passed -> failed"]
    assert any("> bound 2s" in f["message"] for f in out.summary["stages"][1]["findings"])


def test_a_history_the_record_calls_clean_is_judged_on_what_it_holds(tmp_path):
    results = _run(tmp_path, clean())
    lossy = clean()
    lossy.live = ClientLog.of([f for f in lossy.live.frames if f[1]["seq"] != 40], 1, [], [])
    lossy.stored = {"run-a": [15]}
    lossy.save(history_path(results, "fault_tolerance", lossy.name))  # the record still says passed
    out = rejudge(results)
    assert out.summary["verdict"] == "fail"
    assert any("LOST 1" in f["message"] for f in out.summary["stages"][1]["findings"])


def test_the_cli_prints_what_it_judged_and_exits_with_the_verdict(tmp_path):
    h = clean()
    h.live = ClientLog.of(_late(5), 1, [], [])
    results = _run(tmp_path, h)
    ok = CliRunner().invoke(main, ["judge", str(results)])
    assert ok.exit_code == 0, ok.output
    assert "judged from histories: fault_tolerance: dashboard_crash" in ok.output
    assert "taken as recorded" in ok.output and "findings: as recorded" in ok.output
    assert "verdict: PASS" in ok.output
    strict = tmp_path / "strict.toml"
    strict.write_text("[quick.fault_tolerance]\nrecovery_bound_s = 2\n")
    failed = CliRunner().invoke(main, ["judge", str(results), "--thresholds", str(strict)])
    assert failed.exit_code == 1 and "changed: fault_tolerance/dashboard_crash: passed -> failed" in failed.output
    missing = CliRunner().invoke(main, ["judge", str(tmp_path / "nothing")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_a_failed_run_judged_again_keeps_its_tests_failure_lines(tmp_path):
    """A failing row's test failed with its findings (JUnit's ``test_x: Failed: name: ...``
    line in the stage): judged again, the row still fails, so the line stays and the
    findings are the recorded ones."""
    history = clean()
    history.live = ClientLog.of(_late(30), 1, [], [])  # recovery 30 s: fails under the limits
    results = _run(tmp_path, history)
    summary = json.loads((results / "test_summary.json").read_text())
    stage = summary["stages"][1]
    assert stage["status"] == "failed"
    stage["findings"].append({"severity": "error", "message": f"test_x: Failed: {history.name}: late"})
    (results / "test_summary.json").write_text(json.dumps(summary))
    out = rejudge(results)
    assert out.summary["verdict"] == "fail" and not out.findings_differ
