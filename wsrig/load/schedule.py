"""Open-loop, constant-rate send plans and the generator's own health.

Message *i* is due at ``t0 + offset_i`` whatever the backend does (wrk2's model): the
latency of a message counts from that intended time, so a stalled backend cannot hide
the messages it delayed (coordinated omission). Pure: no clocks, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["GeneratorHealth", "Phase", "Schedule"]


@dataclass(frozen=True)
class Phase:
    """``rate`` messages per second for ``duration_s`` seconds."""

    rate: float
    duration_s: float

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.duration_s <= 0:
            raise ValueError(f"a phase needs rate > 0 and duration > 0, got {self.rate}/s for {self.duration_s} s")

    @property
    def count(self) -> int:
        return int(round(self.rate * self.duration_s))


@dataclass(frozen=True)
class Schedule:
    """Phases back to back: one phase is a sustained run, three make a burst."""

    phases: tuple[Phase, ...]

    @classmethod
    def constant(cls, rate: float, duration_s: float) -> Schedule:
        return cls((Phase(rate, duration_s),))

    @classmethod
    def burst(cls, rate: float, factor: float, before_s: float, burst_s: float, after_s: float) -> Schedule:
        return cls((Phase(rate, before_s), Phase(rate * factor, burst_s), Phase(rate, after_s)))

    @property
    def count(self) -> int:
        return sum(p.count for p in self.phases)

    @property
    def duration_s(self) -> float:
        return sum(p.duration_s for p in self.phases)

    def offsets_ns(self) -> Iterator[int]:
        """Intended send time of each message, nanoseconds after the start."""
        start_ns = 0
        for phase in self.phases:
            interval_ns = 1e9 / phase.rate
            for i in range(phase.count):
                yield start_ns + int(i * interval_ns)
            start_ns += int(phase.duration_s * 1e9)

    def phase_bounds_s(self) -> list[tuple[float, float, float]]:
        """(start offset s, end offset s, rate) of each phase, for reports and recovery."""
        out, start = [], 0.0
        for p in self.phases:
            out.append((start, start + p.duration_s, p.rate))
            start += p.duration_s
        return out


@dataclass(frozen=True)
class GeneratorHealth:
    """Did the load generator keep its schedule? If not, the run is invalid, not passed.

    ``lag`` is how late the generator's loop got to each message (its own CPU and
    scheduling). The publisher's send buffer is large, so a backend that reads slowly
    does not block the loop: that delay lands in latency-from-intended-time, where it
    belongs. Time spent blocked in a send anyway is reported as ``backpressure_s``.
    """

    planned: int
    sent: int
    lag_p99_ms: float
    lag_max_ms: float
    backpressure_s: float = 0.0

    @property
    def skipped(self) -> int:
        return self.planned - self.sent

    def problems(self, max_lag_p99_ms: float) -> list[str]:
        out = []
        if self.skipped > 0:
            out.append(f"generator skipped {self.skipped} of {self.planned} planned sends")
        if self.lag_p99_ms > max_lag_p99_ms:
            out.append(
                f"generator fell behind its schedule: send lag P99 {self.lag_p99_ms:.2f} ms > {max_lag_p99_ms} ms"
            )
        return out
