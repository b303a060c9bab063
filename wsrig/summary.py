"""Build ``test_summary.json`` from a results folder: statuses, JUnit, stage records.

Pure but for reading files; validated against ``schemas/test_summary.schema.json``
before it is written, so an invalid summary fails loudly instead of misleading.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import wscontract

from wsrig.righealth import INVALID_PREFIX, worst_status
from wsrig.stages import STAGES

__all__ = [
    "EXIT_CODES",
    "InvalidSummary",
    "build_summary",
    "container_errors",
    "error_lines",
    "junit_counts",
    "verdict_of",
    "write_summary",
]


class InvalidSummary(ValueError):
    """The summary would not validate against its schema."""


# A log line that reports an error: level names as the services and the proxy log them,
# Python tracebacks, and JSON logs' "level": "error".
_ERROR_LINE = re.compile(r"\b(ERROR|CRITICAL|FATAL)\b|Traceback \(most recent call last\)|\"level\": ?\"error\"", re.I)


def error_lines(text: str, limit: int = 10, width: int = 300) -> tuple[int, list[str]]:
    """How many lines of a container log report an error, and the first ``limit`` of them."""
    hits = [line for line in text.splitlines() if _ERROR_LINE.search(line)]
    return len(hits), [h if len(h) <= width else h[: width - 3] + "..." for h in hits[:limit]]


def container_errors(results: Path, limit: int = 10) -> dict[str, dict[str, Any]]:
    """``{"container_x.log": {"count", "lines"}}`` for every container log in ``results``."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(results.glob("container_*.log")):
        count, lines = error_lines(path.read_text(errors="replace"), limit)
        out[path.name] = {"count": count, "lines": lines}
    return out


def junit_counts(path: Path) -> tuple[dict[str, int], list[dict[str, str]]]:
    """Test counts and one finding per failed or errored test case, and per invalid one.

    A test that ends invalid is a skip whose message starts with ``invalid:``
    (``wsrig.probe.conclude``); it is counted in ``invalid`` as well as ``skipped``.
    """
    counts = {"passed": 0, "failed": 0, "skipped": 0, "errors": 0, "invalid": 0}
    findings: list[dict[str, str]] = []
    if not path.is_file():
        return counts, findings
    root = ET.parse(path).getroot()
    for case in root.iter("testcase"):
        name = case.get("name", "?")
        failure = case.find("failure")
        error = case.find("error")
        if failure is not None or error is not None:
            node = failure if failure is not None else error
            assert node is not None
            key = "failed" if failure is not None else "errors"
            counts[key] += 1
            message = (node.get("message") or node.text or "").strip().splitlines()
            findings.append({"severity": "error", "message": f"{name}: {message[0][:400] if message else key}"})
        elif (skipped := case.find("skipped")) is not None:
            counts["skipped"] += 1
            why = (skipped.get("message") or "").strip()
            if why.startswith(("invalid:", "Skipped: invalid:")):
                counts["invalid"] += 1
                text = why.split("invalid:", 1)[1].strip()
                findings.append({"severity": "warning", "message": f"{name}: {text[:400]}"})
        else:
            counts["passed"] += 1
    return counts, findings


def _stage_entry(results: Path, name: str, selected: bool, flag: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": name,
        "status": "skipped",
        "reason": f"{flag}=false",
        "duration_s": 0.0,
        "tests": {"passed": 0, "failed": 0, "skipped": 0, "errors": 0},
        "metrics": {},
        "findings": [],
        "scenarios": [],
        "series": [],
        "pictures": [],
        "log": f"{name}.log",
        "junit": f"{name}.junit.xml",
    }
    if not selected:
        return entry
    status_file = results / f"{name}.status.json"
    if not status_file.is_file():
        entry.update(status="error", reason="the stage did not finish (no status file): interrupted or crashed")
        return entry
    status = json.loads(status_file.read_text())
    entry.update(
        status=status["status"], reason=status.get("reason", ""), duration_s=float(status.get("duration_s", 0.0))
    )
    counts, failures = junit_counts(results / f"{name}.junit.xml")
    entry["tests"] = counts
    record_file = results / f"{name}.record.json"
    if record_file.is_file():
        record = json.loads(record_file.read_text())
        entry["metrics"] = record.get("metrics", {})
        entry["scenarios"] = record.get("scenarios", [])
        entry["findings"] = list(record.get("findings", []))
        entry["series"] = list(record.get("series", []))
        entry["pictures"] = list(record.get("pictures", []))
    for f in failures:
        if f not in entry["findings"]:
            entry["findings"].append(f)
    if entry["status"] == "passed" and counts["passed"] == 0 and counts["invalid"] == 0:
        entry.update(status="error", reason="no test passed")
    if entry["status"] == "passed" and any(_row_failed(s) for s in entry["scenarios"]):
        entry.update(status="failed", reason="a scenario failed although its tests passed")
    if entry["status"] == "passed" and counts["invalid"]:
        why = next((f["message"] for f in failures if f["severity"] == "warning"), "")
        entry.update(status="invalid", reason=why or INVALID_PREFIX)
    return entry


def _row_failed(row: dict[str, Any]) -> bool:
    """A scenario row that failed; an ``invalid`` row (the rig could not measure) did not."""
    return row.get("status", "passed" if row.get("passed") else "failed") == "failed"


def verdict_of(statuses: list[str]) -> str:
    """The run's verdict: fail beats invalid beats pass (no stage selected: fail)."""
    if not statuses:
        return "fail"
    worst = worst_status(statuses)
    return {"passed": "pass", "invalid": "invalid"}.get(worst, "fail")


#: run_all_tests.sh's exit code for each verdict (README, docs): CI tells "the system is
#: broken" (1) from "this host could not judge" (3).
EXIT_CODES = {"pass": 0, "fail": 1, "invalid": 3}


def build_summary(
    results: Path,
    selected: dict[str, bool],
    *,
    suite_run_id: str,
    started_at: str,
    finished_at: str,
    environment: dict[str, Any],
    thresholds: dict[str, Any],
    profile: str = "quick",
) -> dict[str, Any]:
    """The whole run's summary; verdict is pass only if every selected stage passed."""
    stages = [_stage_entry(results, s.name, selected.get(s.name, False), s.flag) for s in STAGES]
    topology = str(environment.get("topology") or "single")
    for stage, entry in zip(STAGES, stages, strict=True):
        if entry["status"] == "skipped" and not stage.runs_in(topology):
            entry["reason"] = stage.not_in_topology(topology)
    chosen = [s for s in stages if selected.get(s["name"], False)]
    verdict = verdict_of([s["status"] for s in chosen])
    return {
        "schema_version": 1,
        "suite_run_id": suite_run_id,
        "started_at": started_at,
        "finished_at": finished_at,
        "verdict": verdict,
        "profile": profile,
        "environment": environment,
        "thresholds": thresholds,
        "stages": stages,
    }


def write_summary(summary: dict[str, Any], path: Path) -> None:
    """Validate, then write; raise ``InvalidSummary`` listing every problem."""
    problems = wscontract.validate_summary(summary)
    if problems:
        raise InvalidSummary("test_summary.json would be invalid:\n  " + "\n  ".join(problems))
    path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
