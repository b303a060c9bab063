"""Histories the checkers read: what was produced, declared, stored and observed.

Plain data, no I/O. Probes fill them from the bot's ``/stats``, the backend's HTTP
API and the frames a subscriber received; checkers compare them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FaultWindow", "Observed", "Produced", "SeqSet", "observed_from_frames", "ranges_from_gap"]


@dataclass(frozen=True)
class Observed:
    """One envelope as a subscriber received it."""

    run_id: str
    seq: int
    type: str
    recv_ns: int = 0
    ts_ns: int = 0
    data: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


class SeqSet:
    """A set of seqs held as sorted inclusive ranges (declared gaps can be large)."""

    def __init__(self, ranges: Iterable[tuple[int, int]] = ()) -> None:
        self._ranges: list[tuple[int, int]] = []
        for lo, hi in ranges:
            self.add_range(lo, hi)

    def add_range(self, lo: int, hi: int) -> None:
        if hi < lo:
            return
        merged: list[tuple[int, int]] = []
        placed = False
        for a, b in self._ranges:
            if b + 1 < lo:
                merged.append((a, b))
            elif hi + 1 < a:
                if not placed:
                    merged.append((lo, hi))
                    placed = True
                merged.append((a, b))
            else:
                lo, hi = min(lo, a), max(hi, b)
        if not placed:
            merged.append((lo, hi))
        self._ranges = sorted(merged)

    def __contains__(self, seq: object) -> bool:
        if not isinstance(seq, int):
            return False
        return any(a <= seq <= b for a, b in self._ranges)

    def __len__(self) -> int:
        return sum(b - a + 1 for a, b in self._ranges)

    def __iter__(self) -> Iterator[int]:
        for a, b in self._ranges:
            yield from range(a, b + 1)

    @property
    def ranges(self) -> list[tuple[int, int]]:
        return list(self._ranges)


@dataclass
class Produced:
    """What the publisher says it produced for one run (from its ``/stats``).

    ``first_seq``..``last_seq`` is the window the check covers; ``dropped_total`` is the
    publisher's own count of drops, which must equal what it declared.
    """

    run_id: str
    last_seq: int
    first_seq: int = 1
    dropped_total: int = 0
    declared: SeqSet = field(default_factory=SeqSet)
    produced_by_type: dict[str, int] = field(default_factory=dict)
    #: judge loss only up to here (what had been acked when the check started); seqs
    #: above it may still be in flight, but are no more "unexpected" up to last_seq.
    judge_upto: int | None = None


@dataclass
class FaultWindow:
    """When a fault was in force (epoch ns), for checkers and the report's timeline."""

    name: str
    injected_ns: int = 0
    healed_ns: int = 0
    notes: list[str] = field(default_factory=list)

    def serialize(self) -> dict[str, Any]:
        return {
            "fault": self.name,
            "injected_at": self.injected_ns / 1e9,
            "healed_at": self.healed_ns / 1e9,
            "duration_s": round((self.healed_ns - self.injected_ns) / 1e9, 3) if self.healed_ns else None,
        }


def ranges_from_gap(envelope: dict[str, Any]) -> list[tuple[int, int]]:
    """The exact dropped seqs a ``gap`` envelope declares."""
    data = envelope.get("data", {})
    return [(int(a), int(b)) for a, b in data.get("ranges", [])]


def observed_from_frames(frames: Iterable[tuple[int, dict[str, Any]]]) -> list[Observed]:
    """(recv_ns, frame) pairs -> observed envelopes, skipping control frames."""
    out = []
    for recv_ns, frame in frames:
        if "seq" not in frame or "run_id" not in frame:
            continue
        out.append(
            Observed(
                run_id=str(frame["run_id"]),
                seq=int(frame["seq"]),
                type=str(frame.get("type", "")),
                recv_ns=recv_ns,
                ts_ns=int(frame.get("ts_ns", 0) or 0),
                data=frame.get("data") or {},
            )
        )
    return out
