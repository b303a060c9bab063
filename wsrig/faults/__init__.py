"""Faults ("nemeses"): each breaks one thing and heals it, nothing else.

One fault per module behind the ``Fault`` protocol, looked up by name. Checkers,
not faults, decide whether the system coped.
"""

from wsrig.faults import cluster_faults, docker_faults, proxy_faults  # noqa: F401  (each registers its faults)
from wsrig.faults.base import FAULTS, Fault, FaultContext, get_fault, injected

__all__ = ["FAULTS", "Fault", "FaultContext", "get_fault", "injected"]
