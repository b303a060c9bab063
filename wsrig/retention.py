"""Keep the last N runs in ``results/``: prune the oldest ``full_suite_*`` folders only.

Why: every run leaves logs, CSVs and charts; a long-lived CI machine or laptop would
fill up. Only folders named ``full_suite_<YYYYMMDD_HHMMSS>`` are candidates (selftest,
adhoc and anything a user made are never touched), ordered by that timestamp, and the
one ``results/latest`` points at is always kept. ``runs_to_prune`` is the pure choice.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

__all__ = ["DEFAULT_KEEP", "prune_runs", "runs_to_prune"]

DEFAULT_KEEP = 20
_RUN = re.compile(r"^full_suite_\d{8}_\d{6}$")


def runs_to_prune(names: list[str], keep: int, protect: set[str] | None = None) -> list[str]:
    """The run folder names to delete so that ``keep`` remain (oldest first); ``keep < 1``
    keeps everything, so a mistyped setting never wipes the history."""
    if keep < 1:
        return []
    runs = sorted(n for n in names if _RUN.match(n))
    doomed = runs[: max(0, len(runs) - keep)]
    return [n for n in doomed if n not in (protect or set())]


def prune_runs(results: Path, keep: int) -> list[Path]:
    """Delete the oldest run folders under ``results`` beyond ``keep``; returns what went."""
    if not results.is_dir():
        return []
    latest = results / "latest"
    protect = {latest.resolve().name} if latest.is_symlink() else set()
    names = [p.name for p in results.iterdir() if p.is_dir() and not p.is_symlink()]
    removed = []
    for name in runs_to_prune(names, keep, protect):
        shutil.rmtree(results / name, ignore_errors=True)
        removed.append(results / name)
    return removed
