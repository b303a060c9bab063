"""Per-run sequencing of the publisher stream: dedup, watermark, broadcast order. No I/O.

For every ``run_id`` the backend tracks the *accounted watermark*: the highest seq N
such that every seq <= N is accounted for (ephemeral received, critical committed,
rejected, or declared dropped by a received ``gap``). Seqs accounted above the
watermark are kept as intervals; critical seqs received but not yet committed are
*pending*. An incoming envelope is a duplicate when its seq is at or below the
watermark, already accounted, or pending. Only new envelopes with a seq above the
run's last broadcast seq are broadcast, so clients never see a duplicate or a reorder.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from wscontract import CRITICAL_TYPES

__all__ = ["Decision", "Ingest", "IngestCounters", "Intervals", "RunView"]


# --- interval set -----------------------------------------------------------------


class Intervals:
    """A set of ints stored as sorted, disjoint, non-adjacent inclusive ranges."""

    __slots__ = ("_ends", "_starts")

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []

    def __contains__(self, x: int) -> bool:
        i = bisect_right(self._starts, x) - 1
        return i >= 0 and self._ends[i] >= x

    def __len__(self) -> int:
        return len(self._starts)

    def add(self, a: int, b: int) -> None:
        """Add every int in ``[a, b]``, merging with overlapping or adjacent ranges."""
        if a > b:
            return
        lo = bisect_left(self._ends, a - 1)
        hi = bisect_right(self._starts, b + 1)
        if lo < hi:
            a = min(a, self._starts[lo])
            b = max(b, self._ends[hi - 1])
        self._starts[lo:hi] = [a]
        self._ends[lo:hi] = [b]

    def end_of(self, x: int) -> int | None:
        """The last int of the range holding ``x``, or None when ``x`` is not in the set."""
        i = bisect_right(self._starts, x) - 1
        if i >= 0 and self._ends[i] >= x:
            return self._ends[i]
        return None

    def absorb(self, watermark: int) -> int:
        """Drop ranges reaching ``watermark + 1`` or below; return the advanced watermark."""
        while self._starts and self._starts[0] <= watermark + 1:
            watermark = max(watermark, self._ends[0])
            del self._starts[0]
            del self._ends[0]
        return watermark

    def size(self) -> int:
        """How many ints the set holds."""
        return sum(b - a + 1 for a, b in zip(self._starts, self._ends, strict=True))


# --- per-run state ----------------------------------------------------------------


@dataclass(slots=True)
class _Run:
    watermark: int = 0
    accounted: Intervals = field(default_factory=Intervals)
    pending: set[int] = field(default_factory=set)
    last_seq: int = 0
    last_broadcast: int = 0

    def mark(self, a: int, b: int) -> None:
        a = max(a, self.watermark + 1)
        if a > b:
            return
        self.accounted.add(a, b)
        self.watermark = self.accounted.absorb(self.watermark)

    def seen(self, seq: int) -> bool:
        return seq <= self.watermark or seq in self.pending or seq in self.accounted


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one valid envelope."""

    new: bool
    broadcast: bool
    #: critical and new: store it, then call ``Ingest.committed``.
    pending: bool


@dataclass(frozen=True, slots=True)
class RunView:
    """One run's sequencing numbers, as reported by the status API.

    ``acked_seq`` is the durable watermark (what acks and welcome report);
    ``accounted_seq`` the in-memory one, ahead of it by at most one commit window.
    """

    acked_seq: int
    accounted_seq: int
    last_seq: int
    broadcast_seq: int
    pending: int
    holes: int

    def serialize(self) -> dict[str, int]:
        return {
            "acked_seq": self.acked_seq,
            "accounted_seq": self.accounted_seq,
            "last_seq": self.last_seq,
            "broadcast_seq": self.broadcast_seq,
            "pending": self.pending,
            "holes": self.holes,
        }


@dataclass(slots=True)
class IngestCounters:
    """Counts of what the publisher side has seen (reported as ``metrics.SERIES`` declares)."""

    received: int = 0
    received_by_type: Counter[str] = field(default_factory=Counter)
    unique: int = 0
    duplicates: int = 0
    late: int = 0
    rejected: int = 0
    rejected_by_code: Counter[str] = field(default_factory=Counter)
    gaps_declared: int = 0
    declared_dropped: int = 0


# --- the sequencer ----------------------------------------------------------------


