"""The suite's stages (config/stages.toml: name, RUN_* flag, pytest marker, probe module)
and how to run one.

A stage whose probe module does not exist yet is reported ``not_run`` with the
reason, never as passed; so is a stage asked for in a topology it does not run in
(``topologies``: a single-node stage addresses the one ``dashboard-backend`` container).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from wsrig.config import repo_root
from wsrig.progress import LiveDisplay

__all__ = [
    "REGISTRY",
    "STAGES",
    "TOPOLOGIES",
    "Stage",
    "load_stages",
    "run_stage",
    "stage_by_name",
    "write_status",
]

#: The system's shapes (RIG__TOPOLOGY, ``--topology``; docs/CLUSTER.md).
TOPOLOGIES = ("single", "cluster")


#: The registry: config/stages.toml (also read by run_all_tests.sh and the probes' conftest).
REGISTRY = repo_root() / "config" / "stages.toml"


@dataclass(frozen=True)
class Stage:
    name: str
    flag: str
    marker: str
    module: str
    title: str
    about: str = ""
    #: On when neither its flag nor ``--stage`` says otherwise.
    default: bool = True
    #: Judges timing: runs with the rig and the system on disjoint CPU sets (wsrig.cpusets).
    timed: bool = False
    #: The topologies it runs in (``single``, ``cluster``); elsewhere it is not run, with the reason.
    topologies: tuple[str, ...] = ("single",)

    def __post_init__(self) -> None:
        object.__setattr__(self, "topologies", tuple(self.topologies))
        unknown = [t for t in self.topologies if t not in TOPOLOGIES]
        if unknown or not self.topologies:
            raise ValueError(f"stage {self.name}: topologies {list(self.topologies)}; known: {', '.join(TOPOLOGIES)}")

    def runs_in(self, topology: str) -> bool:
        return topology in self.topologies

    def not_in_topology(self, topology: str) -> str:
        """Why it is not run in ``topology`` ("" when it is)."""
        if self.runs_in(topology):
            return ""
        if self.topologies == ("single",):
            return (
                f"not run in the {topology} topology: single-node only (it addresses the one"
                " dashboard-backend container)"
            )
        return f"not run in the {topology} topology: runs in {', '.join(self.topologies)} only"

    def probe_path(self, root: Path) -> Path:
        return root / "tests" / "probes" / self.module


def load_stages(path: Path = REGISTRY) -> tuple[Stage, ...]:
    """The stages in run order; a stage table with an unknown or missing key fails loudly."""
    return tuple(Stage(**table) for table in tomllib.loads(path.read_text())["stage"])


STAGES: tuple[Stage, ...] = load_stages()


def stage_by_name(name: str) -> Stage:
    for stage in STAGES:
        if name in (stage.name, stage.marker, stage.flag):
            return stage
    raise KeyError(f"unknown stage {name!r}; known: {', '.join(s.name for s in STAGES)}")


def write_status(
    results: Path, stage: Stage, status: str, reason: str = "", duration_s: float = 0.0, exit_code: int | None = None
) -> None:
    (results / f"{stage.name}.status.json").write_text(
        json.dumps(
            {
                "name": stage.name,
                "status": status,
                "reason": reason,
                "duration_s": round(duration_s, 2),
                "exit_code": exit_code,
            }
        )
    )


def run_stage(
    stage: Stage, root: Path, results: Path, extra_args: list[str] | None = None, topology: str = "single"
) -> int:
    """Run one stage's probes under pytest; log, JUnit and status land in ``results``.
    In a topology the stage does not run in, nothing runs: ``not_run`` with the reason."""
    results.mkdir(parents=True, exist_ok=True)
    why = stage.not_in_topology(topology)
    if why:
        write_status(results, stage, "not_run", why)
        (results / f"{stage.name}.log").write_text(f"{stage.name}: {why}\n")
        return 0
    probe = stage.probe_path(root)
    if not probe.is_file():
        write_status(results, stage, "not_run", f"not built yet: {probe.relative_to(root)} does not exist")
        (results / f"{stage.name}.log").write_text(
            f"{stage.name}: not run: probe module {probe.name} is not built yet\n"
        )
        return 0
    env = {**os.environ, "RIG__STAGE": stage.name, "RIG__RESULTS_DIR": str(results)}
    cmd = [
        sys.executable, "-m", "pytest", str(probe), "-m", stage.marker,
        "-o", "testpaths=tests/probes", "-p", "no:cacheprovider",
        f"--junitxml={results / f'{stage.name}.junit.xml'}",
        "-o", f"junit_suite_name={stage.name}", "-v", "-rA", "--tb=short", "--capture=tee-sys", *(extra_args or []),
    ]  # fmt: skip
    t0 = time.monotonic()
    with open(results / f"{stage.name}.log", "w") as log, LiveDisplay(stage.name) as live:
        log.write(f"$ {' '.join(cmd)}\n")
        log.flush()
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = live.feed(raw)  # live progress lines are drawn in place, not logged
            if line is None:
                continue
            log.write(line)
            log.flush()
            if line.startswith(("tests/", "PASSED", "FAILED", "ERROR")) or "[progress]" in line:
                live.print(f"  [{stage.name}] {line.rstrip()}")
        code = proc.wait()
    duration = time.monotonic() - t0
    status = {0: "passed", 1: "failed", 5: "error"}.get(code, "error")
    reason = {5: "no test was collected", 2: "interrupted", 3: "internal error", 4: "usage error"}.get(code, "")
    write_status(results, stage, status, reason, duration, code)
    return code
