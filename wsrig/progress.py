"""Live progress of a long stage: which stage and scenario, elapsed and remaining, counters.

Why two halves: the probes run inside a pytest subprocess whose stdout is a pipe, so
they cannot draw on the terminal themselves. They *emit* tagged lines
(``step()``, ``counters()``); the stage runner, whose stdout is the user's terminal,
*feeds* each line to a ``Tracker`` (pure state, no I/O) and a ``LiveDisplay`` (a rich
``Live``) redraws a small status display from it. ``LiveDisplay`` is quiet when stdout is
not a TTY, with ``CI=true`` or ``TERM=dumb`` (logs and CI get the plain ``[progress]``
lines instead, never carriage returns or escape codes); ``NO_COLOR`` drops its colours.

The pytest hooks in ``tests/probes/conftest.py`` call ``step()`` for every test, so
every stage gets ``i/n`` and a remaining-time estimate without code of its own;
scenario runners add ``counters()`` (``start_ticker`` does it once a second).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

__all__ = [
    "COUNTERS_TAG",
    "STEP_TAG",
    "LiveDisplay",
    "Tracker",
    "counters",
    "frame_counters",
    "live_enabled",
    "start_ticker",
    "status_view",
    "step",
    "terminal_display",
]

STEP_TAG = "[progress:step] "
COUNTERS_TAG = "[progress:counters] "


# ---- emitting (inside the probe process) ------------------------------------------


def step(stage: str, scenario: str, i: int, n: int) -> None:
    """Say that step ``i`` of ``n`` (1-based) of ``stage`` starts: ``scenario``."""
    _emit(STEP_TAG, {"stage": stage, "scenario": scenario, "i": i, "n": n})


def counters(**values: Any) -> None:
    """Live figures of the current step (messages seen, latency, ...); replace the last ones."""
    _emit(COUNTERS_TAG, values)


def _emit(tag: str, payload: dict[str, Any]) -> None:
    print(tag + json.dumps(payload, default=str), flush=True)


def frame_counters(frames: list[tuple[int, dict[str, Any]]], window_s: float = 1.0) -> dict[str, Any]:
    """Counters from a recording client's ``(receive ns, frame)`` list: total frames and
    the end-to-end latency (p99, ms) over the last ``window_s`` of frames."""
    out: dict[str, Any] = {"frames": len(frames)}
    if not frames:
        return out
    last_ns = frames[-1][0]
    recent: list[float] = []
    for recv_ns, frame in reversed(frames[-5000:]):
        if last_ns - recv_ns > window_s * 1e9:
            break
        if "ts_ns" in frame:
            recent.append((recv_ns - int(frame["ts_ns"])) / 1e6)
    if recent:
        recent.sort()
        out["p99_ms"] = round(recent[min(len(recent) - 1, int(0.99 * len(recent)))], 1)
    return out


def start_ticker(read: Callable[[], dict[str, Any]], every_s: float = 1.0) -> asyncio.Task[None]:
    """Emit ``counters(**read())`` every ``every_s`` until the returned task is cancelled."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(every_s)
            with contextlib.suppress(Exception):  # a progress figure must never fail a probe
                counters(**read())

    return asyncio.create_task(loop())


# ---- following (in the stage runner): pure state ------------------------------------


@dataclass
class Tracker:
    """What the status line shows, rebuilt from tagged lines; ``now`` is passed in."""

    started: float
    stage: str = ""
    scenario: str = ""
    i: int = 0
    n: int = 0
    step_started: float = 0.0
    done_durations: list[float] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)

    def feed(self, line: str, now: float) -> str | None:
        """Take one output line; returns what is left for the log (None: nothing).

        A tag may follow other output on the same line (pytest -v prints the test id,
        then the test's first print), so the text before the tag is kept.
        """
        at = min((i for i in (line.find(STEP_TAG), line.find(COUNTERS_TAG)) if i >= 0), default=-1)
        if at < 0:
            return line
        rest, tagged = line[:at], line[at:]
        if tagged.startswith(STEP_TAG):
            data = _load(tagged[len(STEP_TAG) :])
            if self.i and int(data.get("i", 0)) > self.i:
                self.done_durations.append(now - self.step_started)
            self.stage = str(data.get("stage", self.stage))
            self.scenario = str(data.get("scenario", ""))
            self.i, self.n = int(data.get("i", 0)), int(data.get("n", 0))
            self.step_started = now
            self.values = {}
        else:
            self.values = _load(tagged[len(COUNTERS_TAG) :])
        return rest.rstrip() + "\n" if rest.strip() else None

    def remaining_s(self, now: float) -> float | None:
        """Mean duration of the finished steps times the steps left (None before one ends)."""
        if not self.done_durations or not self.n:
            return None
        mean = sum(self.done_durations) / len(self.done_durations)
        in_step = now - self.step_started
        return max(0.0, mean * (self.n - self.i + 1) - in_step)

    def render(self, now: float, width: int = 120) -> str:
        if not self.i:
            return f"{self.stage or 'stage'}: starting  elapsed {_clock(now - self.started)}"
        left = self.remaining_s(now)
        parts = [
            f"{self.stage} {self.i}/{self.n} {self.scenario}",
            f"elapsed {_clock(now - self.started)}",
            f"remaining ~{_clock(left)}" if left is not None else "remaining ?",
            *(f"{k}={v}" for k, v in self.values.items()),
        ]
        text = "  ".join(parts)
        return text if len(text) <= width else text[: width - 3] + "..."


