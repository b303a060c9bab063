"""Live progress: tagged lines parsed into a status line, drawn with rich on a terminal,
quiet (plain lines only) off a terminal and in CI."""

from __future__ import annotations

import io
import re
import signal

import pytest
from rich.console import Console

from wsrig.progress import (
    COUNTERS_TAG,
    STEP_TAG,
    LiveDisplay,
    Tracker,
    frame_counters,
    live_enabled,
    status_view,
    terminal_display,
)


def _step(i: int, n: int, name: str) -> str:
    return STEP_TAG + f'{{"stage": "fault_tolerance", "scenario": "{name}", "i": {i}, "n": {n}}}\n'


def test_tracker_shows_stage_step_and_counters():
    """The status line names the stage, i/n, the scenario and the latest counters."""
    t = Tracker(started=0.0)
    assert t.feed(_step(1, 3, "test_bot_crash"), now=1.0) is None
    assert t.feed(COUNTERS_TAG + '{"frames": 120, "p99_ms": 4.2}\n', now=2.0) is None
    line = t.render(now=65.0)
    assert line.startswith("fault_tolerance 1/3 test_bot_crash") and "elapsed 1:05" in line
    assert "frames=120" in line and "p99_ms=4.2" in line and "remaining ?" in line


def test_remaining_from_finished_steps():
    """Remaining time = mean finished step x steps left, minus time in the current step."""
    t = Tracker(started=0.0)
    t.feed(_step(1, 4, "a"), now=0.0)
    t.feed(_step(2, 4, "b"), now=10.0)
    t.feed(_step(3, 4, "c"), now=30.0)  # steps took 10 s and 20 s: mean 15 s
    assert t.remaining_s(now=35.0) == 15.0 * 2 - 5.0


def test_tag_after_other_output_keeps_the_text():
    """pytest -v prints the test id, then the tag on the same line: the id stays for the log."""
    t = Tracker(started=0.0)
    rest = t.feed("tests/probes/x.py::test_a " + _step(1, 2, "test_a"), now=0.0)
    assert rest == "tests/probes/x.py::test_a\n" and t.i == 1
    assert t.feed("ordinary line\n", now=0.0) == "ordinary line\n"


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_quiet_off_a_terminal_and_in_ci():
    """No live display on a pipe, with CI=true, TERM=dumb, or with RIG__PROGRESS=0."""
    assert live_enabled(Tty(), {}) is True
    assert live_enabled(io.StringIO(), {}) is False
    assert live_enabled(Tty(), {"CI": "true"}) is False
    assert live_enabled(Tty(), {"TERM": "dumb"}) is False
    assert live_enabled(Tty(), {"RIG__PROGRESS": "0"}) is False
    # the final stage table follows the terminal alone, not RIG__PROGRESS
    assert terminal_display(Tty(), {"RIG__PROGRESS": "0", "TERM": "xterm"}) is True
    assert terminal_display(Tty(), {"CI": "true"}) is False


def test_disabled_live_display_writes_only_plain_lines():
    """Off a terminal, progress tags are swallowed and ordinary lines print without escapes."""
    out = io.StringIO()
    with LiveDisplay("fault_tolerance", stream=out, enabled=False) as live:
        assert live.feed(_step(1, 1, "t")) is None
        live.feed(COUNTERS_TAG + '{"frames": 3}\n')
        live.print("  [fault_tolerance] PASSED")
    assert out.getvalue() == "  [fault_tolerance] PASSED\n"


