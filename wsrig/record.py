"""What a stage measured: metrics, threshold checks, scenarios and findings.

Probes write into one ``StageRecord`` per stage run; it is saved as
``<stage>.record.json`` beside the JUnit file and folded into ``test_summary.json``.
Plain data with ``serialize()``, as locust's stats are.

Time series (latency over time, throughput, container resources) are CSV files in
the results folder, registered with ``series()`` so the report and its charts find
them: ``{"name", "kind", "file", "columns", "unit"}``; the first column is always
``t`` (Unix seconds) so fault windows (``scenario["fault_window"]``) line up.
"""

from __future__ import annotations

import csv
import json
import operator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Check", "StageRecord", "scenario_row"]

_OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt, "==": operator.eq}


def scenario_row(
    name: str, fault: str, findings: list[Any], status: str | None = None, **fields: Any
) -> dict[str, Any]:
    """A judged scenario row, as every judge returns it and ``StageRecord.scenario`` keeps it.
    Its verdict is derived from the findings (an error fails it) unless the judge names one
    (``invalid``: the rig could not measure)."""
    if status is None:
        status = "failed" if any(f.severity == "error" for f in findings) else "passed"
    return {
        "name": name,
        "fault": fault,
        "passed": status == "passed",
        "status": status,
        **fields,
        "findings": [f.serialize() for f in findings],
    }


@dataclass
class Check:
    """One measured value against its threshold, as the report prints it."""

    name: str
    value: Any
    threshold: Any = None
    op: str = "<="
    unit: str = ""

    @property
    def passed(self) -> bool:
        if self.threshold is None:
            return True
        return bool(_OPS[self.op](self.value, self.threshold))

    def breach(self) -> str:
        """The finding's words when the value breaks its threshold."""
        return f"{self.name} = {self.value}{self.unit} breaks the threshold {self.op} {self.threshold}{self.unit}"

    def finding(self) -> Any:
        """The error finding of a broken threshold, naming this check and its figures."""
        from wsrig.checkers import Finding

        evidence = {"value": self.value, "threshold": self.threshold, "op": self.op}
        return Finding("error", self.breach(), check=self.name, evidence=evidence)

    def serialize(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "threshold": self.threshold,
            "op": self.op,
            "unit": self.unit,
            "passed": self.passed,
        }


@dataclass
class StageRecord:
    """Everything one stage wants in the summary besides its test counts."""

    stage: str
    metrics: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    scenarios: list[dict[str, Any]] = field(default_factory=list)
    findings: list[dict[str, str]] = field(default_factory=list)
    series: list[dict[str, Any]] = field(default_factory=list)
    #: screenshots (or any picture) in the results folder: ``{"file", "title"}``, shown inline in the report
    pictures: list[dict[str, str]] = field(default_factory=list)

    def measure(self, name: str, value: Any, threshold: Any = None, op: str = "<=", unit: str = "") -> Check:
        """Record a value (and its threshold); returns the check so the probe can assert."""
        check = Check(name, value, threshold, op, unit)
        self.checks = [c for c in self.checks if c.name != name] + [check]
        if not check.passed:
            self.finding("error", check.breach())
        return check

    def finding(self, severity: str, message: str) -> None:
        item = {"severity": severity, "message": message}
        if item not in self.findings:
            self.findings.append(item)

    def retract_finding(self, message: str) -> None:
        """Withdraw an error finding a check added, once the scenario is known to be invalid."""
        self.findings = [f for f in self.findings if f["message"] != message]

    def scenario(self, name: str, passed: bool, **fields: Any) -> dict[str, Any]:
        item = {"name": name, "passed": passed, **fields}
        self.scenarios = [s for s in self.scenarios if s.get("name") != name] + [item]
        return item

    def add_series(
        self,
        results: Path,
        name: str,
        kind: str,
        columns: list[str],
        rows: list[list[Any]] | list[tuple[Any, ...]],
        unit: str = "",
    ) -> Path:
        """Write ``<stage>.<name>.csv`` (first column ``t``, Unix s) and register it.

        ``kind`` tells the report how to draw it: ``latency``, ``throughput`` or ``resources``.
        """
        if not columns or columns[0] != "t":
            raise ValueError(f"series {name!r}: the first column must be 't' (Unix seconds), got {columns!r}")
        path = results / f"{self.stage}.{name}.csv"
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(columns)
            writer.writerows(rows)
        item = {"name": name, "kind": kind, "file": path.name, "columns": columns, "unit": unit}
        self.series = [s for s in self.series if s["name"] != name] + [item]
        return path

    def add_picture(self, file: str, title: str) -> None:
        """Show ``file`` (already in the results folder) in the stage's section of the report."""
        self.pictures = [p for p in self.pictures if p["file"] != file] + [{"file": file, "title": title}]

    def serialize(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "metrics": {**self.metrics, "checks": [c.serialize() for c in self.checks]},
            "scenarios": self.scenarios,
            "findings": self.findings,
            "series": self.series,
            "pictures": self.pictures,
        }

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.serialize(), indent=2, default=str))

    @classmethod
    def load(cls, path: Path) -> dict[str, Any]:
        return dict(json.loads(path.read_text()))
