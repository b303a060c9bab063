"""Step-load saturation search: raise the rate until a step breaks, keep the last good one.

Pure: the caller supplies ``measure(rate) -> Step`` (a real constant-rate run); this
module only decides what passed and where it broke, so the rule is unit-tested.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["SaturationResult", "SaturationVerdict", "Step", "judge", "search"]


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

    @property
    def ended_on_rig(self) -> bool:
        """The step that ended the search was void (the rig could not keep up): ``best`` is
        then a lower bound of the server's saturation, not the point where it broke."""
        return self.broke_at is not None and not self.broke_at.valid


@dataclass(frozen=True)
class SaturationVerdict:
    """``floor`` and ``ratio``: passed, failed, or undecided (with ``reasons``)."""

    floor: str
    ratio: str
    ratio_value: float | None
    reasons: tuple[str, ...]


def judge(found: SaturationResult, ref: SaturationResult, floor: float, ratio_min: float) -> SaturationVerdict:
    """The floor and the ratio to the reference, using only what the steps prove.

    A search that ended on the rig proved its ``best`` and nothing above it (a lower
    bound). So: a floor met by a lower bound is met; a floor missed by it is undecided.
    The ratio system/reference is a lower bound when only the system's search ended on
    the rig (met: passed; missed: undecided), an upper bound when only the reference's
    did (missed: failed; met: undecided), and unknown when both did. A search that did
    not break within the steps counts at its best (both held every step: ratio 1).
    """
    reasons: list[str] = []
    sys_best, ref_best = found.best_deliveries_per_s, ref.best_deliveries_per_s
    if sys_best >= floor:
        floor_status = "passed"
    elif found.ended_on_rig:
        floor_status = "undecided"
        reasons.append(f"saturation: {found.reason}")
    else:
        floor_status = "failed"
    value = sys_best / ref_best if ref_best > 0 else None
    if value is None:
        ratio_status = "undecided"
        reasons.append(f"reference saturation: {ref.reason}")
    elif found.ended_on_rig and ref.ended_on_rig:
        ratio_status = "undecided"
        reasons.append(f"both searches ended on the rig: saturation {found.reason}; reference {ref.reason}")
    elif found.ended_on_rig:
        ratio_status = "passed" if value >= ratio_min else "undecided"
        if ratio_status == "undecided":
            reasons.append(f"saturation (a lower bound): {found.reason}")
    elif ref.ended_on_rig:
        ratio_status = "failed" if value < ratio_min else "undecided"
        if ratio_status == "undecided":
            reasons.append(f"reference saturation (a lower bound): {ref.reason}")
    else:
        ratio_status = "passed" if value >= ratio_min else "failed"
    return SaturationVerdict(floor_status, ratio_status, value, tuple(reasons))


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
