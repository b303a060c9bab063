"""Key figures over many runs, each judged against its rolling baseline (``wsrig trend``).

One run's report says whether that run passed; it cannot say that the fan-out P99 has
crept from 8 ms to 15 ms over a week of passing runs. This module reads every
``RESULTS_ROOT/full_suite_*/test_summary.json`` into one long pandas DataFrame (one row
per run x stage x scenario x metric; ``load_runs`` is the only function here that does
I/O), picks the key figures from it, and judges each run's figure against the median of
the previous K runs that have it:

* a figure regresses when it is worse than that baseline by more than a relative margin
  (default 20 %, per figure or family overridable) and, where a floor is configured, by
  more than that absolute amount too (recovery times of a few ms are noise);
* a run whose verdict is ``invalid`` (the rig could not measure on its host) feeds no
  baseline, and its timing figures are judged neither way; the same holds for a stage
  that ended ``invalid`` inside a run that failed for another reason;
* baselines come only from runs of the same profile on a host with the same number of
  cores: a ``full`` run is not judged against ``quick`` runs;
* fewer than ``min_baseline_runs`` earlier usable runs: the figure is shown, not judged.

The settings live in ``config/trend.toml`` (``TrendSettings.from_toml``); the CLI
(``wsrig trend``) prints ``format_table`` and ``summary_line``; ``wsrig.trend_charts``
draws one PNG per figure.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = [
    "COLUMNS",
    "SCHEMA_VERSION",
    "Figure",
    "TrendResult",
    "TrendSettings",
    "analyse",
    "figures_in",
    "format_table",
    "load_runs",
    "regression_text",
    "short_id",
    "summary_line",
]

#: The ``test_summary.json`` schema version this module reads (schemas/test_summary.schema.json).
SCHEMA_VERSION = 1

#: The loader's columns: one row per run x stage x scenario x metric.
COLUMNS = [
    "run",  # suite_run_id
    "folder",  # the full_suite_* folder name
    "started_at",  # UTC timestamp
    "git_sha",
    "profile",
    "host_cores",  # environment.host.cpus
    "verdict",  # pass | fail | invalid
    "stage",
    "stage_status",
    "scenario",  # "" for a stage-level figure
    "scenario_status",
    "metric",
    "value",
    "unit",
]

_RUN_FOLDER = re.compile(r"^full_suite_(\d{8})_(\d{6})$")
_SKIPPED_STAGE = {"skipped", "not_run"}


# ---- settings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrendSettings:
    """How runs are judged; the values live in ``config/trend.toml`` only."""

    window: int  # K: the baseline is the median of the previous K usable runs that have the figure
    margin: float  # relative: worse than the baseline by more than this is a regression
    last: int  # runs shown in the table and the charts
    min_baseline_runs: int  # fewer earlier usable runs: shown, not judged
    margins: dict[str, float] = field(default_factory=dict)  # figure key or family -> relative margin
    floors: dict[str, float] = field(default_factory=dict)  # figure key or family -> absolute floor

    @classmethod
    def from_toml(cls, data: dict[str, Any]) -> TrendSettings:
        """The ``[trend]`` table of a parsed ``config/trend.toml``: every scalar key is required."""
        table = data.get("trend", {})
        if not isinstance(table, dict):
            raise ValueError("[trend] must be a table")
        required = {"window", "margin", "last", "min_baseline_runs"}
        unknown = sorted(set(table) - required - {"margins", "floors"})
        if unknown:
            raise ValueError(f"unknown key(s) in [trend]: {', '.join(unknown)}")
        missing = sorted(required - set(table))
        if missing:
            raise ValueError(f"missing key(s) in [trend]: {', '.join(missing)}")
        out = cls(
            window=int(table["window"]),
            margin=float(table["margin"]),
            last=int(table["last"]),
            min_baseline_runs=int(table["min_baseline_runs"]),
            margins={str(k): float(v) for k, v in table.get("margins", {}).items()},
            floors={str(k): float(v) for k, v in table.get("floors", {}).items()},
        )
        if out.window < 1 or out.last < 1 or out.min_baseline_runs < 1 or out.margin < 0:
            raise ValueError("[trend]: window, last and min_baseline_runs must be >= 1, margin >= 0")
        return out

    def margin_for(self, fig: Figure) -> float:
        return self.margins.get(fig.key, self.margins.get(fig.family, self.margin))

    def floor_for(self, fig: Figure) -> float:
        return self.floors.get(fig.key, self.floors.get(fig.family, 0.0))


def load_settings(config_file: Path) -> TrendSettings:
    """``config/trend.toml``, or ValueError saying why it cannot be used (there is no second copy)."""
    try:
        return TrendSettings.from_toml(tomllib.loads(config_file.read_text()))
    except (OSError, tomllib.TOMLDecodeError, ValueError, TypeError, AttributeError) as exc:
        raise ValueError(f"{config_file} cannot be used: {exc}") from exc


# ---- loading (the one function with I/O) ---------------------------------------------------------


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _obj(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (a field of the wrong shape)."""
    return value if isinstance(value, dict) else {}


