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
