"""Scan a container's log for errors, tracebacks and warnings, minus an allow-list.

Pure: text in, findings out. A traceback is one problem (its header and indented
lines are quoted together); an error or warning line is matched by its level word.
Expected lines are allowed by regular expressions from config/thresholds.toml
(``log_allow`` of the stage), so anything new fails the stage and is quoted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["LogProblem", "scan_log"]

#: Level words as Python's logging (and most servers) print them, as whole words.
_LEVEL = re.compile(r"\b(ERROR|CRITICAL|FATAL|WARNING|WARN|PANIC)\b|\bTraceback \(most recent call last\)")
#: ``docker logs --timestamps`` prefix, dropped before matching and quoting.
_DOCKER_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z ")
MAX_QUOTE = 400


@dataclass(frozen=True)
class LogProblem:
    """One unexpected log entry: where, what kind, and the quoted text."""

    source: str
    line_no: int
    kind: str  # "traceback" | "error" | "warning"
    text: str

    def message(self) -> str:
        return f"{self.source} log line {self.line_no}: unexpected {self.kind}: {self.text[:MAX_QUOTE]}"


def _kind(match: re.Match[str]) -> str:
    word = match.group(1)
    if word is None:
        return "traceback"
    return "warning" if word.startswith("WARN") else "error"


def scan_log(source: str, text: str, allow: Iterable[str] = ()) -> list[LogProblem]:
    """Problems in ``text`` (a container log) that no ``allow`` regex matches."""
    allowed = [re.compile(a) for a in allow]
    lines = [_DOCKER_TS.sub("", raw) for raw in text.splitlines()]
    out: list[LogProblem] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        match = _LEVEL.search(line)
        if match is None:
            i += 1
            continue
        start = i
        i += 1
        kind = _kind(match)
        if kind == "traceback" or (i < len(lines) and lines[i].startswith("Traceback")):
            # take the traceback's indented body and its final "SomeError: ..." line
            while i < len(lines) and (lines[i].startswith((" ", "\t", "Traceback")) or not lines[i].strip()):
                i += 1
            if i < len(lines) and not _LEVEL.search(lines[i]):
                i += 1
            kind = "traceback"
        quoted = " | ".join(x.strip() for x in lines[start:i] if x.strip())
        if any(a.search(quoted) for a in allowed):
            continue
        out.append(LogProblem(source, start + 1, kind, quoted))
    return out
