"""Small helpers every probe uses: run an asyncio body, print progress, read endpoints."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from wsrig.clients import get_json
from wsrig.config import RigConfig
from wsrig.record import Check, StageRecord
from wsrig.righealth import INVALID_PREFIX, RigLimits

__all__ = ["backend_state", "backend_status", "bot_stats", "conclude", "progress", "run"]

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one probe's asyncio body (probes are plain sync tests around it)."""
    return asyncio.run(coro)


def progress(message: str) -> None:
    """A progress line for long stages; the stage runner echoes lines with this tag."""
    print(f"[progress] {time.strftime('%H:%M:%S')} {message}", flush=True)


def bot_stats(cfg: RigConfig) -> dict[str, Any]:
    return dict(get_json(cfg.bot_url + "/stats"))


def backend_status(cfg: RigConfig) -> dict[str, Any]:
    return dict(get_json(cfg.dashboard_url + "/api/websocket/status"))


def backend_state(cfg: RigConfig) -> dict[str, Any]:
    return dict(get_json(cfg.dashboard_url + "/api/state"))


def results_dir() -> Path:
    """Where the running stage writes its files (``$RIG__RESULTS_DIR``), created if missing."""
    out = Path(os.environ.get("RIG__RESULTS_DIR", "results/adhoc"))
    out.mkdir(parents=True, exist_ok=True)
    return out


def record_judged(record: StageRecord, history: Any, row: dict[str, Any]) -> None:
    """Keep a judged probe's history where ``wsrig judge`` finds it, record its row (with the
    history's file name), its checks and findings, and end the test by it (``conclude``)."""
    from wsrig.scenario_history import history_path

    path = history.save(history_path(results_dir(), record.stage, history.name))
    row = record.scenario(**row, history=path.name)
    checks = [Check(**{k: v for k, v in c.items() if k != "passed"}) for c in row.get("checks", [])]
    names = {c.name for c in checks}
    record.checks = [c for c in record.checks if c.name not in names] + checks
    for f in row["findings"]:
        record.finding(f["severity"], f"{history.name}: {f['message']}")
    conclude(row)


def record_probe(
    record: StageRecord, limits: dict[str, Any], name: str, *, rig_limits: RigLimits | None = None, **measured: Any
) -> None:
    """Keep what a probe measured (a ``ProbeHistory``) and let its stage's judge decide
    (with ``rig_limits`` when it judges a latency with the measuring client's own health)."""
    from wsrig.judges import judge_probe
    from wsrig.scenario_history import ProbeHistory

    history = ProbeHistory(name=name, stage=record.stage, measured=measured)
    record_judged(record, history, judge_probe(history, limits, rig_limits))


def conclude(row: dict[str, Any]) -> None:
    """End a test from its scenario row: fail with its findings, or skip as invalid.

    An invalid row is a skip in pytest and JUnit, with the reason the rig gives: the
    stage is then ``invalid`` in the summary (wsrig.summary), never passed or failed.
    """
    status = row.get("status", "passed" if row.get("passed") else "failed")
    if status == "failed":
        messages = [f["message"] for f in row.get("findings", [])] or ["failed"]
        pytest.fail(f"{row['name']}: " + "; ".join(messages), pytrace=False)
    if status == "invalid":
        pytest.skip(f"invalid: {INVALID_PREFIX}: {row['name']}: " + "; ".join(row.get("invalid_reasons", [])))