class Ingest:
    """Sequencing state of every run; feed it validated envelopes and commit results."""

    def __init__(self) -> None:
        self._runs: dict[str, _Run] = {}
        self._persisted: dict[str, tuple[int, int]] = {}
        self.counters = IngestCounters()

    def _run(self, run_id: str) -> _Run:
        run = self._runs.get(run_id)
        if run is None:
            run = self._runs[run_id] = _Run()
        return run

    # --- input ----------------------------------------------------------------

    def accept(self, env: dict[str, Any]) -> Decision:
        """Classify one envelope that passed ``validate_envelope``."""
        c = self.counters
        msg_type: str = env["type"]
        seq: int = env["seq"]
        run = self._run(env["run_id"])
        c.received += 1
        c.received_by_type[msg_type] += 1
        if run.seen(seq):
            c.duplicates += 1
            return Decision(new=False, broadcast=False, pending=False)
        c.unique += 1
        run.last_seq = max(run.last_seq, seq)
        critical = msg_type in CRITICAL_TYPES
        if critical:
            run.pending.add(seq)
        else:
            run.mark(seq, seq)
        if msg_type == "gap":
            self._declare(run, seq, env["data"])
        broadcast = seq > run.last_broadcast
        if broadcast:
            run.last_broadcast = seq
        else:
            c.late += 1
        return Decision(new=True, broadcast=broadcast, pending=critical)

    def _declare(self, run: _Run, gap_seq: int, data: dict[str, Any]) -> None:
        # A gap can only declare seqs produced before it: clamp to [1, gap_seq - 1] so a
        # hostile or buggy range cannot swallow future messages.
        self.counters.gaps_declared += 1
        self.counters.declared_dropped += int(data.get("count", 0))
        for a, b in data.get("ranges", ()):
            run.mark(max(a, 1), min(b, gap_seq - 1))

    def reject(self, code: str, run_id: str | None = None, seq: int | None = None) -> bool:
        """Count a rejected frame; a known seq of a known run counts as accounted.

        Returns True when ``seq`` was new and is now accounted by this rejection.
        """
        self.counters.rejected += 1
        self.counters.rejected_by_code[code] += 1
        if run_id is None or seq is None or seq < 1:
            return False
        run = self._run(run_id)
        if run.seen(seq):
            return False
        run.mark(seq, seq)
        return True

    def committed(self, run_id: str, seqs: Iterable[int]) -> None:
        """Critical seqs of ``run_id`` are now durable."""
        run = self._run(run_id)
        for seq in seqs:
            run.pending.discard(seq)
            run.mark(seq, seq)

    # --- queries --------------------------------------------------------------

    def watermark(self, run_id: str) -> int:
        run = self._runs.get(run_id)
        return run.watermark if run else 0

    def projected_watermark(self, run_id: str, seqs: Iterable[int]) -> int:
        """The watermark ``run_id`` will have once ``seqs`` are committed."""
        run = self._runs.get(run_id)
        if run is None:
            return 0
        extra = set(seqs)
        wm = run.watermark
        while True:
            end = run.accounted.end_of(wm + 1)
            if end is not None:
                wm = end
            elif wm + 1 in extra:
                wm += 1
            else:
                return wm

    def durable_watermark(self, run_id: str) -> int:
        """The watermark as last persisted: the only one that may be acked."""
        return self._persisted.get(run_id, (0, 0))[0]

    def last_broadcast(self, run_id: str) -> int:
        run = self._runs.get(run_id)
        return run.last_broadcast if run else 0

    def runs(self) -> dict[str, RunView]:
        return {
            run_id: RunView(
                acked_seq=self.durable_watermark(run_id),
                accounted_seq=run.watermark,
                last_seq=run.last_seq,
                broadcast_seq=run.last_broadcast,
                pending=len(run.pending),
                holes=len(run.accounted),
            )
            for run_id, run in self._runs.items()
        }

    # --- persistence ----------------------------------------------------------

    def restore(self, run_id: str, acked_seq: int, last_seq: int, committed_above: Iterable[int] = ()) -> None:
        """Reload one run after a restart: its watermark, last seq and stored seqs above it."""
        run = self._run(run_id)
        run.watermark = max(run.watermark, acked_seq)
        run.last_seq = max(run.last_seq, last_seq, acked_seq)
        run.last_broadcast = max(run.last_broadcast, run.last_seq)
        for seq in committed_above:
            run.mark(seq, seq)
        self._persisted[run_id] = (run.watermark, run.last_broadcast)

    def changed_watermarks(self) -> dict[str, tuple[int, int]]:
        """``run_id -> (acked_seq, last_seq)`` for runs changed since ``mark_persisted``."""
        out = {}
        for run_id, run in self._runs.items():
            now = (run.watermark, run.last_broadcast)
            if self._persisted.get(run_id) != now:
                out[run_id] = now
        return out

    def mark_persisted(self, values: dict[str, tuple[int, int]]) -> None:
        """``values`` (from ``changed_watermarks`` or projections) are now on disk."""
        for run_id, (acked, last) in values.items():
            old = self._persisted.get(run_id, (0, 0))
            self._persisted[run_id] = (max(acked, old[0]), max(last, old[1]))
