"""Read Prometheus text exposition into plain numbers, so /metrics can be reconciled.

Pure and deliberately small: the rig only compares sample values, so each sample is
keyed by its name and label set exactly as exposed (``name{type="trade"}``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

__all__ = ["parse_metrics", "sample"]


def parse_metrics(text: str) -> dict[str, float]:
    """``name{labels}`` -> value for every sample line (comments and blanks skipped)."""
    out: dict[str, float] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "}" in line:
            key, _, rest = line.partition("}")
            key += "}"
        else:
            key, _, rest = line.partition(" ")
        parts = rest.split()
        if not parts:
            continue
        try:
            value = float(parts[0])
        except ValueError:
            continue
        if math.isfinite(value):
            out[key.strip()] = value
    return out


def sample(metrics: Mapping[str, float], name: str, **labels: str) -> float | None:
    """The value of ``name`` with exactly these labels (None if it is not exposed)."""
    if not labels:
        return metrics.get(name)
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return metrics.get(f"{name}{{{inner}}}")
