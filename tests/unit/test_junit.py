"""The merged JUnit file: every stage's suites, totals, and stand-ins for missing stages."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from _report_fixtures import stage, summary

from wsrig.junit import merge_files, merge_junit

PYTEST_JUNIT = """<?xml version="1.0"?><testsuites><testsuite name="{name}" tests="2" failures="{f}" errors="0"
skipped="0" time="1.5"><testcase classname="c" name="test_a"/><testcase classname="c" name="test_b">{fail}</testcase>
</testsuite></testsuites>"""


def _junit(name: str, failed: bool = False) -> ET.Element:
    fail = '<failure message="LOST 3">x</failure>' if failed else ""
    return ET.fromstring(PYTEST_JUNIT.format(name=name, f=int(failed), fail=fail))


def test_suites_copied_and_totals_summed():
    """Both stages' suites are in one file; totals add up across them."""
    s = summary([stage("connectivity"), stage("fault_tolerance", "failed"), stage("load", "skipped")])
    merged = merge_junit(
        s, {"connectivity": _junit("connectivity"), "fault_tolerance": _junit("fault_tolerance", True)}
    )
    assert [x.get("name") for x in merged.iter("testsuite")] == ["connectivity", "fault_tolerance"]
    assert merged.get("tests") == "4" and merged.get("failures") == "1" and merged.get("time") == "3.000"


def test_not_run_and_crashed_stages_are_not_green():
    """A selected stage with no JUnit shows as a failing or erroring case, never as passed."""
    s = summary([stage("security", "not_run", reason="not built yet"), stage("load", "error", reason="crashed")])
    merged = merge_junit(s, {})
    cases = {c.get("classname"): c for c in merged.iter("testcase")}
    assert cases["wsrig.security"].find("failure") is not None
    assert cases["wsrig.load"].find("error") is not None
    assert merged.get("failures") == "1" and merged.get("errors") == "1"


def test_merge_files_writes_parseable_xml(tmp_path):
    """junit.xml lands beside the per-stage files and parses back; a truncated file is a stand-in."""
    (tmp_path / "connectivity.junit.xml").write_text(PYTEST_JUNIT.format(name="connectivity", f=0, fail=""))
    (tmp_path / "message_flow.junit.xml").write_text("<testsuites><testsuite")
    s = summary([stage("connectivity"), stage("message_flow", "error", reason="interrupted")])
    out = merge_files(s, tmp_path)
    root = ET.parse(out).getroot()
    assert out.name == "junit.xml" and root.get("tests") == "3" and root.get("errors") == "1"


def test_a_stage_failed_by_the_summary_is_not_green_when_its_tests_passed():
    """The summary can fail a stage whose pytest cases all passed (a scenario row failed):
    the merged file adds a failing 'stage verdict' case; a stage pytest failed gets none."""
    s = summary([
        stage("integration", "failed", reason="a scenario failed although its tests passed"),
        stage("fault_tolerance", "failed"),
        stage("load", "error", reason="no test passed"),
    ])  # fmt: skip
    merged = merge_junit(
        s, {n: _junit(n, failed=n == "fault_tolerance") for n in ("integration", "fault_tolerance", "load")}
    )
    verdicts = {c.get("classname"): c for c in merged.iter("testcase") if c.get("name") == "stage verdict"}
    assert set(verdicts) == {"wsrig.integration", "wsrig.load"}
    failure = verdicts["wsrig.integration"].find("failure")
    assert failure is not None and failure.get("message") == "failed: a scenario failed although its tests passed"
    assert verdicts["wsrig.load"].find("error") is not None
    assert merged.get("tests") == "8" and merged.get("failures") == "2" and merged.get("errors") == "1"
