"""The stage registry (config/stages.toml) is the one list: the runner, the markers and the
probes agree with it, and a malformed entry fails loudly."""

from __future__ import annotations

import subprocess

import pytest

from wsrig.config import repo_root
from wsrig.stages import STAGES, load_stages

ROOT = repo_root()


def test_every_stage_has_its_probe_module_with_its_marker():
    for stage in STAGES:
        probe = stage.probe_path(ROOT)
        assert probe.is_file(), probe
        assert f"pytest.mark.{stage.marker}" in probe.read_text(), (
            f"{probe.name} does not mark its tests {stage.marker}"
        )


def test_run_all_tests_lists_and_accepts_what_the_registry_holds():
    out = subprocess.run([str(ROOT / "run_all_tests.sh"), "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    for stage in STAGES:
        assert stage.name in out.stdout and stage.flag in out.stdout
    bad = subprocess.run(
        [str(ROOT / "run_all_tests.sh"), "--stage", "no_such_stage"], capture_output=True, text=True, timeout=30
    )
    assert bad.returncode == 2 and "known: " + " ".join(s.name for s in STAGES) in bad.stderr


def test_a_stage_entry_with_an_unknown_key_fails_loudly(tmp_path):
    registry = tmp_path / "stages.toml"
    registry.write_text(
        '[[stage]]\nname = "x"\nflag = "RUN_X"\nmarker = "x"\nmodule = "t.py"\ntitle = "X"\ntimd = true\n'
    )
    with pytest.raises(TypeError, match="timd"):
        load_stages(registry)


def test_a_stage_can_be_off_by_default(tmp_path, monkeypatch):
    from wsrig import cli

    registry = tmp_path / "stages.toml"
    registry.write_text(
        '[[stage]]\nname = "x"\nflag = "RUN_X"\nmarker = "x"\nmodule = "t.py"\ntitle = "X"\ndefault = false\n'
    )
    monkeypatch.setattr(cli, "STAGES", load_stages(registry))
    monkeypatch.delenv("RUN_X", raising=False)
    assert cli._selected_from_env() == {"x": False}
    monkeypatch.setenv("RUN_X", "true")
    assert cli._selected_from_env() == {"x": True}


def test_each_topology_runs_the_stages_that_work_there():
    """The default topology runs what it always ran; the cluster runs its own stage and the
    stages that only use the balancer's URLs; the rest say why they are not run there."""
    single = [s.name for s in STAGES if s.runs_in("single")]
    cluster = [s.name for s in STAGES if s.runs_in("cluster")]
    assert "cluster" not in single
    assert single == [s.name for s in STAGES if s.name != "cluster"]
    assert cluster == ["connectivity", "message_flow", "cluster"]
    for name in ("fault_tolerance", "integration", "browser", "load", "performance", "security"):
        stage = next(s for s in STAGES if s.name == name)
        assert "single-node only" in stage.not_in_topology("cluster")


def test_the_selection_follows_the_topology(monkeypatch):
    from wsrig import cli

    for stage in STAGES:
        monkeypatch.delenv(stage.flag, raising=False)
    single, cluster = cli._selected_from_env("single"), cli._selected_from_env("cluster")
    assert [n for n, on in single.items() if on] == [s.name for s in STAGES if s.name != "cluster" and s.default]
    assert [n for n, on in cluster.items() if on] == ["connectivity", "message_flow", "cluster"]


def test_a_stage_outside_its_topology_is_not_run_and_says_why(tmp_path):
    from wsrig.stages import run_stage, stage_by_name

    assert run_stage(stage_by_name("fault_tolerance"), ROOT, tmp_path, topology="cluster") == 0
    status = (tmp_path / "fault_tolerance.status.json").read_text()
    assert '"not_run"' in status and "single-node only" in status


def test_an_unknown_topology_in_the_registry_fails_loudly(tmp_path):
    registry = tmp_path / "stages.toml"
    registry.write_text(
        '[[stage]]\nname = "x"\nflag = "RUN_X"\nmarker = "x"\nmodule = "t.py"\ntitle = "X"\ntopologies = ["clustr"]\n'
    )
    with pytest.raises(ValueError, match="clustr"):
        load_stages(registry)


def test_run_all_tests_turns_off_the_stages_outside_the_topology():
    text = (ROOT / "run_all_tests.sh").read_text()
    assert "STAGE_TOPOLOGIES" in text and 'export "${flag}=false"' in text


def test_the_summary_says_why_a_stage_did_not_run_in_this_topology(tmp_path):
    from wsrig.summary import build_summary

    selected = {s.name: s.runs_in("cluster") for s in STAGES}
    summary = build_summary(
        tmp_path, selected, suite_run_id="x", started_at="", finished_at="",
        environment={"topology": "cluster"}, thresholds={},
    )  # fmt: skip
    fault = next(s for s in summary["stages"] if s["name"] == "fault_tolerance")
    assert fault["status"] == "skipped" and "single-node only" in fault["reason"]
    single = build_summary(
        tmp_path, {s.name: False for s in STAGES}, suite_run_id="x", started_at="", finished_at="",
        environment={"topology": "single"}, thresholds={},
    )  # fmt: skip
    assert next(s for s in single["stages"] if s["name"] == "cluster")["reason"].startswith("not run in the single")
