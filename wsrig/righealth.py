"""Could the instrument measure? The rig's own health during a timed scenario, judged.

The rig shares the host with the system it measures. When its generator slips or
skips, the planned load was not applied: the scenario is ``invalid``. When its own
receivers run late or hot, the latencies it took are partly its own: a broken timing
threshold is then ``invalid`` (it cannot tell whose the breach is), never ``failed``.
A met threshold stands: latency is measured from the intended send time, so a late
receiver can only add to it, and a slow receiver can only lower a delivery rate.
Correctness problems (loss, disorder, closes) stay failures whatever the rig's health:
a stalled rig does not invent missing seqs.

Composition follows Jepsen's three-valued validity: failed beats invalid beats passed.
Pure: callers pass measurements; thresholds come from ``[*.rig_health]`` in
config/thresholds.toml.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "INVALID_PREFIX",
    "ProcessHealth",
    "RigHealth",
    "RigLimits",
    "process_cpu_s",
    "beyond_rig",
    "scenario_status",
    "worst_status",
]

#: How an invalid verdict reads in the report, JUnit and the job summary.
INVALID_PREFIX = "the rig could not measure on this host"


def process_cpu_s() -> float:
    """CPU seconds (user + system) this process has used: a clock reading, like time.time()."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


_RANK = {"passed": 0, "skipped": 0, "invalid": 1, "failed": 2, "error": 2, "not_run": 2}


@dataclass(frozen=True)
class ProcessHealth:
    """One rig process: its event-loop lag (sampled continuously) and CPU seconds spent.

    The generator has no lag probe of its own: its schedule slip is its loop lag, and is
    judged by the generator limits (``RigHealth.generator_lag_p99_ms``), so it is None here.
    """

    name: str
    loop_lag_p99_ms: float | None
    loop_lag_max_ms: float | None
    cpu_s: float

    def serialize(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "loop_lag_p99_ms": self.loop_lag_p99_ms,
            "loop_lag_max_ms": self.loop_lag_max_ms,
            "cpu_s": round(self.cpu_s, 3),
        }


@dataclass(frozen=True)
class RigLimits:
    """Where the rig stops trusting itself (``[*.rig_health]``)."""

    loop_lag_p99_ms: float
    loop_lag_max_ms: float
    generator_lag_p99_ms: float
    us_per_delivery: float
    #: CPU per delivery is judged only when a scenario delivered at least this many
    #: messages per second (an idle connections run costs handshakes, not deliveries).
    us_per_delivery_min_rate: float = 5000.0

    @classmethod
    def from_thresholds(cls, table: dict[str, Any]) -> RigLimits:
        return cls(
            loop_lag_p99_ms=float(table["loop_lag_p99_ms"]),
            loop_lag_max_ms=float(table["loop_lag_max_ms"]),
            generator_lag_p99_ms=float(table["generator_lag_p99_ms"]),
            us_per_delivery=float(table["us_per_delivery"]),
            us_per_delivery_min_rate=float(table.get("us_per_delivery_min_rate", 5000.0)),
        )


