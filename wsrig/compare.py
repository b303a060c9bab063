"""Compare two runs' summaries: what regressed (verdicts, latency, throughput, recovery).

Pure: two ``test_summary.json`` dicts in, a list of ``Change`` out; ``wsrig compare``
prints them and exits non-zero when one is a regression. Figures are flattened to
``stage/item/figure`` keys, each with the direction that is better:

* verdicts and statuses: pass -> anything else is a regression, as is a scenario that
  passed and now fails (or vanished);
* every ``latency_ms`` percentile (scenarios and metrics), every ``recovery_s``: lower
  is better;
* every threshold check: its ``op`` says the direction (``<=`` lower is better,
  ``>=`` higher), so throughput checks count as throughput;
* metric or scenario fields named like throughput (``*_per_s``, ``throughput*``):
  higher is better.

A figure regresses when it is worse by more than ``rel`` of the old value *and* by
more than an absolute floor (ms for latency, s for recovery), so noise on tiny
values (0.2 ms -> 0.4 ms) is not a regression.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Change", "Figure", "Tolerance", "compare", "figures", "format_changes"]

_PCT = ("p50", "p90", "p99", "p999", "max")


@dataclass(frozen=True)
class Tolerance:
    """How much worse a figure may get before it is a regression ([quick.compare] in
    config/thresholds.toml holds the values)."""

    rel: float  # relative to the old value
    abs_ms: float  # and at least this many ms (latency figures)
    abs_s: float  # and at least this many s (recovery, durations)
    tail_rel: float  # tail latency (p90 .. max), relative
    tail_abs_ms: float  # and at least this many ms
    abs_other: float = 0.0  # and at least this much (counts, rates): no floor

    @classmethod
    def from_limits(cls, limits: Mapping[str, Any]) -> Tolerance:
        """From the ``compare`` thresholds (keys named as the CLI's options)."""
        return cls(
            rel=float(limits["tolerance"]),
            abs_ms=float(limits["min_ms"]),
            abs_s=float(limits["min_s"]),
            tail_rel=float(limits["tail_tolerance"]),
            tail_abs_ms=float(limits["tail_min_ms"]),
        )


@dataclass(frozen=True)
class Figure:
    """One comparable number: ``better`` is ``lower`` or ``higher``; ``unit`` picks the floor."""

    value: float
    better: str
    unit: str = ""
    tail: bool = False  # a tail latency figure (p90 and above, max): the wider tolerance


@dataclass(frozen=True)
class Change:
    key: str
    old: Any
    new: Any
    regression: bool
    note: str = ""


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _latency(value: float, name: str) -> Figure:
    return Figure(value, "lower", "ms", _is_tail(name))


def _is_tail(name: str) -> bool:
    return bool(re.search(r"(^|[^a-z0-9])(p9\d+|max)($|[^a-z0-9])", name.lower()))


def _throughput_like(name: str) -> bool:
    low = name.lower()
    return "throughput" in low or low.endswith("_per_s") or "msgs_s" in low or low.endswith("_rate")


def figures(summary: dict[str, Any]) -> dict[str, Figure]:
    """Every comparable figure of a run, keyed ``stage/item/figure``."""
    out: dict[str, Figure] = {}
    for stage in summary.get("stages", []):
        st = stage["name"]
        metrics = stage.get("metrics", {})
        for c in metrics.get("checks", []):
            value = _num(c.get("value"))
            if value is None:
                continue
            better = "higher" if c.get("op") in (">=", ">") else "lower"
            unit = "ms" if "ms" in (c.get("unit") or "") or c["name"].endswith("_ms") else ""
            unit = unit or ("s" if (c.get("unit") or "").strip() == "s" or c["name"].endswith("_s") else "")
            out[f"{st}/check/{c['name']}"] = Figure(value, better, unit, unit == "ms" and _is_tail(c["name"]))
        for key, value in metrics.items():
            if key == "checks":
                continue
            if isinstance(value, dict) and isinstance(value.get("latency_ms"), dict):
                for p in _PCT:
                    if _num(value["latency_ms"].get(p)) is not None:
                        out[f"{st}/{key}/latency_ms.{p}"] = _latency(float(value["latency_ms"][p]), p)
            elif key == "latency_ms" and isinstance(value, dict):
                for p in _PCT:
                    if _num(value.get(p)) is not None:
                        out[f"{st}/latency_ms.{p}"] = _latency(float(value[p]), p)
            elif _throughput_like(key) and _num(value) is not None:
                out[f"{st}/{key}"] = Figure(float(value), "higher")
        for s in stage.get("scenarios", []):
            base = f"{st}/{s['name']}"
            block = s.get("latency_ms")
            if isinstance(block, dict):
                for p in _PCT:
                    if _num(block.get(p)) is not None:
                        out[f"{base}/latency_ms.{p}"] = _latency(float(block[p]), p)
            if _num(s.get("recovery_s")) is not None:
                out[f"{base}/recovery_s"] = Figure(float(s["recovery_s"]), "lower", "s")
            for key, value in s.items():
                if _throughput_like(key) and _num(value) is not None:
                    out[f"{base}/{key}"] = Figure(float(value), "higher")
    return out


def _worse_by(old: Figure, new: Figure) -> float:
    """How much worse ``new`` is than ``old`` (<= 0: not worse)."""
    return new.value - old.value if old.better == "lower" else old.value - new.value


def _limit(fig: Figure, tol: Tolerance) -> float:
    """How much worse ``fig`` may get before it is a regression."""
    if fig.tail:
        return max(tol.tail_rel * abs(fig.value), tol.tail_abs_ms)
    return max(tol.rel * abs(fig.value), {"ms": tol.abs_ms, "s": tol.abs_s}.get(fig.unit, tol.abs_other))


def _outcomes(summary: dict[str, Any]) -> dict[str, bool]:
    """Pass/fail items: the verdict, each stage that ran, each scenario."""
    out = {"verdict": summary.get("verdict") == "pass"}
    for stage in summary.get("stages", []):
        if stage["status"] == "skipped":
            continue
        out[f"{stage['name']}/status"] = stage["status"] == "passed"
        for s in stage.get("scenarios", []):
            out[f"{stage['name']}/{s['name']}/passed"] = bool(s.get("passed"))
    return out


def compare(old: dict[str, Any], new: dict[str, Any], tol: Tolerance) -> list[Change]:
    """Every change worth printing between two runs; ``regression`` marks the bad ones."""
    changes: list[Change] = []
    old_ok, new_ok = _outcomes(old), _outcomes(new)
    for key, was in old_ok.items():
        if key not in new_ok:
            if was and key.endswith("/passed"):
                changes.append(Change(key, "pass", "absent", True, "passed before, not run now"))
            continue
        now = new_ok[key]
        if was != now:
            changes.append(Change(key, "pass" if was else "fail", "pass" if now else "fail", was and not now))
    for key, now in new_ok.items():
        if key not in old_ok and not now:
            changes.append(Change(key, "absent", "fail", False, "new, failing"))
    old_f, new_f = figures(old), figures(new)
    for key in sorted(old_f.keys() & new_f.keys()):
        a, b = old_f[key], new_f[key]
        worse = _worse_by(a, b)
        limit = _limit(a, tol)
        if worse > limit:
            pct = f"{worse / abs(a.value):+.0%}" if a.value else "new non-zero"
            changes.append(Change(key, a.value, b.value, True, f"{a.better} is better; worse by {pct}"))
        elif -worse > limit:
            changes.append(Change(key, a.value, b.value, False, f"improved ({a.better} is better)"))
    return changes


def format_changes(changes: list[Change], old_name: str, new_name: str) -> str:
    """Regressions first, then improvements; a plain table for the terminal and CI logs."""
    regressions = [c for c in changes if c.regression]
    others = [c for c in changes if not c.regression]
    lines = [f"compare {old_name} -> {new_name}"]
    if not changes:
        lines.append("no change beyond the tolerance")
    for title, items in (("REGRESSED", regressions), ("changed, not a regression", others)):
        if not items:
            continue
        lines.append(f"{title}:")
        width = max(len(c.key) for c in items)
        for c in items:
            lines.append(f"  {c.key:<{width}}  {_show(c.old):>10} -> {_show(c.new):<10}  {c.note}")
    lines.append(f"{len(regressions)} regression(s)")
    return "\n".join(lines)


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".")
    return str(value)
