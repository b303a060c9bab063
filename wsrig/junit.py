"""One JUnit XML for the whole run, beside the per-stage files.

Why: CI test publishers (GitHub's test reporters, GitLab, Jenkins) take one file and
show every stage's tests together. Each stage's ``<testsuite>`` elements are copied
unchanged; a stage that was selected but left no JUnit (``not_run``, crashed) gets a
one-case suite that fails, and so does a stage the summary failed although its pytest
cases did not (a scenario row failed, no test passed), so the merged file never looks
greener than the verdict. Pure: parsed trees in, a tree out; ``merge_files`` is the thin
file-reading wrapper.

Why not pytest's own file: pytest's JUnit already says everything per test, and this
module copies it unchanged (scenario rows are pytest's test cases; an invalid scenario
is pytest's skip whose message starts ``invalid:``, ``wsrig.probe.conclude``). But each
stage is its own pytest process (``wsrig.stages.run_stage``), so pytest writes one file
per stage and none for a stage it never ran: a ``not_run`` stage, one killed before
pytest wrote its file, one whose file was cut off, or one the summary judged failed
from its record while every test passed. Those verdicts exist only in the summary; the
stand-in cases carry them into the file CI shows.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

__all__ = ["MERGED_NAME", "merge_files", "merge_junit"]

MERGED_NAME = "junit.xml"
_COUNTS = ("tests", "failures", "errors", "skipped")


def _suites(root: ET.Element) -> list[ET.Element]:
    return [root] if root.tag == "testsuite" else list(root.iter("testsuite"))


def _stand_in(stage: dict[str, Any], case_name: str = "stage") -> ET.Element:
    """A suite for a selected stage whose verdict its JUnit does not carry: one case saying why
    (a failure for ``not_run`` and ``failed``, an error otherwise)."""
    suite = ET.Element("testsuite", name=stage["name"], tests="1", failures="0", errors="0", skipped="0", time="0")
    case = ET.SubElement(suite, "testcase", classname=f"wsrig.{stage['name']}", name=case_name, time="0")
    status = stage["status"]
    reason = stage.get("reason") or status
    if status in ("not_run", "failed"):
        ET.SubElement(case, "failure", message=f"{status.replace('_', ' ')}: {reason}", type=status)
        suite.set("failures", "1")
    else:
        ET.SubElement(case, "error", message=f"{status}: {reason}", type=status)
        suite.set("errors", "1")
    return suite


def _bad(suites: list[ET.Element]) -> int:
    return sum(int(s.get(k, "0") or 0) for s in suites for k in ("failures", "errors"))


def merge_junit(summary: dict[str, Any], trees: dict[str, ET.Element]) -> ET.Element:
    """``<testsuites>`` with every stage's suites in stage order and the totals.

    ``trees``: stage name -> parsed root of ``<stage>.junit.xml`` (absent if none).
    Skipped stages (RUN_*=false) are left out; they ran nothing.
    """
    merged = ET.Element("testsuites", name=f"wsrig {summary.get('suite_run_id', '')}".strip())
    totals = dict.fromkeys(_COUNTS, 0)
    total_time = 0.0
    for stage in summary.get("stages", []):
        if stage["status"] == "skipped":
            continue
        root = trees.get(stage["name"])
        suites = _suites(root) if root is not None else []
        if not suites or stage["status"] == "not_run":
            suites = [_stand_in(stage)]
        elif stage["status"] in ("failed", "error") and not _bad(suites):  # the summary's verdict, not pytest's
            suites.append(_stand_in(stage, "stage verdict"))
        for suite in suites:
            suite.set("name", stage["name"] if suite.get("name") in (None, "", "pytest") else suite.get("name", ""))
            merged.append(suite)
            for key in _COUNTS:
                totals[key] += int(suite.get(key, "0") or 0)
            total_time += float(suite.get("time", "0") or 0)
    for key, value in totals.items():
        merged.set(key, str(value))
    merged.set("time", f"{total_time:.3f}")
    return merged


def merge_files(summary: dict[str, Any], results: Path) -> Path:
    """Read each stage's JUnit from ``results``, write ``results/junit.xml``; returns its path."""
    trees: dict[str, ET.Element] = {}
    for stage in summary.get("stages", []):
        path = results / stage.get("junit", f"{stage['name']}.junit.xml")
        if path.is_file():
            try:
                trees[stage["name"]] = ET.parse(path).getroot()
            except ET.ParseError:
                continue  # a truncated file (killed run): the stand-in suite says so
    out = results / MERGED_NAME
    tree = ET.ElementTree(merge_junit(summary, trees))
    ET.indent(tree)
    tree.write(out, encoding="utf-8", xml_declaration=True)
    return out
