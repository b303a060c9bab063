"""Probes drive and record; judges decide (shared/DESIGN.md section 8).

A probe of a stage that records histories may read thresholds that shape what it does
(how long a fault holds, how many cycles), but it builds no finding, compares nothing
with a threshold and writes no verdict field itself. Stages still judging inside their
probes are listed, so the list can only shrink.
"""

from __future__ import annotations

import re

import pytest

from wsrig.config import repo_root
from wsrig.stages import STAGES

#: Stages whose probes still judge in place (issue "One history, one judge", remaining).
STILL_JUDGING_IN_PROBES: set[str] = set()

_VERDICT = [
    (re.compile(r"\bFinding\("), "builds a Finding"),
    (re.compile(r"[<>]=?\s*(?:float|int)?\(?\s*limits\["), "compares with a threshold"),
    (re.compile(r"\blimits\[[^\]]+\]\)?\s*[<>]"), "compares with a threshold"),
    (re.compile(r"\b(?:passed|trading_continued)\s*=\s*(?:True|False)\b"), "writes a verdict constant"),
    (re.compile(r"\b(?:lost|duplicated|reordered|undeclared_drops)\s*=\s*0\b"), "writes a verdict constant"),
    (re.compile(r"\.measure\("), "checks a threshold (StageRecord.measure)"),
    (re.compile(r"\.scenario\(\s*\"[\w-]+\"\s*,\s*(?:True|False)\b"), "writes a verdict constant"),
]


def _problems(text: str) -> list[str]:
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        for pattern, what in _VERDICT:
            if pattern.search(line):
                out.append(f"line {number}: {what}: {line.strip()}")
    return out


@pytest.mark.parametrize("stage", [s for s in STAGES if s.name not in STILL_JUDGING_IN_PROBES], ids=lambda s: s.name)
def test_a_recording_probe_decides_nothing(stage):
    problems = _problems(stage.probe_path(repo_root()).read_text())
    assert not problems, f"{stage.module} judges in the probe:\n" + "\n".join(problems)


def test_the_guard_sees_each_kind_of_verdict_in_a_probe():
    probe = """
    result.findings.append(Finding("error", "slow"))
    if summary.p99 > float(limits["slow_client_p99_ms"]):
    if float(limits["x"]) < value:
    row = dict(lost=0, duplicated=0, reordered=0, trading_continued=True)
    record.scenario("slow_subscriber", True, fault="slow client")
    record.measure("p99", p99, limits["p99_ms"])
    """
    kinds = {p.split(": ")[1] for p in _problems(probe)}
    assert kinds == {
        "builds a Finding",
        "compares with a threshold",
        "writes a verdict constant",
        "checks a threshold (StageRecord.measure)",
    }
    assert len(_problems(probe)) == 7
    assert not _problems('hold_s=float(limits[hold_key]),\ncycles = int(limits["reconnect_cycles"])')