@pytest.mark.parametrize(("stream", "env"), [(io.StringIO(), {}), (Tty(), {"CI": "true"}), (Tty(), {"TERM": "dumb"})])
def test_not_a_tty_or_ci_gives_plain_lines_only(monkeypatch, stream, env):
    """Decided from the stream and the environment: a pipe, CI=true (GitHub Actions) or a
    dumb terminal get the plain lines, never a carriage return or an escape code."""
    monkeypatch.delenv("RIG__PROGRESS", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("CI", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with LiveDisplay("load", stream=stream, auto_refresh=False) as live:
        assert not live.enabled
        live.feed(_step(1, 2, "test_a"))
        live.print("  [load] [progress] 12:00:00 ramping up")
        live.feed(COUNTERS_TAG + '{"frames": 10}\n')
        live.print("  [load] PASSED")
    text = stream.getvalue()
    assert text == "  [load] [progress] 12:00:00 ramping up\n  [load] PASSED\n"
    assert "\r" not in text and "\x1b" not in text


def _terminal(monkeypatch, no_color: bool = False) -> tuple[io.StringIO, Console]:
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    else:
        monkeypatch.delenv("NO_COLOR", raising=False)
    out = io.StringIO()
    return out, Console(file=out, force_terminal=True, width=100)


def _shown(monkeypatch, no_color: bool = False) -> str:
    """A display fed like a stage: step 2 of 3 with counters, a plain line printed above it."""
    out, console = _terminal(monkeypatch, no_color)
    now = [100.0]
    live = LiveDisplay("fault_tolerance", enabled=True, console=console, clock=lambda: now[0], auto_refresh=False)
    with live:
        live.feed(_step(1, 3, "test_bot_crash"))
        now[0] = 130.0
        live.feed(_step(2, 3, "test_backend_hang"))
        now[0] = 165.0
        live.feed(COUNTERS_TAG + '{"frames": 120, "p99_ms": 4.2}\n')
        live.print("  [fault_tolerance] tests/probes/test_fault_tolerance.py::test_bot_crash PASSED")
    return out.getvalue()


def _plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


def _colour_codes(text: str) -> list[str]:
    """SGR sequences that set a foreground or background colour (bold, dim... are not colours)."""
    found = []
    for params in re.findall(r"\x1b\[([0-9;]*)m", text):
        codes = [int(p) for p in params.split(";") if p]
        if any(30 <= c <= 49 or 90 <= c <= 107 for c in codes):
            found.append(params)
    return found


def test_display_shows_stage_step_times_and_counters(monkeypatch):
    """On a terminal: stage, i/n and scenario, elapsed and remaining, the counters as a
    table, redrawn in place (cursor up, erase line), with the printed line above it."""
    text = _shown(monkeypatch)
    plain = _plain(text)
    assert "fault_tolerance" in plain and "2/3" in plain and "test_backend_hang" in plain
    assert "elapsed 1:05" in plain and "remaining ~0:25" in plain  # one 30 s step done: 30 x 2 - 35
    header = next(line for line in plain.splitlines() if "frames" in line)
    assert "p99_ms" in header
    assert re.search(r"120\s+4\.2", plain)
    assert "  [fault_tolerance] tests/probes/test_fault_tolerance.py::test_bot_crash PASSED\n" in plain
    assert "\x1b[2K" in text and "\x1b[1A" in text  # redrawn in place
    assert _colour_codes(text)  # colours, unless NO_COLOR


def test_no_color_display_has_no_colour_codes(monkeypatch):
    """NO_COLOR: the same display and fields, no colour codes."""
    text = _shown(monkeypatch, no_color=True)
    assert _colour_codes(text) == []
    plain = _plain(text)
    assert "2/3" in plain and "elapsed 1:05" in plain and "p99_ms" in plain


def test_display_before_the_first_step(monkeypatch):
    out, console = _terminal(monkeypatch)
    console.print(status_view(Tracker(started=0.0, stage="load"), now=7.0))
    assert _plain(out.getvalue()).strip() == "load  starting  elapsed 0:07"


def test_display_restores_sigterm_handling(monkeypatch):
    """While drawn, SIGTERM unwinds (so the cursor rich hides is shown again); then as before."""
    _out, console = _terminal(monkeypatch)
    before = signal.getsignal(signal.SIGTERM)
    with LiveDisplay("load", enabled=True, console=console, auto_refresh=False):
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before


def test_frame_counters_latency_over_last_second():
    """Counters: all frames counted, p99 only over the last second of frames with ts_ns."""
    s = 1_000_000_000
    frames = [(10 * s, {"ts_ns": 10 * s - 500_000_000})] + [
        (20 * s + i, {"ts_ns": 20 * s + i - 2_000_000}) for i in range(5)
    ]
    out = frame_counters(frames)
    assert out == {"frames": 6, "p99_ms": 2.0}
    assert frame_counters([]) == {"frames": 0}