@dataclass(frozen=True)
class RigHealth:
    """Everything the rig knows about itself for one scenario."""

    processes: tuple[ProcessHealth, ...] = ()
    generator_lag_p99_ms: float | None = None
    generator_skipped: int = 0
    deliveries: int = 0
    duration_s: float = 0.0
    #: Rig errors: a process died, never got ready, the publisher broke.
    errors: tuple[str, ...] = field(default_factory=tuple)

    @property
    def cpu_s(self) -> float:
        return sum(p.cpu_s for p in self.processes)

    @property
    def us_per_delivery(self) -> float | None:
        return round(self.cpu_s * 1e6 / self.deliveries, 2) if self.deliveries else None

    def _worst(self, key: str) -> tuple[str, float] | None:
        """The process with the highest ``key`` among those that measure it, and its value."""
        pairs = [(p.name, float(getattr(p, key))) for p in self.processes if getattr(p, key) is not None]
        return max(pairs, key=lambda pair: pair[1], default=None)

    def invalid_reasons(self, limits: RigLimits) -> list[str]:
        """Each measurement the rig broke, named with its value and its limit."""
        return self.blocking(limits) + self.lagging(limits)

    def blocking(self, limits: RigLimits) -> list[str]:
        """The planned load was not applied (a rig error, a late or skipping generator).

        Nothing the system did under it can be judged either way: always invalid.
        """
        out = list(self.errors)
        if self.generator_skipped > 0:
            out.append(f"generator skipped {self.generator_skipped} planned sends")
        if self.generator_lag_p99_ms is not None and self.generator_lag_p99_ms > limits.generator_lag_p99_ms:
            out.append(
                f"generator schedule slip P99 {self.generator_lag_p99_ms:.2f} ms > {limits.generator_lag_p99_ms:g} ms"
            )
        return out

    def lagging(self, limits: RigLimits) -> list[str]:
        """The rig's receivers ran late or hot: latencies it took then are partly its own.

        A late receiver only adds to a latency measured from the intended send time and
        only lowers a delivery rate, so this invalidates a broken timing threshold (the
        breach may be the rig's) but not a met one (the system was at least that fast).
        """
        out = []
        for key, label, limit in (
            ("loop_lag_p99_ms", "P99", limits.loop_lag_p99_ms),
            ("loop_lag_max_ms", "max", limits.loop_lag_max_ms),
        ):
            worst = self._worst(key)
            if worst is not None and worst[1] > limit:
                out.append(f"rig event-loop lag {label} {worst[1]:.1f} ms in {worst[0]} > {limit:g} ms")
        us = self.us_per_delivery
        rate = self.deliveries / self.duration_s if self.duration_s > 0 else 0.0
        if us is not None and rate >= limits.us_per_delivery_min_rate and us > limits.us_per_delivery:
            out.append(f"rig CPU {us:.1f} µs per delivery > {limits.us_per_delivery:g} µs")
        return out

    @property
    def worst_stall_ms(self) -> float:
        """The longest the rig's receivers were away: the most it can have added to one latency."""
        return max((p.loop_lag_max_ms for p in self.processes if p.loop_lag_max_ms is not None), default=0.0)

    def serialize(self) -> dict[str, Any]:
        return {
            "processes": [p.serialize() for p in self.processes],
            "loop_lag_p99_ms": (self._worst("loop_lag_p99_ms") or ("", None))[1],
            "loop_lag_max_ms": (self._worst("loop_lag_max_ms") or ("", None))[1],
            "generator_lag_p99_ms": self.generator_lag_p99_ms,
            "generator_skipped": self.generator_skipped,
            "cpu_s": round(self.cpu_s, 3),
            "us_per_delivery": self.us_per_delivery,
            "errors": list(self.errors),
        }


def beyond_rig(value: float, op: str, threshold: float, stall_ms: float) -> bool:
    """Does a latency breach stand even with the rig's worst stall taken off it?

    A late receiver adds at most its longest stall to a latency taken from the intended
    send time. A breach larger than that is the system's whatever the rig did (seen: a
    backend capped at 0.15 CPU, P99 1,026 ms, sent in bursts that made the rig's loop
    65 ms late). Only ``<``/``<=`` latency bounds are judged this way.
    """
    if op == "<":
        return value - stall_ms >= threshold
    if op == "<=":
        return value - stall_ms > threshold
    return False


def scenario_status(
    correctness: list[str], timing: list[str], blocking: list[str], lagging: list[str] | tuple[str, ...] = ()
) -> str:
    """One scenario's verdict from what it found.

    ``correctness``: loss, disorder, refused or closed clients: the system's, whatever
    the rig's health. ``timing``: latency or throughput thresholds broken.
    ``blocking``: the planned load was not applied (``RigHealth.blocking``): invalid.
    ``lagging``: the rig ran late (``RigHealth.lagging``): a broken timing threshold is
    then invalid, a met one stands.
    """
    if correctness:
        return "failed"
    if blocking:
        return "invalid"
    if timing:
        return "invalid" if lagging else "failed"
    return "passed"


def worst_status(statuses: list[str]) -> str:
    """Composition: failed (or error, not_run) beats invalid beats passed."""
    return max(statuses, key=lambda s: _RANK.get(s, 2), default="passed")
