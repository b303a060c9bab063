"""Latency bookkeeping of one subscriber: from intended time and from actual send time.

Coordinated-omission-safe: ``corrected`` counts from the time the schedule intended a
message to leave, so a stall delays every message due during it and they all show up;
``uncorrected`` counts from when the generator actually sent it, which hides a stall
the generator itself waited out, and is kept beside it for comparison (as wrk2 does).
Pure: callers pass the clock readings.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from wsrig.hdr import LatencyHistogram

__all__ = [
    "HopRecorder",
    "SeqTracker",
    "StreamRecorder",
    "bucketed",
    "latency_recovery_s",
    "per_second_rows",
]


@dataclass
class SeqTracker:
    """Per-connection order check: the backend sends one run's envelopes in seq order.

    A seq past the next one opens a hole; a later seq that fills a hole arrived out of
    order (``reordered``); one seen before is ``duplicated``. The in-order path, every
    message of a healthy run, is one comparison.
    """

    last: int = 0
    received: int = 0
    missing: int = 0
    reordered: int = 0
    duplicated: int = 0
    #: (first, last) seqs of each hole, in seq order; filled holes' seqs in ``_filled``
    _holes: list[tuple[int, int]] = field(default_factory=list, repr=False)
    _filled: set[int] = field(default_factory=set, repr=False)

    def see(self, seq: int) -> None:
        self.received += 1
        if seq == self.last + 1:
            self.last = seq
        elif seq > self.last:
            self._holes.append((self.last + 1, seq - 1))
            self.missing += seq - self.last - 1
            self.last = seq
        else:
            self._late(seq)

    def _late(self, seq: int) -> None:
        i = bisect_right(self._holes, (seq, _NO_END)) - 1
        if i >= 0 and self._holes[i][0] <= seq <= self._holes[i][1] and seq not in self._filled:
            self._filled.add(seq)
            self.missing -= 1
            self.reordered += 1
        else:
            self.duplicated += 1


_NO_END = 2**63


#: Significant bits an HDR histogram with 3 significant digits keeps (2,048 sub-buckets).
HDR_BITS = 11
_HDR_EXACT = 1 << HDR_BITS


def bucketed(values_us: list[int]) -> list[int]:
    """Each value rounded down to its HDR bucket's lowest value (3 digits; lossless there).

    A histogram of 3 (or fewer) significant digits puts a value and its rounded value in
    the same bucket, so counting rounded values loses nothing and leaves at most 1,024
    distinct values per power of two to count.
    """
    # One comprehension, no call per value: this runs for every delivered message.
    return [v if v < _HDR_EXACT else v >> (shift := v.bit_length() - HDR_BITS) << shift for v in values_us]


def _histogram(counts: Counter[int], digits: int = 3) -> LatencyHistogram:
    hist = LatencyHistogram(digits=digits)
    for us, n in counts.items():
        hist.record_ns(us * 1000, n)
    return hist


@dataclass
class StreamRecorder:
    """Latencies of the load run's envelopes as one subscriber process saw them.

    The subscriber calls ``record`` on its event loop for every message, so the work per
    message is kept to two appends; ``flush`` counts the values by histogram bucket in
    C-speed ``Counter``s, and the HDR histograms are built from the counts when read.
    Recording each value in the pure-Python HDR histogram (3 calls per message) took a
    quarter of a subscriber process's samples in py-spy under fan-out load, and ran on
    the same loop that timestamps arrivals.
    """

    _uncorrected: Counter[int] = field(default_factory=Counter)
    _per_second: dict[int, Counter[int]] = field(default_factory=dict)
    _pending: dict[int, tuple[list[int], list[int]]] = field(default_factory=dict, repr=False)

    @property
    def corrected(self) -> LatencyHistogram:
        """Latency from intended send time (coordinated-omission-safe)."""
        self.flush()
        total: Counter[int] = Counter()
        for counts in self._per_second.values():  # the same bucketed values, counted once per message
            total.update(counts)
        return _histogram(total)

    @property
    def uncorrected(self) -> LatencyHistogram:
        """Latency from actual send time (hides stalls the generator waited out)."""
        self.flush()
        return _histogram(self._uncorrected)

    @property
    def per_second(self) -> dict[int, LatencyHistogram]:
        """Corrected latency per second of intended send time."""
        self.flush()
        return {second: _histogram(counts, digits=2) for second, counts in self._per_second.items()}

    def record(self, intended_ns: int, sent_ns: int, recv_ns: int) -> None:
        second = intended_ns // 1_000_000_000
        bucket = self._pending.get(second)
        if bucket is None:
            bucket = self._pending[second] = ([], [])
        bucket[0].append((recv_ns - intended_ns) // 1000)
        bucket[1].append((recv_ns - sent_ns) // 1000)

    def flush(self) -> None:
        """Count the pending values by bucket (call now and then, and at the end)."""
        pending, self._pending = self._pending, {}
        for second, (corrected_us, uncorrected_us) in pending.items():
            # Corrected values are counted per second only; ``corrected`` sums the seconds.
            self._per_second.setdefault(second, Counter()).update(bucketed(corrected_us))
            self._uncorrected.update(bucketed(uncorrected_us))

    def encode(self) -> dict[str, Any]:
        """Encoded histograms (text, JSON-safe), cheap to pickle across the process boundary
        and stored as they are in the run's history; per second keyed by the second as text."""
        return {
            "corrected": self.corrected.encode(),
            "uncorrected": self.uncorrected.encode(),
            "per_second": {str(s): h.encode() for s, h in self.per_second.items()},
        }


def per_second_rows(per_second: dict[int, LatencyHistogram]) -> list[list[Any]]:
    """``t, delivered, p50_ms, p99_ms, max_ms`` per second of intended send time."""
    rows = []
    for second in sorted(per_second):
        h = per_second[second]
        rows.append(
            [second, h.count, round(h.percentile_ms(50), 3), round(h.percentile_ms(99), 3), round(h.max_ms(), 3)]
        )
    return rows


def latency_recovery_s(rows: list[list[Any]], since_s: float, limit_ms: float) -> float | None:
    """Seconds from ``since_s`` until per-second P99 (``per_second_rows``) is under the limit for good.

    None when it never comes back within the rows: the burst's latency did not recover.
    """
    after = [row for row in rows if row[0] >= since_s - 1]
    for i, row in enumerate(after):
        if all(r[3] < limit_ms for r in after[i:]):
            return max(0.0, row[0] - since_s)
    return None


@dataclass
class HopRecorder:
    """Bot traffic split per hop: production -> backend receive -> client receive.

    The backend's receive time comes from its store (``recv_ns`` of critical events), so
    the split exists for critical messages; end-to-end covers every message.
    """

    end_to_end: LatencyHistogram = field(default_factory=LatencyHistogram)
    bot_to_backend: LatencyHistogram = field(default_factory=LatencyHistogram)
    backend_to_client: LatencyHistogram = field(default_factory=LatencyHistogram)
    negative_hops: int = 0

    def record_end_to_end(self, produced_ns: int, client_ns: int) -> None:
        self.end_to_end.record_ns(client_ns - produced_ns)

    def record_hops(self, produced_ns: int, backend_ns: int, client_ns: int) -> None:
        """Both hops of one message; a negative hop means clocks or stamps are wrong."""
        if backend_ns < produced_ns or client_ns < backend_ns:
            self.negative_hops += 1
            return
        self.bot_to_backend.record_ns(backend_ns - produced_ns)
        self.backend_to_client.record_ns(client_ns - backend_ns)
