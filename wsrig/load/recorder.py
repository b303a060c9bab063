"""Latency bookkeeping of one subscriber: from intended time and from actual send time.

Coordinated-omission-safe: ``corrected`` counts from the time the schedule intended a
message to leave, so a stall delays every message due during it and they all show up;
``uncorrected`` counts from when the generator actually sent it, which hides a stall
the generator itself waited out, and is kept beside it for comparison (as wrk2 does).
Pure: callers pass the clock readings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wsrig.hdr import LatencyHistogram

__all__ = ["HopRecorder", "SeqTracker", "StreamRecorder", "merge_encoded", "per_second_rows"]


@dataclass
class SeqTracker:
    """Per-connection order check: the backend sends one run's envelopes in seq order."""

    last: int = 0
    received: int = 0
    missing: int = 0
    out_of_order: int = 0

    def see(self, seq: int) -> None:
        self.received += 1
        if seq <= self.last:
            self.out_of_order += 1
            return
        self.missing += seq - self.last - 1
        self.last = seq


@dataclass
class StreamRecorder:
    """Latencies of the load run's envelopes as one subscriber process saw them."""

    corrected: LatencyHistogram = field(default_factory=LatencyHistogram)
    uncorrected: LatencyHistogram = field(default_factory=LatencyHistogram)
    per_second: dict[int, LatencyHistogram] = field(default_factory=dict)

    def record(self, intended_ns: int, sent_ns: int, recv_ns: int) -> None:
        self.corrected.record_ns(recv_ns - intended_ns)
        self.uncorrected.record_ns(recv_ns - sent_ns)
        second = intended_ns // 1_000_000_000
        hist = self.per_second.get(second)
        if hist is None:
            hist = self.per_second[second] = LatencyHistogram(digits=2)
        hist.record_ns(recv_ns - intended_ns)

    def encode(self) -> dict[str, Any]:
        """Plain bytes and ints, cheap to pickle across the process boundary."""
        return {
            "corrected": self.corrected.encode(),
            "uncorrected": self.uncorrected.encode(),
            "per_second": {s: h.encode() for s, h in self.per_second.items()},
        }


def merge_encoded(parts: list[dict[str, Any]]) -> StreamRecorder:
    """Merge ``StreamRecorder.encode()`` outputs of several processes without loss."""
    out = StreamRecorder()
    for part in parts:
        out.corrected.merge(LatencyHistogram.decode(part["corrected"]))
        out.uncorrected.merge(LatencyHistogram.decode(part["uncorrected"]))
        for second, data in part["per_second"].items():
            hist = out.per_second.setdefault(second, LatencyHistogram(digits=2))
            hist.merge(LatencyHistogram.decode(data))
    return out


def per_second_rows(rec: StreamRecorder) -> list[list[Any]]:
    """``t, delivered, p50_ms, p99_ms, max_ms`` per second of intended send time."""
    rows = []
    for second in sorted(rec.per_second):
        h = rec.per_second[second]
        rows.append(
            [second, h.count, round(h.percentile_ms(50), 3), round(h.percentile_ms(99), 3), round(h.max_ms(), 3)]
        )
    return rows


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
