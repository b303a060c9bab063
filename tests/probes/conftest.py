"""Fixtures shared by the black-box stages: config, the stage record, endpoints.

Probes reach the system only through its public endpoints and Docker; each stage
run writes its measurements to ``$RIG__RESULTS_DIR/<stage>.record.json``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wsrig import progress
from wsrig.clients import get_json
from wsrig.config import RigConfig, load_config
from wsrig.cpusets import CpuPlan, hog, pinned, plan_cpus
from wsrig.probe import bot_stats
from wsrig.probe import results_dir as stage_results_dir
from wsrig.record import StageRecord
from wsrig.righealth import RigLimits
from wsrig.stack import DockerStack
from wsrig.stages import STAGES
from wsrig.wait import wait_until


def pytest_configure(config: pytest.Config) -> None:
    """Each stage's marker, from the stage registry (config/stages.toml), for --strict-markers."""
    for stage in STAGES:
        config.addinivalue_line("markers", f"{stage.marker}: {stage.title} stage ({stage.flag})")


@pytest.fixture(scope="session")
def cfg() -> RigConfig:
    config = load_config()
    try:
        wait_until(lambda: get_json(config.dashboard_url + "/ready"), timeout=30, what=f"{config.dashboard_url}/ready")
    except TimeoutError as exc:
        pytest.exit(f"the dashboard backend is not reachable: {exc}. Start the stack (wsrig up) first.", returncode=3)
    return config


@pytest.fixture(scope="session")
def record() -> Iterator[StageRecord]:
    stage = os.environ.get("RIG__STAGE", "adhoc")
    rec = StageRecord(stage)
    yield rec
    rec.save(stage_results_dir() / f"{stage}.record.json")


@pytest.fixture(scope="session")
def results_dir() -> Path:
    """Where this stage's files go (CSV series beside the record and JUnit)."""
    return stage_results_dir()


@pytest.fixture(scope="session")
def limits(cfg: RigConfig) -> dict[str, Any]:
    """This stage's thresholds (config/thresholds.toml, profile applied)."""
    return cfg.stage_thresholds(os.environ.get("RIG__STAGE", "connectivity"))


@pytest.fixture(scope="session", autouse=True)
def cpu_plan(cfg: RigConfig, record: StageRecord) -> Iterator[CpuPlan]:
    """Timed stages run with the rig and the system on disjoint cores (wsrig.cpusets).

    The self-test knobs (RIG__SELFTEST_*) starve the rig or slow the backend on purpose.
    """
    name = os.environ.get("RIG__STAGE", "adhoc")
    timed = name in {s.name for s in STAGES if s.timed}
    plan = plan_cpus(os.cpu_count() or 1, os.environ) if timed else CpuPlan(None, None, "untimed stage")
    stack = DockerStack(cfg)
    record.metrics["cpusets"] = plan.describe()
    with contextlib.ExitStack() as undo:
        undo.enter_context(pinned(plan, stack.containers() if plan.rig is not None else []))
        quota = float(os.environ.get("RIG__SELFTEST_SYSTEM_CPUS", "0") or 0)
        if quota > 0:
            stack.limit_cpus(cfg.dashboard_service, quota)
            undo.callback(stack.limit_cpus, cfg.dashboard_service, 0)
            record.metrics["selftest"] = f"backend capped at {quota} CPU"
        hogs = int(os.environ.get("RIG__SELFTEST_HOG_RIG", "0") or 0)
        if hogs > 0:
            undo.enter_context(hog(plan.rig or frozenset(range(os.cpu_count() or 1)), hogs))
            record.metrics["selftest"] = f"rig cores {CpuPlan.text(plan.rig)} hogged by {hogs} busy processes each"
        yield plan


@pytest.fixture(scope="session")
def rig_limits(cfg: RigConfig) -> RigLimits:
    """Where the rig stops trusting its own timing ([*.rig_health]): beyond them a scenario is invalid."""
    return RigLimits.from_thresholds(cfg.stage_thresholds("rig_health"))


@pytest.fixture(scope="session")
def bot_run_id(cfg: RigConfig) -> str:
    """The bot's current run_id, once it is connected to the backend."""

    def connected() -> str | None:
        stats = bot_stats(cfg)
        return stats["run_id"] if stats.get("connected") else None

    return str(wait_until(connected, timeout=60, what="the bot to connect to the dashboard"))


def pytest_runtest_logstart(nodeid: str, location: tuple[str, int | None, str]) -> None:
    """Live progress: step i/n of this stage (wsrig/progress.py draws it in the terminal)."""
    session = _SESSION.get("session")
    items = getattr(session, "items", None) or []
    ids = [item.nodeid for item in items]
    i = ids.index(nodeid) + 1 if nodeid in ids else 0
    progress.step(os.environ.get("RIG__STAGE", "adhoc"), location[2], i, len(ids))


_SESSION: dict[str, pytest.Session] = {}


def pytest_sessionstart(session: pytest.Session) -> None:
    _SESSION["session"] = session
