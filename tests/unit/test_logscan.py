"""Tests of wsrig.logscan: errors, warnings and tracebacks are found, allowed ones are not."""

from __future__ import annotations

from wsrig.logscan import scan_log

CLEAN = """2024-05-01T10:00:00.123Z 2024-05-01 10:00:00,123 INFO trading_bot.app: run abc: trading
2024-05-01T10:00:01.000Z 2024-05-01 10:00:01,000 INFO trading_bot.app: ticks=10 orders=2
"""


def test_clean_log_has_no_problem():
    """INFO lines (even ones mentioning errors in lower case) are not problems."""
    assert scan_log("bot", CLEAN + "INFO x: tick_errors=0 no error here\n") == []


def test_error_and_warning_lines_are_quoted():
    """An ERROR and a WARNING line are reported with their line number and text, timestamp dropped."""
    text = CLEAN + "2024-05-01T10:00:02Z 2024 WARNING trading_bot.publisher: disconnected from ws://x: boom\n"
    text += "2024 ERROR dashboard_backend: internal error in ingest (logged once)\n"
    problems = scan_log("bot", text)
    assert [(p.line_no, p.kind) for p in problems] == [(3, "warning"), (4, "error")]
    assert problems[0].text.startswith("2024 WARNING trading_bot.publisher: disconnected")
    assert "bot log line 4: unexpected error: 2024 ERROR dashboard_backend" in problems[1].message()


def test_traceback_is_one_problem_with_its_exception():
    """A logged exception and its traceback make one problem quoting the exception line."""
    text = (
        "2024 ERROR trading_bot.app: tick failed\n"
        "Traceback (most recent call last):\n"
        '  File "/app/trading_bot/app.py", line 170, in _trade_loop\n'
        "    self.sim.step(time.monotonic())\n"
        "ZeroDivisionError: float division by zero\n"
        "2024 INFO trading_bot.app: ticks=3\n"
    )
    problems = scan_log("bot", text)
    assert len(problems) == 1 and problems[0].kind == "traceback"
    assert "tick failed" in problems[0].text and "ZeroDivisionError: float division by zero" in problems[0].text


def test_bare_traceback_found():
    """A traceback printed without a log line (an uncaught exception) is found."""
    text = 'Traceback (most recent call last):\n  File "x", line 1\nRuntimeError: no\n'
    problems = scan_log("backend", text)
    assert len(problems) == 1 and "RuntimeError: no" in problems[0].text


def test_allow_list_suppresses_expected_lines_only():
    """An allow-list regex hides the line it matches and nothing else."""
    text = "WARNING publisher: handshake with ws://fault-proxy:9000/ws failed: refused\nERROR other: boom\n"
    problems = scan_log("bot", text, allow=[r"WARNING .*handshake with .* failed"])
    assert [p.text for p in problems] == ["ERROR other: boom"]
