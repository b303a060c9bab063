"""PNG charts of a results folder, drawn from its registered series and fault windows.

Why here and not in the report: the report is a pure function of the summary; drawing
needs the CSV files and matplotlib. ``plan_charts`` (pure) decides which charts a
summary calls for; ``make_charts`` reads the CSVs and draws them with the Agg backend
(no display needed). Without matplotlib the report simply has no charts.

Charts per stage, each only when it has data: latency over time with every fault
window shaded (Jepsen's habit), latency percentile distribution, throughput over time,
container CPU and memory over time, a status timeline, and the fault windows timeline.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Chart", "FaultSpan", "break_gaps", "fault_spans", "load_series", "make_charts", "plan_charts"]

_PCT_KEYS = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p999", 99.9), ("max", 100.0))


@dataclass
class Chart:
    """One PNG the report links: ``file`` is relative to the results folder."""

    stage: str
    kind: str
    title: str
    file: str
    series: list[dict[str, Any]] = field(default_factory=list)

    def serialize(self) -> dict[str, str]:
        return {"stage": self.stage, "kind": self.kind, "title": self.title, "file": self.file}


@dataclass(frozen=True)
class FaultSpan:
    """A fault window of one scenario, in Unix seconds."""

    scenario: str
    fault: str
    start: float
    end: float
    passed: bool
    recovery_s: float | None = None


# ---- planning (pure) ---------------------------------------------------------------------


def fault_spans(stage: dict[str, Any]) -> list[FaultSpan]:
    """The stage's scenarios that carry a complete ``fault_window``, in time order."""
    spans = []
    for s in stage.get("scenarios", []):
        w = s.get("fault_window") or {}
        if w.get("injected_at") and w.get("healed_at"):
            spans.append(
                FaultSpan(
                    s["name"],
                    str(w.get("fault", "")),
                    float(w["injected_at"]),
                    float(w["healed_at"]),
                    bool(s.get("passed")),
                    s.get("recovery_s"),
                )
            )
    return sorted(spans, key=lambda x: x.start)


