"""PNG charts of ``wsrig trend``: one per key figure over the runs shown.

Each chart draws the figure run by run (x: the run's short id and verdict), its rolling
baseline (dashed) and the regression limit (baseline worsened by the margin and floor,
dotted; the band between them shaded), marks regressions with red crosses and the value,
and shows runs that judge neither way (an invalid run or stage) as hollow grey markers.
matplotlib with the Agg backend (no display); without matplotlib ``ImportError`` tells
the caller to skip the charts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from wsrig.trend import KEY_FIGURES, Figure, TrendResult, analyse, load_runs, load_settings, short_id

__all__ = ["chart_name", "draw_trend_charts", "report_trend_charts"]


def chart_name(fig: Figure) -> str:
    return f"trend_{fig.key}.png"


def _limit(result: TrendResult, fig: Figure, base: float) -> float:
    margin, floor = result.settings.margin_for(fig), result.settings.floor_for(fig)
    allowed = max(margin * abs(base), floor)
    return base + allowed if fig.better == "lower" else base - allowed


def draw_trend_charts(result: TrendResult, out: Path, last: int) -> list[Path]:
    """Write ``out/trend_<figure>.png`` for every figure measured in the last ``last`` runs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    shown = result.runs.tail(last)
    runs = [str(r) for r in shown["run"]]
    labels = [
        f"{short_id(str(r.run), r.started_at)}\n{r.verdict if r.verdict == 'pass' else str(r.verdict).upper()}"
        for r in shown.itertuples()
    ]
    xs = list(range(len(runs)))
    written: list[Path] = []
    for fig in result.figures:
        values = result.values.loc[runs, fig.key]
        if values.isna().all():
            continue
        figure, ax = plt.subplots(figsize=(max(7.0, 0.9 * len(runs) + 3), 4.2))
        try:
            _draw(ax, result, fig, runs, xs)
            ax.set_xticks(xs, labels, fontsize=8)
            ax.set_xlim(-0.5, len(runs) - 0.5)
            unit = f" ({fig.unit_label})" if fig.unit_label else ""
            ax.set_title(f"{fig.label}{unit}: {fig.better} is better", fontsize=11)
            ax.set_ylabel(fig.unit_label or fig.unit)
            ax.grid(True, axis="y", alpha=0.3)
            ax.legend(loc="best", fontsize=8)
            path = out / chart_name(fig)
            figure.savefig(path, dpi=96, bbox_inches="tight")
            written.append(path)
        finally:
            plt.close(figure)
    return written


def _steps(xs: list[int], ys: list[float]) -> tuple[list[float], list[float]]:
    """Each run's value as a flat step across its slot (x - 0.5 .. x + 0.5); NaN breaks the line."""
    sx: list[float] = []
    sy: list[float] = []
    for x, y in zip(xs, ys, strict=True):
        sx += [x - 0.5, x + 0.5, x + 0.5]
        sy += [y, y, float("nan")] if pd.isna(y) else [float(y), float(y), float(y)]
    return sx, sy


def _draw(ax: Any, result: TrendResult, fig: Figure, runs: list[str], xs: list[int]) -> None:
    values = result.values.loc[runs, fig.key]
    judged = result.judged.loc[runs, fig.key].astype(bool)
    regressed = result.regressed.loc[runs, fig.key].astype(bool)
    base = result.baselines.loc[runs, fig.key]

    ok = [(x, float(v)) for x, v, j in zip(xs, values, judged, strict=True) if j and not pd.isna(v)]
    if ok:  # one line through the judged runs: a run that judges neither way leaves no gap
        ax.plot(*zip(*ok, strict=True), color="tab:blue", marker="o", lw=1.6, label="value")
    limits = [_limit(result, fig, float(b)) for b in base.dropna()]
    top = max([v for _, v in ok] + [float(b) for b in base.dropna()] + limits + [0.0])
    top = top * 1.15 if top > 0 else 1.0
    off = [(x, float(v)) for x, v, j in zip(xs, values, judged, strict=True) if not pd.isna(v) and not j]
    if off:
        ax.scatter([x for x, _ in off], [min(v, top * 0.97) for _, v in off], facecolors="none", edgecolors="0.45",
                   s=60, zorder=3, label="not judged (invalid run or stage)")  # fmt: skip
        for x, v in off:
            if v > top * 0.97:  # off the scale: drawn at the top edge with its value
                ax.annotate(f"{v:.3g} (off scale)", (x, top * 0.97), textcoords="offset points", xytext=(0, -14),
                            ha="center", fontsize=8, color="0.35")  # fmt: skip
    if base.notna().any():
        limit = [_limit(result, fig, float(b)) if not pd.isna(b) else float("nan") for b in base]
        sx, sb = _steps(xs, list(base))
        _, sl = _steps(xs, limit)
        ax.plot(sx, sb, color="0.35", ls="--", lw=1.2, label="baseline (rolling median)")
        ax.plot(sx, sl, color="tab:orange", ls=":", lw=1.4, label="regression limit")
        ax.fill_between(sx, sb, sl, color="tab:orange", alpha=0.12)
    bad = [(x, float(v)) for x, v, r in zip(xs, values, regressed, strict=True) if r]
    if bad:
        ax.scatter(*zip(*bad, strict=True), marker="X", color="tab:red", s=110, zorder=4, label="regression")
        for x, v in bad:
            ax.annotate(f"{v:.3g}", (x, v), textcoords="offset points", xytext=(7, 4), fontsize=8, color="tab:red")
    ax.set_ylim(bottom=0, top=top)


def report_trend_charts(results: Path, config_file: Path, warn: Callable[[str], None]) -> list[Path]:
    """For a run's report: the key figures' trend charts over the runs beside ``results``
    (``results/trend/``), plus a chart for every figure the run regressed on; none when
    fewer than two runs can be read."""
    frame = load_runs(results.parent, warn)
    if frame.empty or frame["run"].nunique() < 2:
        return []
    try:
        settings = load_settings(config_file)
    except ValueError as exc:
        warn(f"no trend charts: {exc}")
        return []
    result = analyse(frame, settings)
    keys = {f.key for f in KEY_FIGURES} | {f.key for f in result.regressions(result.latest)}
    chosen = dataclasses.replace(result, figures=[f for f in result.figures if f.key in keys])
    return draw_trend_charts(chosen, results / "trend", settings.last)
