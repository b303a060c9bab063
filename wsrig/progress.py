"""Live progress of a long stage: which stage and scenario, elapsed and remaining, counters.

Why two halves: the probes run inside a pytest subprocess whose stdout is a pipe, so
they cannot draw on the terminal themselves. They *emit* tagged lines
(``step()``, ``counters()``); the stage runner, whose stdout is the user's terminal,
*feeds* each line to a ``Tracker`` (pure state, no I/O) and a ``LiveLine`` redraws one
status line from it. ``LiveLine`` is quiet when stdout is not a TTY or ``CI=true``
(logs and CI get the plain ``[progress]`` lines instead, never carriage returns).

The pytest hooks in ``tests/probes/conftest.py`` call ``step()`` for every test, so
every stage gets ``i/n`` and a remaining-time estimate without code of its own;
scenario runners add ``counters()`` (``start_ticker`` does it once a second).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

__all__ = [
    "COUNTERS_TAG",
    "STEP_TAG",
    "LiveLine",
    "Tracker",
    "counters",
    "frame_counters",
    "live_enabled",
    "start_ticker",
    "step",
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


def live_enabled(stream: TextIO, environ: dict[str, str] | None = None) -> bool:
    """A live line only on a terminal and never in CI (``CI=true``) or with RIG__PROGRESS=0."""
    env = os.environ if environ is None else environ
    if env.get("CI", "").strip().lower() in ("true", "1", "yes"):
        return False
    if env.get("RIG__PROGRESS", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


class LiveLine:
    """One status line redrawn in place; ordinary lines are printed above it."""

    def __init__(self, stage: str, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.enabled = live_enabled(self.stream) if enabled is None else enabled
        self.tracker = Tracker(time.monotonic(), stage=stage)
        self._shown = False

    def feed(self, line: str) -> str | None:
        """Feed one output line of the probes; returns what is left for the log, if any."""
        rest = self.tracker.feed(line, time.monotonic())
        if rest is not line:
            self.redraw()
        return rest

    def print(self, text: str) -> None:
        self.clear()
        print(text, file=self.stream, flush=True)
        self.redraw()

    def redraw(self) -> None:
        if not self.enabled:
            return
        self.stream.write("\r\x1b[2K" + self.tracker.render(time.monotonic()))
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        if self.enabled and self._shown:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self._shown = False