def _folder_time(name: str) -> dt.datetime | None:
    m = _RUN_FOLDER.match(name)
    if not m:
        return None
    try:
        return dt.datetime.strptime(m.group(1) + m.group(2), "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def _parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def _scenario_metrics(s: dict[str, Any]) -> Iterable[tuple[str, float, str]]:
    """The numbers of one scenario row worth a trend: (metric, value, unit)."""
    for block, metric in (("latency_ms", "latency_p99_ms"), ("connect_ms", "connect_p99_ms")):
        b = s.get(block)
        if isinstance(b, dict) and (_num(b.get("count")) or 0) > 0 and (v := _num(b.get("p99"))) is not None:
            yield metric, v, "ms"
    for key, unit in (
        ("rig_us_per_delivery", "µs"),
        ("backend_us_per_delivery", "µs"),
        ("recovery_s", "s"),
        ("deliveries_per_s", "/s"),
    ):
        if (v := _num(s.get(key))) is not None:
            yield key, v, unit
    ratio = s.get("ratio_to_reference")
    if isinstance(ratio, dict) and (v := _num(ratio.get("p99"))) is not None:
        yield "p99_ratio_to_reference", v, "x"


def _stage_metrics(st: dict[str, Any]) -> Iterable[tuple[str, float, str]]:
    """Stage-level numbers: duration, error findings, the performance stage's saturation."""
    if (v := _num(st.get("duration_s"))) is not None:
        yield "duration_s", v, "s"
    findings = st.get("findings")
    if isinstance(findings, list):
        errors = sum(1 for f in findings if isinstance(f, dict) and f.get("severity") == "error")
        yield "error_findings", float(errors), "count"
    metrics = _obj(st.get("metrics"))
    for key, metric in (("saturation", "saturation_per_s"), ("reference_saturation", "reference_saturation_per_s")):
        block = metrics.get(key)
        if isinstance(block, dict) and (v := _num(block.get("best_deliveries_per_s"))) is not None:
            yield metric, v, "/s"
    if (v := _num(metrics.get("saturation_ratio_to_reference"))) is not None:
        yield "saturation_ratio", v, "x"


def _rows_of(
    summary: dict[str, Any], folder: str, started: dt.datetime | None
) -> tuple[list[dict[str, Any]], list[str]]:
    """The long rows of one summary, and the fields it lacked (for a one-line message)."""
    missing: list[str] = []
    run = summary.get("suite_run_id")
    if not isinstance(run, str) or not run:
        missing.append("suite_run_id")
        run = folder.removeprefix("full_suite_")
    verdict = summary.get("verdict")
    if verdict not in ("pass", "fail", "invalid"):
        missing.append("verdict")
        verdict = "unknown"
    env = _obj(summary.get("environment"))
    if not env:
        missing.append("environment")
    host = _obj(env.get("host"))
    cores = _num(host.get("cpus"))
    base = {
        "run": run,
        "folder": folder,
        "started_at": started,
        "git_sha": str(env.get("git_sha") or ""),
        "profile": str(summary.get("profile") or "quick"),  # the schema's default (wsrig.summary)
        "host_cores": int(cores) if cores is not None else None,
        "verdict": verdict,
    }
    rows: list[dict[str, Any]] = []
    stages = summary.get("stages")
    if not isinstance(stages, list):
        missing.append("stages")
        stages = []
    odd = 0
    for st in stages:
        if not isinstance(st, dict) or not isinstance(st.get("name"), str):
            odd += 1
            continue
        status = str(st.get("status") or "")
        if status in _SKIPPED_STAGE:
            continue
        here = {**base, "stage": st["name"], "stage_status": status}
        for metric, value, unit in _stage_metrics(st):
            rows.append({**here, "scenario": "", "scenario_status": "", "metric": metric, "value": value, "unit": unit})
        for s in st.get("scenarios") or []:
            if not isinstance(s, dict) or not isinstance(s.get("name"), str):
                odd += 1
                continue
            s_status = str(s.get("status") or ("passed" if s.get("passed") else "failed"))
            for metric, value, unit in _scenario_metrics(s):
                rows.append(
                    {**here, "scenario": s["name"], "scenario_status": s_status, "metric": metric}
                    | {"value": value, "unit": unit}
                )
    if odd:
        missing.append(f"{odd} stage or scenario entr{'y' if odd == 1 else 'ies'} without a name")
    return rows, missing


def load_runs(root: Path, warn: Callable[[str], None]) -> pd.DataFrame:
    """Every ``root/full_suite_*/test_summary.json`` as one long DataFrame (``COLUMNS``),
    sorted by run time (``started_at``, else the folder's timestamp).

    Never raises on a bad run: a folder without a summary, a half-written or unparsable
    file, another schema version or a run with no stage is skipped, and a summary that
    lacks fields is read as far as it goes; each gets one line through ``warn``.
    """
    found: list[tuple[dt.datetime, str, list[dict[str, Any]]]] = []
    seen: dict[str, str] = {}
    try:
        entries = sorted(root.glob("full_suite_*"))
    except OSError as exc:
        warn(f"cannot list {root}: {exc}")
        entries = []
    for path in entries:
        name = path.name
        if not path.is_dir():
            warn(f"skipped {name}: not a folder")
            continue
        file = path / "test_summary.json"
        if not file.is_file():
            warn(f"skipped {name}: no test_summary.json (the run did not finish, or is still running)")
            continue
        try:
            summary = json.loads(file.read_bytes())
        except OSError as exc:
            warn(f"skipped {name}: cannot read test_summary.json: {exc.strerror or exc}")
            continue
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            warn(f"skipped {name}: test_summary.json is not valid JSON (half-written or corrupt): {first}")
            continue
        if not isinstance(summary, dict):
            warn(f"skipped {name}: test_summary.json holds a {type(summary).__name__}, not a summary object")
            continue
        version = summary.get("schema_version")
        if version is not None and version != SCHEMA_VERSION:
            warn(f"skipped {name}: schema_version {version!r}, this rig reads {SCHEMA_VERSION}")
            continue
        started = _parse_time(summary.get("started_at")) or _folder_time(name)
        rows, missing = _rows_of(summary, name, started)
        if version is None:
            missing.insert(0, "schema_version")
        if started is None:
            missing.append("started_at")
        if not rows:
            warn(f"skipped {name}: no stage ran (nothing to trend)")
            continue
        run = rows[0]["run"]
        if run in seen:
            warn(f"skipped {name}: run {run} already read from {seen[run]}")
            continue
        seen[run] = name
        if missing:
            warn(f"read {name} partially: missing or unreadable {', '.join(missing)}")
        found.append((started or dt.datetime.max.replace(tzinfo=dt.UTC), name, rows))
    found.sort(key=lambda x: (x[0], x[1]))
    frame = pd.DataFrame([row for _, _, rows in found for row in rows], columns=COLUMNS)
    frame["started_at"] = pd.to_datetime(frame["started_at"], utc=True)
    frame["value"] = frame["value"].astype("float64")
    frame["host_cores"] = frame["host_cores"].astype("Int64")
    return frame


# ---- key figures ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """One key figure: where it is in the long frame, its unit and which way is better."""

    key: str  # file and config name: trend_<key>.png, [trend.margins] <key> = ...
    label: str
    stage: str
    scenario: str
    metric: str
    unit: str
    better: str  # "lower" | "higher"
    timing: bool = True  # a timing figure: an invalid run or stage judges neither way
    family: str = ""  # findings, duration, recovery: one override for all of them

    @property
    def arrow(self) -> str:
        return "lower" if self.better == "lower" else "higher"

    @property
    def unit_label(self) -> str:
        """The unit as a table or an axis names it (``x`` is a ratio; counts need none)."""
        return {"x": "ratio", "/s": "per s", "count": ""}.get(self.unit, self.unit)


#: The fixed key figures (the families below add one per stage or fault scenario present).
KEY_FIGURES = (
    Figure("fanout_p99_ms", "load fan-out P99", "load", "fanout", "latency_p99_ms", "ms", "lower"),
    Figure("fanout_p99_ratio", "fan-out P99 / reference P99", "load", "fanout", "p99_ratio_to_reference", "x", "lower"),
    Figure(
        "saturation_per_s", "saturation: highest deliveries met", "performance", "", "saturation_per_s", "/s", "higher"
    ),
    Figure("saturation_ratio", "saturation / reference", "performance", "", "saturation_ratio", "x", "higher"),
    Figure(
        "rig_us_per_delivery", "rig CPU per delivery, fan-out", "load", "fanout", "rig_us_per_delivery", "µs", "lower"
    ),
    Figure(
        "backend_us_per_delivery",
        "backend CPU per delivery, fan-out",
        "load",
        "fanout",
        "backend_us_per_delivery",
        "µs",
        "lower",
    ),
    Figure("connect_p99_ms", "connect P99, 1,000 clients", "load", "connections_1000", "connect_p99_ms", "ms", "lower"),
)

_FAULT_STAGE = "fault_tolerance"


def figures_in(frame: pd.DataFrame) -> list[Figure]:
    """The key figures present in ``frame``: the fixed ones, then error findings and duration
    per stage, then recovery time per fault scenario (stages and scenarios in run order)."""
    present = set(zip(frame["stage"], frame["scenario"], frame["metric"], strict=True))
    out = [f for f in KEY_FIGURES if (f.stage, f.scenario, f.metric) in present]
    stages = list(dict.fromkeys(frame["stage"]))
    for st in stages:
        if (st, "", "error_findings") in present:
            out.append(
                Figure(
                    f"findings_{st}",
                    f"error findings: {st}",
                    st,
                    "",
                    "error_findings",
                    "count",
                    "lower",
                    False,
                    "findings",
                )
            )
    for st in stages:
        if (st, "", "duration_s") in present:
            out.append(
                Figure(f"duration_{st}", f"duration: {st}", st, "", "duration_s", "s", "lower", True, "duration")
            )
    rec = frame[(frame["stage"] == _FAULT_STAGE) & (frame["metric"] == "recovery_s")]
    for sc in dict.fromkeys(rec["scenario"]):
        out.append(
            Figure(f"recovery_{sc}", f"recovery: {sc}", _FAULT_STAGE, sc, "recovery_s", "s", "lower", True, "recovery")
        )
    return out


# ---- judging ------------------------------------------------------------------------------------


@dataclass
class TrendResult:
    """Everything ``wsrig trend`` shows. Wide frames are indexed by run (time order) with one
    column per figure key; ``runs`` has one row per run."""

    settings: TrendSettings
    figures: list[Figure]
    runs: pd.DataFrame  # run, folder, started_at, git_sha, profile, host_cores, verdict
    values: pd.DataFrame
    baselines: pd.DataFrame
    judged: pd.DataFrame  # bool: the value counts (not an invalid run's or stage's timing figure)
    regressed: pd.DataFrame  # bool

    @property
    def latest(self) -> str:
        return str(self.runs["run"].iloc[-1])

    def regressions(self, run: str) -> list[Figure]:
        return [f for f in self.figures if bool(self.regressed.at[run, f.key])]

    def change(self, run: str, fig: Figure) -> float | None:
        """Relative change of ``run``'s value against its baseline (None: no baseline or zero)."""
        value, base = self.values.at[run, fig.key], self.baselines.at[run, fig.key]
        if pd.isna(value) or pd.isna(base) or base == 0:
            return None
        return float((value - base) / abs(base))


def _host_key(profile: Any, cores: Any) -> str:
    """Runs are comparable within one profile on hosts with as many cores: ``quick/2c``."""
    return f"{profile}/{'?' if pd.isna(cores) else int(cores)}c"


def _worse(fig: Figure, value: float, base: float, margin: float, floor: float) -> bool:
    delta = value - base if fig.better == "lower" else base - value
    return delta > margin * abs(base) and delta > floor


def analyse(frame: pd.DataFrame, settings: TrendSettings) -> TrendResult:
    """Key figures per run, their rolling baselines and which of them regressed."""
    if frame.empty:
        raise ValueError("no runs to analyse")
    runs = frame.drop_duplicates("run")[["run", "folder", "started_at", "git_sha", "profile", "host_cores", "verdict"]]
    runs = runs.reset_index(drop=True)
    order = list(runs["run"])
    figs = figures_in(frame)
    invalid_run = runs.set_index("run")["verdict"].eq("invalid")
    group = pd.Series([_host_key(r.profile, r.host_cores) for r in runs.itertuples()], index=order)

    values = pd.DataFrame(index=pd.Index(order, name="run"), columns=[f.key for f in figs], dtype="float64")
    usable = pd.DataFrame(False, index=values.index, columns=values.columns)
    judged = usable.copy()
    for fig in figs:
        rows = frame[
            (frame["stage"] == fig.stage) & (frame["scenario"] == fig.scenario) & (frame["metric"] == fig.metric)
        ]
        rows = rows.drop_duplicates("run", keep="last").set_index("run")
        values[fig.key] = rows["value"].reindex(order)
        present = values[fig.key].notna()
        if fig.timing:
            part_invalid = rows["stage_status"].eq("invalid") | rows["scenario_status"].eq("invalid")
            judged[fig.key] = present & ~invalid_run & ~part_invalid.reindex(order, fill_value=False).astype(bool)
        else:
            judged[fig.key] = present
        usable[fig.key] = judged[fig.key] & ~invalid_run

    baselines = pd.DataFrame(index=values.index, columns=values.columns, dtype="float64")
    for _, members in group.groupby(group, sort=False):
        idx = list(members.index)
        for fig in figs:
            s = values.loc[idx, fig.key].where(usable.loc[idx, fig.key])
            valid = s.dropna()
            least = min(settings.min_baseline_runs, settings.window)
            rolling = valid.rolling(settings.window, min_periods=least).median()
            baselines.loc[idx, fig.key] = rolling.reindex(idx).ffill().shift(1)

    regressed = pd.DataFrame(False, index=values.index, columns=values.columns)
    for fig in figs:
        margin, floor = settings.margin_for(fig), settings.floor_for(fig)
        for run in order:
            value, base = values.at[run, fig.key], baselines.at[run, fig.key]
            if judged.at[run, fig.key] and not pd.isna(base):
                regressed.at[run, fig.key] = _worse(fig, float(value), float(base), margin, floor)
    return TrendResult(settings, figs, runs, values, baselines, judged, regressed)


# ---- text ---------------------------------------------------------------------------------------


def short_id(run: str, started: Any = None) -> str:
    """``20261205_081910`` -> ``1205-0819``; otherwise the start time, else the id cut short."""
    m = re.match(r"^(?:full_suite_)?\d{4}(\d{4})_(\d{4})\d{2}$", run)
    if m:
        return f"{m.group(1)}-{m.group(2)}"
    if started is not None and not pd.isna(started):
        return pd.Timestamp(started).strftime("%m%d-%H%M")
    return run[:9]


def _fmt(value: Any) -> str:
    if value is None or pd.isna(value):
        return "-"
    v = float(value)
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if v == int(v) and abs(v) < 100:
        return str(int(v))
    return f"{v:.3g}"


def _pct(change: float | None) -> str:
    return "-" if change is None else f"{change * 100:+.0f} %"


def _change_text(result: TrendResult, run: str, fig: Figure) -> str:
    """``+85 %`` against the baseline; against a zero baseline the difference (``+3``)."""
    change = result.change(run, fig)
    if change is not None:
        return _pct(change)
    value, base = result.values.at[run, fig.key], result.baselines.at[run, fig.key]
    if pd.isna(value) or pd.isna(base) or value == base:
        return "-"
    return f"{float(value - base):+.3g}"


def _with_unit(value: Any, fig: Figure) -> str:
    text = _fmt(value)
    if not fig.unit or fig.unit == "count":
        return text
    return f"{text}{fig.unit}" if fig.unit in ("x", "/s") else f"{text} {fig.unit}"


def regression_text(result: TrendResult, run: str, fig: Figure) -> str:
    """``load fan-out P99 +85 % vs baseline (15.4 ms, baseline 8.3 ms)``."""
    value, base = result.values.at[run, fig.key], result.baselines.at[run, fig.key]
    change = result.change(run, fig)
    if change is None:  # a zero baseline: no percentage
        return f"{fig.label} {_with_unit(value, fig)} vs baseline {_with_unit(base, fig)}"
    return f"{fig.label} {_pct(change)} vs baseline ({_with_unit(value, fig)}, baseline {_with_unit(base, fig)})"


def summary_line(result: TrendResult) -> str:
    """One line about the latest run: its regressions, or ``no regression``."""
    run = result.latest
    verdict = str(result.runs["verdict"].iloc[-1])
    found = result.regressions(run)
    note = f"latest run {run}, {verdict}"
    if verdict == "invalid":
        note += ": its timing figures judge neither way"
    if not found:
        return f"no regression ({note})"
    what = "; ".join(regression_text(result, run, f) for f in found)
    return f"{len(found)} regression{'s' if len(found) != 1 else ''}: {what} ({note})"


def _cell(result: TrendResult, run: str, fig: Figure, markdown: bool) -> str:
    value = result.values.at[run, fig.key]
    text = _fmt(value)
    if pd.isna(value):
        return text
    if not result.judged.at[run, fig.key]:
        return f"({text})"
    if result.regressed.at[run, fig.key]:
        return f"**{text}!**" if markdown else f"{text}!"
    return text


def _legend(result: TrendResult) -> str:
    s = result.settings
    return (
        f"! regression: worse than the baseline (median of the previous {s.window} usable runs of the same "
        f"profile and host cores, at least {s.min_baseline_runs}) by more than the margin ({s.margin * 100:.0f} % unless "
        f"config/trend.toml says otherwise for the figure, and by more than its floor if it has one); (value) not judged: an invalid run or stage, excluded from "
        f"baselines; - not measured"
    )


def _label(fig: Figure) -> str:
    return f"{fig.label} ({fig.unit_label})" if fig.unit_label else fig.label


def format_table(result: TrendResult, last: int, markdown: bool = False) -> str:
    """The key figures of the last ``last`` runs (columns) as a text or GitHub Markdown table,
    with the latest run's baseline and change, the legend and the summary line."""
    shown = result.runs.tail(last)
    latest = result.latest
    heads = []
    mixed = len({_host_key(r.profile, r.host_cores) for r in shown.itertuples()}) > 1
    for r in shown.itertuples():
        verdict = r.verdict if r.verdict == "pass" else str(r.verdict).upper()
        parts = [short_id(str(r.run), r.started_at), verdict, str(r.git_sha or "?")[:7]]
        if mixed:
            parts.append(_host_key(r.profile, r.host_cores))
        heads.append(parts)
    title = f"{len(result.runs)} run(s) read, the last {len(shown)} shown; latest {latest}"
    rows = []
    for fig in result.figures:
        cells = [_cell(result, str(run), fig, markdown) for run in shown["run"]]
        if all(c == "-" for c in cells):
            continue
        change = _change_text(result, latest, fig)
        if bool(result.regressed.at[latest, fig.key]):
            change = f"**{change} !**" if markdown else f"{change} !"
        rows.append([_label(fig), fig.arrow, *cells, _fmt(result.baselines.at[latest, fig.key]), change])
    head_first = ["figure", "better"]
    tail = ["baseline", "latest vs baseline"]
    if markdown:
        lines = [f"### wsrig trend: key figures ({title})", ""]
        header = head_first + ["<br>".join(h) for h in heads] + tail
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join([":---", ":---"] + ["---:"] * (len(heads) + len(tail))) + "|")
        for row in rows:
            lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |")
        lines += ["", _legend(result), "", f"**{summary_line(result)}**"]
        return "\n".join(lines)
    depth = max(len(h) for h in heads)
    grid = [head_first + [h[0] for h in heads] + ["baseline", "latest vs"]]
    for level in range(1, depth):
        grid.append(
            ["", ""] + [h[level] if level < len(h) else "" for h in heads] + ["", "baseline" if level == 1 else ""]
        )
    grid += rows
    widths = [max(len(str(row[i])) for row in grid) for i in range(len(grid[0]))]
    lines = [f"wsrig trend: {title}"]
    for row in grid:
        left = [str(c).ljust(w) for c, w in zip(row[:2], widths[:2], strict=True)]
        right = [str(c).rjust(w) for c, w in zip(row[2:], widths[2:], strict=True)]
        lines.append("  ".join(left + right).rstrip())
    lines += [_legend(result), summary_line(result)]
    return "\n".join(lines)