def _load(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _clock(seconds: float) -> str:
    s = int(max(0.0, seconds))
    return f"{s // 60}:{s % 60:02d}"


# ---- drawing (in the stage runner): the only I/O --------------------------------------


def _off(value: str | None) -> bool:
    return (value or "").strip().lower() in ("0", "false", "no", "off")


def terminal_display(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``stream`` takes a drawn display: a TTY, not CI (``CI=true``), not ``TERM=dumb``.

    Everywhere else (pipes, log files, CI logs) the rig writes plain lines only: never a
    carriage return or an escape code.
    """
    env = os.environ if environ is None else environ
    if env.get("CI", "").strip().lower() in ("true", "1", "yes"):
        return False
    if env.get("TERM", "").strip().lower() in ("dumb", "unknown"):
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


def live_enabled(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """A live display only on a terminal (``terminal_display``) and not with RIG__PROGRESS=0."""
    env = os.environ if environ is None else environ
    return not _off(env.get("RIG__PROGRESS", "1")) and terminal_display(stream, env)


def status_view(tracker: Tracker, now: float) -> RenderableType:
    """What the live display shows: the stage, step i/n and its scenario, elapsed and
    remaining time, and the step's counters as a small table."""
    elapsed = Text.assemble(("elapsed ", "dim"), _clock(now - tracker.started))
    if not tracker.i:
        return Text.assemble((tracker.stage or "stage", "bold cyan"), "  starting  ", elapsed)
    line = Table.grid(padding=(0, 1))
    line.add_column(no_wrap=True)
    line.add_column(no_wrap=True)
    line.add_column(no_wrap=True)
    line.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
    line.add_row(
        Text(tracker.stage, style="bold cyan"),
        ProgressBar(total=max(tracker.n, 1), completed=max(tracker.i - 1, 0), width=20),
        Text(f"{tracker.i}/{tracker.n}", style="bold"),
        Text(tracker.scenario),
    )
    left = tracker.remaining_s(now)
    times = Text.assemble(
        elapsed,
        "  ",
        ("remaining ", "dim"),
        (f"~{_clock(left)}", "yellow") if left is not None else ("?", "dim"),
    )
    if not tracker.values:
        return Group(line, times)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for key in tracker.values:
        table.add_column(str(key), justify="right", no_wrap=True, overflow="ellipsis")
    table.add_row(*(str(v) for v in tracker.values.values()))
    return Group(line, times, table)


class LiveDisplay:
    """The stage's live display (a rich ``Live``), redrawn in place; ordinary lines are
    printed above it. Off (see ``live_enabled``), progress tags are only swallowed and
    ordinary lines are printed as they are: no carriage return, no escape code.

    Use it as a context manager (or call ``close()``): the display is erased at the end.
    """

    def __init__(
        self,
        stage: str,
        stream: TextIO | None = None,
        enabled: bool | None = None,
        console: Console | None = None,
        clock: Callable[[], float] = time.monotonic,
        auto_refresh: bool = True,
    ) -> None:
        self.stream = stream or sys.stdout
        self.enabled = live_enabled(self.stream) if enabled is None else enabled
        self.clock = clock
        self.tracker = Tracker(clock(), stage=stage)
        self.console = console
        self.auto_refresh = auto_refresh
        self._live: Live | None = None
        self._sigterm: tuple[Any] | None = None  # the handler before ours, while ours is set

    def __enter__(self) -> LiveDisplay:
        self.redraw()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def view(self) -> RenderableType:
        return status_view(self.tracker, self.clock())

    def feed(self, line: str) -> str | None:
        """Feed one output line of the probes; returns what is left for the log, if any."""
        rest = self.tracker.feed(line, self.clock())
        if rest is not line:
            self.redraw()
        return rest

    def print(self, text: str) -> None:
        if not self.enabled:
            print(text, file=self.stream, flush=True)
            return
        self._start().console.print(text, markup=False, highlight=False, emoji=False, soft_wrap=True)

    def redraw(self) -> None:
        if self.enabled:
            self._start().refresh()

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()  # erases the display and shows the cursor again
            self._live = None
        if self._sigterm is not None:
            signal.signal(signal.SIGTERM, self._sigterm[0] if self._sigterm[0] is not None else signal.SIG_DFL)
            self._sigterm = None

    def _start(self) -> Live:
        if self._live is None:
            console = self.console or Console(file=self.stream)
            self._live = Live(
                console=console,
                get_renderable=self.view,
                auto_refresh=self.auto_refresh,
                refresh_per_second=2,
                transient=True,  # erased at the end, as the stage's last lines are printed above it
            )
            if threading.current_thread() is threading.main_thread():
                # run_all_tests.sh stops a stage with SIGTERM: unwind (close() restores the
                # cursor the display hides) instead of dying with the terminal half-drawn
                self._sigterm = (signal.signal(signal.SIGTERM, _exit_on_sigterm),)
            self._live.start()
        return self._live


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)
