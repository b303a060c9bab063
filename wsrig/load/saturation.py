"""Step-load saturation search: raise the rate until a step breaks, keep the last good one.

Pure: the caller supplies ``measure(rate) -> Step`` (a real constant-rate run); this
module only decides what passed and where it broke, so the rule is unit-tested.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["SaturationResult", "Step", "search"]


@dataclass(frozen=True)
class Step:
    rate: float
    deliveries_per_s: float
    p99_ms: float
    lost: int
    valid: bool = True
    note: str = ""

    def problem(self, p99_limit_ms: float) -> str:
        """Why this step is not good, or '' when it is."""
        if not self.valid:
            return f"run invalid: {self.note or 'the generator fell behind'}"
        if self.lost:
            return f"{self.lost} deliveries lost"
        if self.p99_ms >= p99_limit_ms:
            return f"P99 {self.p99_ms:.1f} ms >= {p99_limit_ms} ms"
        return ""


@dataclass(frozen=True)
class SaturationResult:
    steps: tuple[Step, ...]
    best: Step | None
    broke_at: Step | None
    reason: str

    @property
    def best_deliveries_per_s(self) -> float:
        return self.best.deliveries_per_s if self.best else 0.0


def search(rates: Iterable[float], measure: Callable[[float], Step], p99_limit_ms: float) -> SaturationResult:
    """Run steps in increasing rate order; stop at the first step with a problem."""
    steps: list[Step] = []
    best: Step | None = None
    for rate in sorted(rates):
        step = measure(rate)
        steps.append(step)
        problem = step.problem(p99_limit_ms)
        if problem:
            return SaturationResult(tuple(steps), best, step, f"broke at {rate:g} msg/s: {problem}")
        best = step
    return SaturationResult(tuple(steps), best, None, "did not break within the configured steps")
