"""Disjoint CPU sets for the rig and the system, so neither can starve the other.

On a shared host a CPU-hungry backend could starve the instrument into ``invalid``,
and a busy rig could slow the backend into ``failed``. With two or more cores the
stages pin the system's containers (docker ``cpuset_cpus``, applied to the running
containers) and the rig's own processes (``sched_setaffinity``, inherited by the
subscriber and publisher processes) to disjoint sets. ``RIG__CPUS_RIG`` and
``RIG__CPUS_SYSTEM`` choose them (``auto``: the first half of the cores for the rig,
the rest for the system; ``off`` in either: no pinning). The choice is printed in the
report's environment.

Self-tests only: ``RIG__SELFTEST_HOG_RIG=N`` runs N busy processes per rig core (a
starved instrument must end ``invalid``) and ``RIG__SELFTEST_SYSTEM_CPUS=0.25`` caps the
backend container's CPU (a slow system with a healthy rig must end ``failed``).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["CpuPlan", "hog", "pinned", "plan_cpus"]


@dataclass(frozen=True)
class CpuPlan:
    """Which cores the rig and the system get; ``None`` sets mean not pinned (and why)."""

    rig: frozenset[int] | None
    system: frozenset[int] | None
    note: str = ""

    @staticmethod
    def text(cpus: frozenset[int] | None) -> str:
        return ",".join(str(c) for c in sorted(cpus)) if cpus else "any"

    def describe(self) -> dict[str, str]:
        return {"rig": self.text(self.rig), "system": self.text(self.system), "note": self.note}


def _parse(spec: str, ncpu: int) -> frozenset[int]:
    """``"0"``, ``"0,1"``, ``"2-3"`` -> cores; every core must exist."""
    out: set[int] = set()
    for part in spec.split(","):
        a, _, b = part.strip().partition("-")
        out.update(range(int(a), int(b or a) + 1))
    bad = sorted(c for c in out if c < 0 or c >= ncpu)
    if bad or not out:
        raise ValueError(f"CPU set {spec!r} names cores {bad} that this {ncpu}-core host does not have")
    return frozenset(out)


def plan_cpus(ncpu: int, env: Mapping[str, str]) -> CpuPlan:
    """The split for this host from ``RIG__CPUS_RIG`` / ``RIG__CPUS_SYSTEM`` (pure)."""
    rig_spec = env.get("RIG__CPUS_RIG", "auto").strip().lower()
    sys_spec = env.get("RIG__CPUS_SYSTEM", "auto").strip().lower()
    if "off" in (rig_spec, sys_spec):
        return CpuPlan(None, None, "pinning off (RIG__CPUS_*=off)")
    if ncpu < 2:
        return CpuPlan(None, None, f"not pinned: {ncpu} core")
    half = max(1, ncpu // 2)
    rig = frozenset(range(half)) if rig_spec == "auto" else _parse(rig_spec, ncpu)
    system = frozenset(range(ncpu)) - rig if sys_spec == "auto" else _parse(sys_spec, ncpu)
    if not system:
        raise ValueError(f"no core left for the system: the rig takes {sorted(rig)} of {ncpu}")
    if rig & system:
        raise ValueError(f"rig cores {sorted(rig)} and system cores {sorted(system)} overlap")
    return CpuPlan(rig, system, "disjoint")


@contextlib.contextmanager
def pinned(plan: CpuPlan, containers: list[Any]) -> Iterator[CpuPlan]:
    """Pin this process (and so its children) and ``containers`` for the block; undo after."""
    if plan.rig is None or plan.system is None:
        yield plan
        return
    before = os.sched_getaffinity(0)
    everything = ",".join(str(c) for c in range(os.cpu_count() or 1))
    os.sched_setaffinity(0, plan.rig)
    for c in containers:
        c.update(cpuset_cpus=CpuPlan.text(plan.system))
    try:
        yield plan
    finally:
        os.sched_setaffinity(0, before)
        for c in containers:
            with contextlib.suppress(Exception):  # a container a fault removed: nothing to undo
                c.update(cpuset_cpus=everything)


def _spin(cpu: int, until: float) -> None:
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {cpu})
    while time.monotonic() < until:
        pass


@contextlib.contextmanager
def hog(cpus: frozenset[int], per_core: int = 4, max_s: float = 1800.0) -> Iterator[None]:
    """``per_core`` busy processes on each core in ``cpus`` (self-test: a starved rig), bounded in time."""
    ctx = mp.get_context("spawn")
    until = time.monotonic() + max_s
    procs = [ctx.Process(target=_spin, args=(c, until), daemon=True) for c in sorted(cpus) for _ in range(per_core)]
    for p in procs:
        p.start()
    try:
        yield
    finally:
        for p in procs:
            p.kill()
            p.join(timeout=5)
