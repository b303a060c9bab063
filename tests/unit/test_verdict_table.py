"""The verdict line and per-stage table at the end of a run: today's plain text off a
terminal (CI logs and the README quote it), a rich table on one."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from _report_fixtures import stage, summary
from rich.console import Console

from wsrig import cli

RESULTS = Path("results/full_suite_20261121_000000")


def _run() -> dict:
    return summary(
        [
            stage("connectivity", duration_s=12.25),
            stage("fault_tolerance", "failed", duration_s=301.0, reason="a scenario failed although its tests passed"),
            stage("browser", "not_run", duration_s=0.0, reason="not built yet"),
        ],
        verdict="fail",
    )


def test_plain_lines_keep_their_format():
    assert cli.verdict_lines(_run(), RESULTS) == [
        "verdict: FAIL  (results/full_suite_20261121_000000/test_report.md)",
        "  connectivity     passed      12.2s  ",
        "  fault_tolerance  failed     301.0s  a scenario failed although its tests passed",
        "  browser          not_run      0.0s  not built yet",
    ]
    invalid = summary([stage("load", "invalid", reason="rig starved")], verdict="invalid")
    assert cli.verdict_lines(invalid, RESULTS)[-1] == (
        "INVALID: the rig could not measure on this host (exit 3); no stage failed"
    )


def test_off_a_terminal_the_plain_text_is_printed(capsys):
    """pytest's captured stdout is not a TTY: exactly the plain lines, no escape code."""
    with pytest.raises(SystemExit) as exit_:
        cli._echo_verdict(_run(), RESULTS)
    assert exit_.value.code == 1
    out = capsys.readouterr().out
    assert out == "\n".join(cli.verdict_lines(_run(), RESULTS)) + "\n"
    assert "\x1b" not in out


def test_on_a_terminal_a_rich_table(monkeypatch):
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = io.StringIO()
    Console(file=out, force_terminal=True, width=100).print(cli.verdict_view(_run(), RESULTS))
    text = out.getvalue()
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)
    lines = plain.splitlines()
    assert lines[0] == "verdict: FAIL  (results/full_suite_20261121_000000/test_report.md)"
    assert re.search(r"stage\s+status\s+duration\s+reason", plain) and "───" in plain
    assert re.search(r"fault_tolerance\s+failed\s+301\.0s\s+a scenario failed although its tests passed", plain)
    assert re.search(r"connectivity\s+passed\s+12\.2s", plain) and re.search(r"browser\s+not_run\s+0\.0s", plain)
    assert "\x1b[" in text and "INVALID" not in plain
