"""wsrig: a black-box test rig for a real-time WebSocket bridge.

Stack control, faults, clients, metrics, checkers and reports; the probes in
tests/probes/ stay thin and use this package.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