def latency_blocks(stage: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Every ``latency_ms`` block of a stage (scenarios, then metrics), by label."""
    out: dict[str, dict[str, float]] = {}
    for s in stage.get("scenarios", []):
        if isinstance(s.get("latency_ms"), dict):
            out[s["name"]] = s["latency_ms"]
    for key, value in stage.get("metrics", {}).items():
        if isinstance(value, dict) and isinstance(value.get("latency_ms"), dict):
            out[key] = value["latency_ms"]
        elif key == "latency_ms" and isinstance(value, dict):
            out[stage["name"]] = value
    return out


def plan_charts(summary: dict[str, Any]) -> list[Chart]:
    """Which charts this summary calls for (no I/O): one list, stage by stage."""
    charts: list[Chart] = []
    for stage in summary.get("stages", []):
        name = stage["name"]
        by_kind: dict[str, list[dict[str, Any]]] = {}
        for s in stage.get("series", []):
            by_kind.setdefault(s.get("kind", ""), []).append(s)

        def add(kind: str, title: str, series: list[dict[str, Any]] | None = None, stage_name: str = name) -> None:
            charts.append(Chart(stage_name, kind, title, f"chart_{stage_name}_{kind}.png", series or []))

        if by_kind.get("latency"):  # the title promises shading only when there are windows to shade
            shaded = " (fault windows shaded)" if fault_spans(stage) else ""
            add("latency", f"{name}: end-to-end latency over time{shaded}", by_kind["latency"])
        if latency_blocks(stage):
            add("percentiles", f"{name}: latency percentile distribution")
        if by_kind.get("throughput"):
            add("throughput", f"{name}: throughput over time", by_kind["throughput"])
        if by_kind.get("resources"):
            add("resources", f"{name}: container CPU and memory over time", by_kind["resources"])
        if by_kind.get("timeline"):
            add("timeline", f"{name}: status timeline", by_kind["timeline"])
        if fault_spans(stage):
            add("faults", f"{name}: fault windows (injected to healed) and recovery")
    return charts


# ---- reading ---------------------------------------------------------------------------------


def _number(text: str) -> float | None:
    low = text.strip().lower()
    if low in ("true", "yes"):
        return 1.0
    if low in ("false", "no"):
        return 0.0
    try:
        value = float(low)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def load_series(path: Path) -> tuple[dict[str, list[float]], dict[str, dict[str, list[float]]]]:
    """A series CSV -> (numeric columns, {group: numeric columns}).

    Wide CSVs (``t,cpu_pct,mem_mb``) come back as columns; long CSVs with a text column
    (``t,container,cpu_pct,...``) come back grouped by that column's value as well.
    """
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return {}, {}
    names = list(rows[0].keys())
    text_cols = [c for c in names if c != "t" and any(_number(r.get(c) or "") is None and r.get(c) for r in rows)]
    num_cols = [c for c in names if c not in text_cols]
    columns: dict[str, list[float]] = {c: [] for c in num_cols}
    groups: dict[str, dict[str, list[float]]] = {}
    for r in rows:
        values = {c: _number(r.get(c) or "") for c in num_cols}
        if values.get("t") is None:
            continue
        filled = {c: math.nan if v is None else v for c, v in values.items()}
        for c in num_cols:
            columns[c].append(filled[c])
        if text_cols:
            key = " ".join(str(r.get(c, "")) for c in text_cols)
            group = groups.setdefault(key, {c: [] for c in num_cols})
            for c in num_cols:
                group[c].append(filled[c])
    return columns, groups


# ---- drawing ---------------------------------------------------------------------------------


def make_charts(summary: dict[str, Any], results: Path) -> list[Chart]:
    """Draw every planned chart into ``results``; returns the charts actually written."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    made: list[Chart] = []
    stages = {s["name"]: s for s in summary.get("stages", [])}
    for chart in plan_charts(summary):
        stage = stages[chart.stage]
        fig = None
        try:
            fig = _DRAW[chart.kind](plt, chart, stage, results)
            if fig is None:
                continue
            fig.savefig(results / chart.file, dpi=96, bbox_inches="tight")
            made.append(chart)
        except (OSError, ValueError, KeyError) as exc:  # one bad CSV must not cost the report
            print(f"chart {chart.file} not drawn: {exc}")
        finally:
            if fig is not None:
                plt.close(fig)
    return made


def _origin(stage: dict[str, Any], columns: list[dict[str, list[float]]]) -> float:
    starts = [min(c["t"]) for c in columns if c.get("t")] + [s.start for s in fault_spans(stage)]
    return min(starts) if starts else 0.0


def break_gaps(ts: list[float], values: list[float], factor: float = 2.5) -> tuple[list[float], list[float]]:
    """Insert NaN where samples are missing, so a line does not bridge a silence.

    A gap is a step longer than ``factor`` times the median step (an outage during
    which nothing arrived must look like one, not like a slope).
    """
    if len(ts) < 3:
        return list(ts), list(values)
    steps = sorted(b - a for a, b in zip(ts, ts[1:], strict=False) if b > a)
    limit = factor * steps[len(steps) // 2] if steps else math.inf
    out_t, out_v = [ts[0]], [values[0]]
    for (a, b), v in zip(zip(ts, ts[1:], strict=False), values[1:], strict=False):
        if b - a > limit:
            out_t.append((a + b) / 2)
            out_v.append(math.nan)
        out_t.append(b)
        out_v.append(v)
    return out_t, out_v


def _shade(ax: Any, spans: list[FaultSpan], origin: float) -> None:
    labelled: set[bool] = set()
    for span in spans:
        label = None
        if span.passed not in labelled:
            label = "fault window (scenario passed)" if span.passed else "fault window (scenario FAILED)"
            labelled.add(span.passed)
        ax.axvspan(span.start - origin, span.end - origin, color="tab:red" if not span.passed else "tab:orange",
                   alpha=0.18, lw=0, label=label)  # fmt: skip
        ax.annotate(span.scenario, xy=(span.start - origin, 1.0), xycoords=("data", "axes fraction"),
                    rotation=90, va="top", ha="right", fontsize=7, color="0.3")  # fmt: skip


def _read_all(chart: Chart, results: Path) -> list[tuple[dict[str, Any], dict[str, list[float]], Any]]:
    out = []
    for s in chart.series:
        path = results / s["file"]
        if path.is_file():
            columns, groups = load_series(path)
            if columns.get("t"):
                out.append((s, columns, groups))
    return out


def _latency_columns(columns: dict[str, list[float]]) -> list[str]:
    """The latency columns of a series: those named ``*_ms`` if any, else all but t and counts."""
    named = [c for c in columns if c.endswith("_ms")]
    return named or [c for c in columns if c != "t" and "count" not in c and c not in ("n", "samples")]


def _latency(plt: Any, chart: Chart, stage: dict[str, Any], results: Path) -> Any:
    data = _read_all(chart, results)
    if not data:
        return None
    origin = _origin(stage, [c for _, c, _ in data])
    fig, ax = plt.subplots(figsize=(11, 4.2))
    colours = {"p50": "tab:blue", "p90": "tab:cyan", "p99": "tab:purple", "max": "0.6"}
    seen: set[str] = set()
    top = 0.0
    for _meta, columns, _groups in data:
        ts = [t - origin for t in columns["t"]]
        for col, values in columns.items():
            if col not in _latency_columns(columns):
                continue
            key = next((k for k in colours if col.startswith(k)), col)
            xs, ys = break_gaps(ts, values)
            ax.plot(xs, ys, color=colours.get(key), lw=0.8 if key == "max" else 1.4, marker="." if key != "max" else None,
                    ms=3, ls=":" if key == "max" else "-", label=None if col in seen else col)  # fmt: skip
            seen.add(col)
            top = max([top, *(v for v in values if not math.isnan(v))])
    _shade(ax, fault_spans(stage), origin)
    low = min((v for _, c, _ in data for k in _latency_columns(c) for v in c[k] if v > 0), default=1.0)
    if top > 0 and top / max(low, 1e-3) > 100:
        ax.set_yscale("log")
    ax.set_xlabel("seconds since the stage's first sample")
    ax.set_ylabel(f"latency ({chart.series[0].get('unit') or 'ms'})")
    ax.set_title(chart.title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    return fig


def _percentiles(plt: Any, chart: Chart, stage: dict[str, Any], results: Path) -> Any:
    blocks = latency_blocks(stage)
    fig, ax = plt.subplots(figsize=(8, 4.2))
    xs = list(range(len(_PCT_KEYS)))
    for label, block in blocks.items():
        ys = [float(block.get(k, math.nan)) for k, _ in _PCT_KEYS]
        ax.plot(xs, ys, marker="o", label=f"{label} (n={block.get('count', '?')})")
    ax.set_xticks(xs, [f"p{p:g}" if p < 100 else "max" for _, p in _PCT_KEYS])
    ax.set_yscale("log")
    ax.set_ylabel("latency (ms, log scale)")
    ax.set_title(chart.title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig


def _throughput(plt: Any, chart: Chart, stage: dict[str, Any], results: Path) -> Any:
    data = _read_all(chart, results)
    if not data:
        return None
    origin = _origin(stage, [c for _, c, _ in data])
    fig, ax = plt.subplots(figsize=(11, 4.2))
    for meta, columns, _groups in data:
        ts = [t - origin for t in columns["t"]]
        for col, values in columns.items():
            if col != "t" and col not in _latency_columns(columns):  # a shared CSV: rates only
                ax.plot(ts, values, lw=1.2, label=f"{meta['name']}: {col}")
    _shade(ax, fault_spans(stage), origin)
    ax.set_xlabel("seconds since the stage's first sample")
    ax.set_ylabel(chart.series[0].get("unit") or "messages/s")
    ax.set_title(chart.title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def _resources(plt: Any, chart: Chart, stage: dict[str, Any], results: Path) -> Any:
    data = _read_all(chart, results)
    if not data:
        return None
    origin = _origin(stage, [c for _, c, _ in data])
    fig, (cpu_ax, mem_ax) = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
    for meta, columns, groups in data:
        for label, cols in groups.items() if groups else [(meta["name"], columns)]:
            ts = [t - origin for t in cols["t"]]
            for col, values in cols.items():
                low = col.lower()
                target = cpu_ax if "cpu" in low else mem_ax if ("mem" in low or "rss" in low) else None
                if target is not None:
                    target.plot(ts, values, lw=1.2, label=f"{label} {col}")
    for ax, what in ((cpu_ax, "CPU (%)"), (mem_ax, "memory")):
        _shade(ax, fault_spans(stage), origin)
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="upper left")
    mem_ax.set_xlabel("seconds since the stage's first sample")
    cpu_ax.set_title(chart.title)
    return fig


def _timeline(plt: Any, chart: Chart, stage: dict[str, Any], results: Path) -> Any:
    data = _read_all(chart, results)
    if not data:
        return None
    origin = _origin(stage, [c for _, c, _ in data])
    cols = [(meta, col, columns) for meta, columns, _ in data for col in columns if col != "t"][:8]
    if not cols:
        return None
    fig, axes = plt.subplots(len(cols), 1, figsize=(11, 1.3 * len(cols) + 0.8), sharex=True, squeeze=False)
    for ax, (_meta, col, columns) in zip(axes[:, 0], cols, strict=True):
        ax.step([t - origin for t in columns["t"]], columns[col], where="post", lw=1.2)
        _shade(ax, fault_spans(stage), origin)
        ax.set_ylabel(col, rotation=0, ha="right", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0, 0].set_title(chart.title)
    axes[-1, 0].set_xlabel("seconds since the stage's first sample")
    return fig


def _faults(plt: Any, chart: Chart, stage: dict[str, Any], results: Path) -> Any:
    spans = fault_spans(stage)
    origin = spans[0].start
    fig, ax = plt.subplots(figsize=(11, 0.45 * len(spans) + 1.4))
    for row, span in enumerate(reversed(spans)):
        colour = "tab:orange" if span.passed else "tab:red"
        ax.broken_barh([(span.start - origin, span.end - span.start)], (row - 0.35, 0.7), color=colour)
        if span.recovery_s is not None:
            ax.broken_barh([(span.end - origin, float(span.recovery_s))], (row - 0.15, 0.3), color="tab:green")
        verdict = "pass" if span.passed else "FAIL"
        label_at = span.end - origin + float(span.recovery_s or 0.0)
        ax.annotate(f" {span.fault} {span.end - span.start:.1f}s {verdict}", (label_at, row), va="center",
                    fontsize=8)  # fmt: skip
    ax.set_yticks(range(len(spans)), [s.scenario for s in reversed(spans)], fontsize=8)
    ax.set_xlabel("seconds since the first fault (bar: injected to healed; green: heal to first new message)")
    ax.set_title(chart.title)
    ax.grid(alpha=0.3, axis="x")
    return fig


_DRAW = {
    "latency": _latency,
    "percentiles": _percentiles,
    "throughput": _throughput,
    "resources": _resources,
    "timeline": _timeline,
    "faults": _faults,
}
