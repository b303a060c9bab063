"""The ``Fault`` protocol, the registry of faults by name, and ``injected()``.

``injected`` guarantees heal: on success, on error and on Ctrl-C, so a scenario
never leaves a paused container or a partitioned network behind.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from wsrig.config import RigConfig
from wsrig.history import FaultWindow
from wsrig.stack import DockerStack

__all__ = ["FAULTS", "Fault", "FaultContext", "FaultWindow", "get_fault", "injected", "register"]


@dataclass
class FaultContext:
    """What a fault may touch: the stack and the rig's configuration."""

    config: RigConfig
    stack: DockerStack


class Fault(Protocol):
    """Breaks one thing on ``inject`` and repairs it on ``heal`` (idempotent)."""

    name: str
    description: str

    def inject(self) -> None: ...

    def heal(self) -> None: ...


FAULTS: dict[str, Callable[..., Fault]] = {}


def register(name: str) -> Callable[[Callable[..., Fault]], Callable[..., Fault]]:
    def deco(factory: Callable[..., Fault]) -> Callable[..., Fault]:
        FAULTS[name] = factory
        return factory

    return deco


def get_fault(name: str, ctx: FaultContext, **options: Any) -> Fault:
    """A fault by name (``wsrig fault --list`` shows them)."""
    try:
        factory = FAULTS[name]
    except KeyError:
        raise KeyError(f"unknown fault {name!r}; known: {', '.join(sorted(FAULTS))}") from None
    return factory(ctx, **options)


@contextlib.contextmanager
def injected(fault: Fault) -> Iterator[FaultWindow]:
    """Inject on entry, heal on exit whatever happens; yields the fault window."""
    window = FaultWindow(fault.name)
    window.injected_ns = time.time_ns()
    try:
        fault.inject()
        yield window
    finally:
        fault.heal()
        window.healed_ns = time.time_ns()
