"""Live progress: tagged lines parsed into a status line, quiet off a terminal and in CI."""

from __future__ import annotations

import io

from wsrig.progress import COUNTERS_TAG, STEP_TAG, LiveLine, Tracker, frame_counters, live_enabled


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


def test_quiet_off_a_terminal_and_in_ci():
    """No live line on a pipe, with CI=true, or with RIG__PROGRESS=0."""

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert live_enabled(Tty(), {}) is True
    assert live_enabled(io.StringIO(), {}) is False
    assert live_enabled(Tty(), {"CI": "true"}) is False
    assert live_enabled(Tty(), {"RIG__PROGRESS": "0"}) is False


def test_disabled_live_line_writes_only_plain_lines():
    """Off a terminal, progress tags are swallowed and ordinary lines print without escapes."""
    out = io.StringIO()
    live = LiveLine("fault_tolerance", stream=out, enabled=False)
    assert live.feed(_step(1, 1, "t")) is None
    live.print("  [fault_tolerance] PASSED")
    live.clear()
    assert out.getvalue() == "  [fault_tolerance] PASSED\n"


def test_enabled_live_line_redraws_in_place():
    """On a terminal the status line is redrawn with a carriage return and cleared before text."""
    out = io.StringIO()
    live = LiveLine("fault_tolerance", stream=out, enabled=True)
    live.feed(_step(1, 2, "test_x"))
    live.print("hello")
    text = out.getvalue()
    assert text.startswith("\r\x1b[2Kfault_tolerance 1/2 test_x") and "\r\x1b[2Khello\n" in text


def test_frame_counters_latency_over_last_second():
    """Counters: all frames counted, p99 only over the last second of frames with ts_ns."""
    s = 1_000_000_000
    frames = [(10 * s, {"ts_ns": 10 * s - 500_000_000})] + [
        (20 * s + i, {"ts_ns": 20 * s + i - 2_000_000}) for i in range(5)
    ]
    out = frame_counters(frames)
    assert out == {"frames": 6, "p99_ms": 2.0}
    assert frame_counters([]) == {"frames": 0}
