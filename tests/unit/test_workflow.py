"""The GitHub workflow: valid by the GitHub-workflow schema, and it runs what exists here."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from wsrig.junit import MERGED_NAME
from wsrig.stages import STAGES

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "websocket-integration.yml"
CHECK = Path(sys.executable).with_name("check-jsonschema")


def _lint(path: Path) -> subprocess.CompletedProcess[str]:
    """check-jsonschema with its vendored GitHub-workflows schema (no network)."""
    return subprocess.run(
        [str(CHECK), "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _workflow() -> dict:
    return YAML(typ="safe").load(WORKFLOW.read_text())


def test_workflow_passes_the_linter():
    """The workflow validates against GitHub's workflow schema."""
    result = _lint(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_linter_catches_a_broken_workflow(tmp_path):
    """The linter is real: a misspelt key and a missing runs-on fail it."""
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on:", "run-on:"))
    assert _lint(broken).returncode != 0


@pytest.mark.skipif(shutil.which("actionlint") is None, reason="actionlint not on PATH (optional, stricter)")
def test_actionlint_when_available():
    """When a developer has actionlint, it agrees (upload-artifact@v4 is asked for by name; its
    node20 deprecation notice is not a defect of this file)."""
    cmd = ["actionlint", "-ignore", 'runtime "node20" is deprecated', str(WORKFLOW)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout


def test_triggers_and_inputs():
    """push, pull_request and manual dispatch; the stages are picked by name through one input
    and run_all_tests.sh's --stage, so the workflow repeats no stage of the registry."""
    wf = _workflow()
    on = wf.get("on", wf.get(True))  # YAML 1.1 may read the key `on` as true
    assert {"push", "pull_request", "workflow_dispatch"} <= set(on)
    inputs = on["workflow_dispatch"]["inputs"]
    run_step = next(s for s in wf["jobs"]["suite"]["steps"] if "run_all_tests.sh" in s.get("run", ""))
    assert inputs["stages"]["type"] == "string" and "--stage" in run_step["run"]
    text = WORKFLOW.read_text()
    for stage in STAGES:
        assert stage.flag not in text, f"{stage.flag} is repeated in the workflow: the registry is config/stages.toml"
    assert inputs["profile"]["options"] == ["quick", "full"]


def test_commands_it_runs_exist():
    """Every repository script a step runs exists and is executable."""
    wf = _workflow()
    scripts = set()
    for step in wf["jobs"]["suite"]["steps"]:
        scripts |= set(re.findall(r"(?:^|\s)\./([\w./-]+)", step.get("run", "")))
    assert "run_all_tests.sh" in scripts
    for script in scripts:
        assert os.access(ROOT / script, os.X_OK), f"{script} is run by the workflow but is not an executable file"


def test_publishes_results_always():
    """Artifact upload (v4), job summary and JUnit publishing run even when the suite fails."""
    steps = _workflow()["jobs"]["suite"]["steps"]
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["uses"] == "actions/upload-artifact@v4" and upload["if"] == "always()"
    assert "results/" in upload["with"]["path"]
    summary = next(s for s in steps if "GITHUB_STEP_SUMMARY" in s.get("run", ""))
    assert summary["if"] == "always()" and "test_report.md" in summary["run"]
    junit = next(s for s in steps if "publish-unit-test-result" in s.get("uses", ""))
    assert junit["if"] == "always()" and junit["with"]["files"].endswith(MERGED_NAME)


def test_trend_history_in_the_cache():
    """Earlier runs' summaries come back from the Actions cache (restored by a branch prefix,
    after the artifact upload), `wsrig trend --markdown` goes to the job summary, this run's
    summary is saved under a new key per run; none of it can fail the job (Verdict decides)."""
    steps = _workflow()["jobs"]["suite"]["steps"]
    names = [s.get("name", s.get("uses", "")) for s in steps]
    restore = next(s for s in steps if s.get("uses", "").startswith("actions/cache/restore@"))
    save = next(s for s in steps if s.get("uses", "").startswith("actions/cache/save@"))
    trend = next(s for s in steps if "wsrig trend" in s.get("run", ""))
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@"))
    for step in (restore, trend, save):
        assert step["if"] == "always()" and step["continue-on-error"] is True, step["name"]
    assert restore["with"]["path"] == save["with"]["path"] == "results/full_suite_*/test_summary.json"
    assert restore["with"]["key"] == save["with"]["key"] and "github.run_id" in save["with"]["key"]
    assert restore["with"]["restore-keys"].splitlines()[0] == "wsrig-trend-${{ github.ref_name }}-"
    assert '.venv/bin/wsrig trend results --markdown >> "$GITHUB_STEP_SUMMARY"' in trend["run"]
    order = [names.index(s["name"]) for s in (upload, restore, trend, save)]
    assert order == sorted(order) and order[-1] < names.index("Verdict")
