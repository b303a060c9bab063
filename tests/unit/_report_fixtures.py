"""Summaries shaped like real runs, shared by the report, chart, JUnit and compare tests."""

from __future__ import annotations

import copy
from typing import Any

T0 = 1795252241.0


def fault_scenario(name: str, start: float, passed: bool = True, **fields: Any) -> dict[str, Any]:
    findings = [] if passed else [{"severity": "error", "message": fields.pop("why", f"{name}: LOST 3 message(s)")}]
    return {
        "name": name, "passed": passed, "fault": "crash", "lost": 0 if passed else 3, "duplicated": 0,
        "reordered": 0, "undeclared_drops": 0, "declared_dropped": 0, "recovery_s": 0.8,
        "trading_continued": True, "findings": findings,
        "fault_window": {"fault": "crash", "injected_at": T0 + start, "healed_at": T0 + start + 5, "duration_s": 5.0},
        **fields,
    }  # fmt: skip


def summary(stages: list[dict[str, Any]] | None = None, verdict: str = "pass") -> dict[str, Any]:
    return {
        "schema_version": 1, "suite_run_id": "20261121_000000", "started_at": "2026-11-21T00:00:00+00:00",
        "finished_at": "2026-11-21T00:02:00+00:00", "verdict": verdict, "profile": "quick",
        "environment": {"git_sha": "abc", "docker_version": "d", "compose_version": "c", "images": {}, "host": {}},
        "thresholds": {}, "stages": stages or [],
    }  # fmt: skip


def stage(name: str, status: str = "passed", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": name, "status": status, "reason": "", "duration_s": 12.5,
        "tests": {"passed": 2, "failed": 0 if status == "passed" else 1, "skipped": 0, "errors": 0},
        "metrics": {}, "findings": [], "scenarios": [], "series": [],
        "log": f"{name}.log", "junit": f"{name}.junit.xml",
    }  # fmt: skip
    base.update(fields)
    return base


def failing_fault_run() -> dict[str, Any]:
    """One fault scenario failed (with its finding), two passed; connectivity passed."""
    scenarios = [
        fault_scenario("dashboard_offline_at_startup", 0),
        fault_scenario("dashboard_crash", 10, passed=False, why="bot did not settle within 60s (acked_seq 185)"),
        fault_scenario("backend_hang", 20),
    ]
    conn = stage("connectivity", metrics={"checks": [
        {"name": "handshake_p99_ms", "value": 12.0, "threshold": 100, "op": "<=", "unit": " ms", "passed": True},
    ]})  # fmt: skip
    fault = stage(
        "fault_tolerance", "failed", scenarios=scenarios,
        findings=[{"severity": "error", "message": "dashboard_crash: bot did not settle within 60s (acked_seq 185)"}],
        series=[{"name": "dashboard_crash_latency", "kind": "latency", "file": "fault_tolerance.dashboard_crash_latency.csv",
                 "columns": ["t", "p50_ms", "p99_ms", "max_ms", "count"], "unit": "ms"}],
    )  # fmt: skip
    return summary([conn, fault], verdict="fail")


def clone(value: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(value)
