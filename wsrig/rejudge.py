"""``wsrig judge``: a finished run judged again from the histories it recorded.

Reads ``test_summary.json`` and every ``<stage>.<scenario>.history.json`` beside it,
runs the judge on each history with the given thresholds (the run's own by default),
and rebuilds the stage statuses and the verdict the way the run did. Stages whose
probes do not write histories yet keep their recorded rows and status, and are named
as such, so nobody mistakes "carried over" for "judged again".
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wsrig.config import thresholds_for
from wsrig.righealth import worst_status
from wsrig.scenario_history import HISTORY_SUFFIX, load_history
from wsrig.scenario_judge import judge_history
from wsrig.summary import verdict_of

__all__ = ["Rejudged", "rejudge"]


@dataclass
class Rejudged:
    recorded: dict[str, Any]  # the run's own test_summary.json
    summary: dict[str, Any]  # the same, judged again
    judged: dict[str, list[str]] = field(default_factory=dict)  # stage -> scenarios judged from histories
    carried: list[str] = field(default_factory=list)  # stages taken as recorded
    changes: list[str] = field(default_factory=list)  # scenarios whose verdict changed

    @property
    def findings_differ(self) -> list[str]:
        """Stages whose findings are not the ones the run recorded."""

        def messages(summary: dict[str, Any]) -> dict[str, list[str]]:
            return {s["name"]: sorted(f["message"] for f in s["findings"]) for s in summary["stages"]}

        before, after = messages(self.recorded), messages(self.summary)
        return [name for name in before if before[name] != after.get(name)]


def _row_status(row: dict[str, Any]) -> str:
    return str(row.get("status", "passed" if row.get("passed") else "failed"))


def _of_scenario(finding: dict[str, Any], scenario: str, still_failed: bool) -> bool:
    """A finding the scenario's row put in the stage (``name: ...``), or its test's JUnit
    failure (``test_x: Failed: name: ...``) unless the row fails again (the test would
    have failed with it); an invalid test's warning stays."""
    message = finding["message"]
    echo = finding["severity"] == "error" and f": {scenario}: " in message
    return message.startswith(f"{scenario}: ") or (echo and not still_failed)


def _stage(results: Path, stage: dict[str, Any], thresholds: dict[str, Any], out: Rejudged) -> None:
    paths = sorted(results.glob(f"{stage['name']}.*{HISTORY_SUFFIX}"))
    if not paths:
        if stage["status"] != "skipped":
            out.carried.append(stage["name"])
        return
    rows = {row["name"]: row for row in stage["scenarios"]}
    failed_before = sum(_row_status(r) == "failed" for r in rows.values())
    for path in paths:
        history = load_history(path)
        row = {**judge_history(history, thresholds, stage["name"]), "history": path.name}
        # a load scenario's measurement runs (its reference run, saturation steps) are rows of their own
        for item in [*row.pop("runs", []), row]:
            old = rows.get(item["name"])
            if old is not None and _row_status(old) != _row_status(item):
                out.changes.append(f"{stage['name']}/{item['name']}: {_row_status(old)} -> {_row_status(item)}")
            rows[item["name"]] = item
        still_failed = _row_status(row) == "failed"
        stage["findings"] = [f for f in stage["findings"] if not _of_scenario(f, history.name, still_failed)]
        stage["findings"] += [{**f, "message": f"{history.name}: {f['message']}"} for f in row["findings"]]
        out.judged.setdefault(stage["name"], []).append(history.name)
    stage["scenarios"] = list(rows.values())
    if stage["status"] in ("passed", "failed", "invalid"):
        tests = stage.get("tests", {})
        # failures the rows do not account for (a test that raised before its row) still count
        unexplained = int(tests.get("failed", 0)) + int(tests.get("errors", 0)) - failed_before
        # a measurement run's row (``role``) says whether it measured; the scenario it serves decides
        statuses = [_row_status(r) for r in stage["scenarios"] if not r.get("role")]
        statuses += ["failed"] if unexplained > 0 else []
        status = worst_status(statuses)
        if status != stage["status"]:
            stage["reason"] = f"judged again from {len(paths)} histories: {status}"
        stage["status"] = status


def rejudge(results: Path, tables: dict[str, Any] | None = None) -> Rejudged:
    """The run in ``results`` judged again, under the run's own thresholds or under ``tables``
    (a thresholds.toml as read, the run's profile applied to it)."""
    recorded = json.loads((results / "test_summary.json").read_text())
    summary = copy.deepcopy(recorded)
    if tables is not None:
        summary["thresholds"] = thresholds_for(tables, recorded.get("profile", "quick"))
    out = Rejudged(recorded, summary)
    for stage in summary["stages"]:
        _stage(results, stage, summary["thresholds"], out)
    summary["verdict"] = verdict_of([s["status"] for s in summary["stages"] if s["status"] != "skipped"])
    return out
