"""Render ``test_report.md`` from a summary: one pure function, verdict first.

The same function serves ``run_all_tests.sh`` and ``wsrig report DIR``. The first
screen answers "did it pass, and if not, what broke and when": the verdict, then each
failed stage with its failed scenarios and their error findings. Charts (``charts``,
made by ``wsrig.charts``) and the merged JUnit file are passed in, so rendering reads
no file. ``wsrig.htmlreport`` renders the same text as ``test_report.html``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wsrig.righealth import INVALID_PREFIX

__all__ = ["publish", "render_markdown"]

_ICON = {
    "passed": "PASS",
    "failed": "FAIL",
    "invalid": "INVALID",
    "error": "ERROR",
    "skipped": "skipped",
    "not_run": "not run",
}
# The fault table's columns, in the order issue 3 names them; others follow.
_FAULT_COLUMNS = (
    ("lost", "lost"), ("duplicated", "dup"), ("reordered", "reord"), ("undeclared_drops", "undeclared drops"),
    ("declared_dropped", "declared dropped"), ("recovery_s", "recovery s"), ("trading_continued", "trading continued"),
)  # fmt: skip
_NOT_EXTRA = {
    "name",
    "passed",
    "status",
    "latency_ms",
    "detail",
    "findings",
    "fault_window",
    "fault",
    "run_id",
    "new_run_id",
}
_MAX_FIRST_SCREEN_FINDINGS = 3
#: more figures per row than this and the table leaves them out (a person cannot read 30
#: columns); they stay in the stage's record.json and the row's history
_MAX_EXTRA_COLUMNS = 6
_ALWAYS_SHOWN = ("expected", "observed")


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:,.0f}"
    if value is None:
        return "-"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _cell(text: Any) -> str:
    """Table-safe: no pipe, no newline (either would break a GitHub table)."""
    return str(text).replace("|", "/").replace("\n", " ").replace("\r", " ")


def _errors(item: dict[str, Any]) -> list[str]:
    return [str(f["message"]) for f in item.get("findings", []) if f.get("severity") == "error"]


def _status(row: dict[str, Any]) -> str:
    """A scenario row's verdict: its ``status`` (passed, failed, invalid), or from ``passed``."""
    return str(row.get("status") or ("passed" if row.get("passed") else "failed"))


def _verdict_cell(row: dict[str, Any]) -> str:
    return {"passed": "pass", "invalid": "*invalid*"}.get(_status(row), "**FAIL**")


def _could_not_measure(stages: list[dict[str, Any]]) -> list[str]:
    """Per invalid stage, or invalid row in any stage: what the rig could not measure, and why."""
    out: list[str] = []
    for s in stages:
        rows = [x for x in s.get("scenarios", []) if _status(x) == "invalid"]
        if s["status"] != "invalid" and not rows:
            continue
        out.append(f"- **{s['name']}** {_ICON.get(s['status'], s['status'])}")
        for x in rows:
            reasons = x.get("invalid_reasons") or ["(no reason recorded)"]
            out.append(f"  - `{x['name']}`: {_cell('; '.join(reasons))}")
        if not rows and s.get("reason"):
            out.append(f"  - {_cell(s['reason'])}")
    return out


def _first(messages: list[str], limit: int = 300) -> str:
    text = messages[0] if messages else ""
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---- first screen ---------------------------------------------------------------------------


def _what_failed(stages: list[dict[str, Any]]) -> list[str]:
    """Per failed stage: which scenarios failed and why, then which passed."""
    out: list[str] = []
    for s in stages:
        if s["status"] in ("passed", "invalid", "skipped", "not_run"):
            continue
        failed = [x for x in s.get("scenarios", []) if _status(x) == "failed"]
        passed = [x["name"] for x in s.get("scenarios", []) if _status(x) == "passed"]
        if failed:
            n = len(s.get("scenarios", []))
            out.append(
                f"- **{s['name']}** {_ICON.get(s['status'], s['status'])}: {len(failed)} of {n} scenario(s) failed"
            )
            for x in failed:
                errs = _errors(x) or [f"{k} = {x.get(k)}" for k in ("lost", "duplicated", "reordered") if x.get(k)]
                window = x.get("fault_window") or {}
                held = window.get("duration_s")
                when = f" (fault `{window['fault']}` held {float(held):.1f} s)" if held else ""
                out.append(f"  - `{x['name']}`{when}: {_cell(_first(errs) or 'failed (no finding recorded)')}")
                out += [f"    - also: {_cell(_first([m]))}" for m in errs[1:_MAX_FIRST_SCREEN_FINDINGS]]
                if len(errs) > _MAX_FIRST_SCREEN_FINDINGS:
                    out.append(f"    - ... {len(errs) - _MAX_FIRST_SCREEN_FINDINGS} more in the fault table below")
            if passed:
                out.append(f"  - passed: {', '.join(f'`{p}`' for p in passed)}")
        else:
            errs = [str(f["message"]) for f in s.get("findings", []) if f.get("severity") == "error"]
            why = _first(errs) or s.get("reason") or s["status"]
            out.append(f"- **{s['name']}** {_ICON.get(s['status'], s['status'])}: {_cell(why)}")
            out += [f"  - also: {_cell(_first([m]))}" for m in errs[1:_MAX_FIRST_SCREEN_FINDINGS]]
        out.append(f"  - log: [{s['log']}]({s['log']}), JUnit: [{s['junit']}]({s['junit']})")
    return out


# ---- tables ---------------------------------------------------------------------------------


def _key_figures(s: dict[str, Any]) -> str:
    checks = s.get("metrics", {}).get("checks", [])
    bounded = [c for c in checks if c.get("threshold") is not None]
    scenarios = s.get("scenarios", [])
    ok = sum(1 for x in scenarios if x.get("passed"))
    if not bounded:
        return f"{ok}/{len(scenarios)} scenarios passed" if scenarios else "-"
    bad = [c for c in bounded if not c.get("passed")]
    if not bad:
        return f"{len(bounded)}/{len(bounded)} within threshold"
    c = bad[0]
    unit = c.get("unit") or ""
    return (
        f"**{len(bad)} of {len(bounded)} over**: {c['name']} {_fmt(c['value'])}{unit} "
        f"(threshold {c['op']} {_fmt(c['threshold'])}{unit})"
    )


def _stage_table(stages: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| stage | status | duration | tests passed / failed / skipped | key figures vs thresholds | note |",
        "|---|---|---|---|---|---|",
    ]
    for s in stages:
        t = s["tests"]
        failed = t.get("failed", 0) + t.get("errors", 0)
        note = s.get("reason") or ""
        if s["status"] == "failed" and s["findings"]:
            note = s["findings"][0]["message"][:160]
        lines.append(
            f"| {s['name']} | **{_ICON.get(s['status'], s['status'])}** | {s['duration_s']:.1f} s | "
            f"{t.get('passed', 0)} / {failed} / {t.get('skipped', 0)} | {_cell(_key_figures(s))} | {_cell(note)} |"
        )
    return lines


def _checks(checks: list[dict[str, Any]]) -> list[str]:
    if not checks:
        return []
    lines = ["| measure | value | threshold | ok |", "|---|---|---|---|"]
    for c in checks:
        unit = c.get("unit") or ""
        threshold = f"{c['op']} {_fmt(c['threshold'])}{unit}" if c.get("threshold") is not None else "(recorded)"
        lines.append(
            f"| {_cell(c['name'])} | {_fmt(c['value'])}{unit} | {threshold} | {'yes' if c['passed'] else '**NO**'} |"
        )
    return lines


def _origin(scenarios: list[dict[str, Any]]) -> float | None:
    starts = [
        float(s["fault_window"]["injected_at"]) for s in scenarios if (s.get("fault_window") or {}).get("injected_at")
    ]
    return min(starts) if starts else None


def _window_cell(s: dict[str, Any], origin: float | None) -> str:
    w = s.get("fault_window") or {}
    fault = w.get("fault") or s.get("fault") or "-"
    if origin is None or not w.get("injected_at"):
        return str(fault)
    duration = "?" if w.get("duration_s") is None else f"{float(w['duration_s']):.1f} s"
    return f"{fault} at +{float(w['injected_at']) - origin:.1f} s for {duration}"


def _scenarios(scenarios: list[dict[str, Any]]) -> list[str]:
    """The fault table: scenario, fault window, correctness columns, verdict, then extras."""
    if not scenarios:
        return []
    origin = _origin(scenarios)
    cols = [(k, h) for k, h in _FAULT_COLUMNS if any(k in s for s in scenarios)]
    keys = {k for k, _ in cols}
    extra = sorted(
        {k for s in scenarios for k, v in s.items() if k not in keys | _NOT_EXTRA and not isinstance(v, (dict, list))}
    )
    if len(extra) > _MAX_EXTRA_COLUMNS:  # keep what a person reads first: what was expected, what was seen
        kept = [k for k in _ALWAYS_SHOWN if k in extra]
        left_out, extra = len(extra) - len(kept), kept
    else:
        left_out = 0
    head = ["scenario", "fault window", *(h for _, h in cols), "verdict", *extra]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in scenarios:
        row = [s["name"], _window_cell(s, origin), *(_fmt(s.get(k)) for k, _ in cols)]
        row.append(_verdict_cell(s))
        row += [_fmt(s.get(c)) for c in extra]
        lines.append("| " + " | ".join(_cell(x) for x in row) + " |")
    if left_out:
        lines += ["", f"({left_out} more figures per scenario are in the stage's record.json and each row's history.)"]
    return lines


def _comparisons(scenarios: list[dict[str, Any]]) -> list[str]:
    """Rows that compare two sources (the integration stage's reconciliation): the headline
    ones and every one that disagrees, each with both sources and values."""
    shown = [c for s in scenarios for c in s.get("comparisons") or [] if c.get("key", True) or not c.get("ok")]
    if not shown:
        return []
    lines = ["| comparison | a_source | a_value | b_source | b_value | verdict |", "|---|---|---|---|---|---|"]
    for c in shown:
        name = f"{c['check']}: {c['subject']}" if c.get("subject") else c["check"]
        cells = [name, c["a_source"], _fmt(c["a_value"]), c["b_source"], _fmt(c["b_value"])]
        lines.append("| " + " | ".join(_cell(x) for x in cells) + f" | {'pass' if c.get('ok') else '**FAIL**'} |")
    return lines


def _fault_timeline(scenarios: list[dict[str, Any]]) -> list[str]:
    """Text timeline of the fault windows, offsets from the first injection."""
    origin = _origin(scenarios)
    timed = [s for s in scenarios if (s.get("fault_window") or {}).get("injected_at")]
    if origin is None or not timed:
        return []
    timed.sort(key=lambda s: float(s["fault_window"]["injected_at"]))
    lines = [
        "| scenario | fault | injected | healed | held | first message after heal | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in timed:
        w = s["fault_window"]
        start = float(w["injected_at"]) - origin
        end = float(w["healed_at"]) - origin if w.get("healed_at") else None
        rec = s.get("recovery_s")
        lines.append(
            f"| {_cell(s['name'])} | {_cell(w.get('fault', '-'))} | +{start:.1f} s | "
            f"{'-' if end is None else f'+{end:.1f} s'} | {'-' if end is None else f'{end - start:.1f} s'} | "
            f"{'-' if rec is None or end is None else f'+{end + float(rec):.1f} s ({_fmt(rec)} s after heal)'} | "
            f"{_verdict_cell(s)} |"
        )
    return lines


def _latency_table(scenarios: list[dict[str, Any]], checks: list[dict[str, Any]]) -> list[str]:
    latency = [s for s in scenarios if "latency_ms" in s]
    if not latency:
        return []
    lines = [
        "| scenario | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | count | threshold "
        "| rig µs/delivery | backend µs/delivery | rig loop lag P99 / max ms | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in latency:
        m = s["latency_ms"]
        bound = [c for c in checks if s["name"] in c["name"] and c.get("threshold") is not None]
        threshold = "; ".join(f"{c['name']} {c['op']} {_fmt(c['threshold'])}{c.get('unit') or ''}" for c in bound)
        rig = s.get("rig_health") or {}
        lag = f"{_fmt(rig.get('loop_lag_p99_ms'))} / {_fmt(rig.get('loop_lag_max_ms'))}" if rig else "-"
        lines.append(
            f"| {_cell(s['name'])} | {m['p50']} | {m['p90']} | {m['p99']} | {m['p999']} | {m['max']} | {m['count']} | "
            f"{_cell(threshold or '-')} | {_fmt(s.get('rig_us_per_delivery'))} | "
            f"{_fmt(s.get('backend_us_per_delivery'))} | {lag} | {_verdict_cell(s)} |"
        )
    return lines


def _findings(s: dict[str, Any]) -> list[str]:
    """Stage findings, errors first; scenario findings are in the fault table's rows."""
    items = sorted(s["findings"], key=lambda f: {"error": 0, "warning": 1}.get(f.get("severity", ""), 2))
    return [f"- {f['severity']}: {_cell(f['message'])}" for f in items]


def _charts_for(stage: str, charts: list[dict[str, str]]) -> list[str]:
    out: list[str] = []
    for c in charts:
        if c["stage"] == stage:
            out += [f"![{c['title']}]({c['file']})", ""]
    return out


def _container_errors(env: dict[str, Any]) -> list[str]:
    errors = env.get("container_errors") or {}
    if not errors:
        return []
    out = ["## Container log errors", ""]
    for name, item in errors.items():
        count, lines = item.get("count", 0), item.get("lines", [])
        if not count:
            out.append(f"- [{name}]({name}): no error lines")
            continue
        shown = f" (first {len(lines)})" if count > len(lines) else ""
        out += [f"- [{name}]({name}): {count} error line(s){shown}", "", "```text", *lines, "```", ""]
    out.append("")
    return out


# ---- the report ---------------------------------------------------------------------------


def render_markdown(
    summary: dict[str, Any], charts: list[dict[str, str]] | None = None, junit: str | None = None
) -> str:
    """Summary dict -> Markdown text a person can read in a minute.

    ``charts``: ``[{"stage", "kind", "title", "file"}]`` to link inline per stage;
    ``junit``: the merged JUnit file's name, linked at the top.
    """
    charts = charts or []
    verdict = summary["verdict"].upper()
    stages = summary["stages"]
    out = [
        f"# WebSocket bridge test report: **{verdict}**",
        "",
        f"Run `{summary['suite_run_id']}`, {summary['started_at']} to {summary['finished_at']}, "
        f"profile `{summary.get('profile', 'quick')}`.",
        "",
    ]
    failed_lines = _what_failed(stages)
    if failed_lines:
        out += ["**What failed:**", "", *failed_lines, ""]
    invalid_lines = _could_not_measure(stages)
    if invalid_lines:
        out += [
            f"**Invalid: {INVALID_PREFIX}** (the instrument broke its own limits, `[*.rig_health]`; "
            "these figures judge neither way):",
            "",
            *invalid_lines,
            "",
        ]
    passed = [s["name"] for s in stages if s["status"] == "passed"]
    if passed:
        out += [f"Passed: {', '.join(passed)}.", ""]
    not_run = [s["name"] for s in stages if s["status"] == "not_run"]
    if not_run:
        out += [f"Not run (not built yet, counted as not passed): {', '.join(not_run)}.", ""]
    if junit:
        out += [f"All tests as one JUnit file: [{junit}]({junit}).", ""]
    shown = [s for s in stages if s["status"] != "skipped"]
    skipped = [f"{s['name']} ({s.get('reason') or 'skipped'})" for s in stages if s["status"] == "skipped"]
    out += ["## Stages", "", *_stage_table(shown), ""]
    if skipped:
        out += [f"Skipped: {', '.join(skipped)}.", ""]
    for s in stages:
        if s["status"] in ("skipped", "not_run"):
            continue
        out += [f"## {s['name']}", ""]
        out.append(
            f"Status **{_ICON.get(s['status'], s['status'])}** in {s['duration_s']:.1f} s. "
            f"Log: [{s['log']}]({s['log']}), JUnit: [{s['junit']}]({s['junit']})."
        )
        out.append("")
        checks = s["metrics"].get("checks", [])
        if checks:
            out += ["Measured against thresholds:", "", *_checks(checks), ""]
        plain = {k: v for k, v in s["metrics"].items() if k != "checks" and not isinstance(v, (dict, list))}
        if plain:
            out += ["| metric | value |", "|---|---|", *(f"| {_cell(k)} | {_fmt(v)} |" for k, v in plain.items()), ""]
        if s["scenarios"]:
            out += ["Scenarios:", "", *_scenarios(s["scenarios"]), ""]
            comparisons = _comparisons(s["scenarios"])
            if comparisons:
                out += ["Comparisons:", "", *comparisons, ""]
            timeline = _fault_timeline(s["scenarios"])
            if timeline:
                out += ["Fault windows, from the first injection:", "", *timeline, ""]
            latency = _latency_table(s["scenarios"], checks)
            if latency:
                out += ["Latency:", "", *latency, ""]
        out += _charts_for(s["name"], charts)
        for picture in s.get("pictures") or []:
            out += [f"![{picture['title']}]({picture['file']})", ""]
        if s["findings"]:
            out += ["Findings:", "", *_findings(s), ""]
    env = summary.get("environment", {})
    out += _container_errors(env)
    out += ["## Environment", "", "| item | value |", "|---|---|"]
    for key in ("git_sha", "docker_version", "compose_version", "docker_port_path", "cpusets"):
        out.append(f"| {key} | {_cell(_fmt(env.get(key)))} |")
    if env.get("topology"):  # summaries before the cluster topology have none
        out.append(f"| topology | {_cell(env['topology'])} |")
    for name, image in (env.get("images") or {}).items():
        out.append(f"| image {name} | {_cell(image)} |")
    for key, value in (env.get("host") or {}).items():
        out.append(f"| host {key} | {_cell(_fmt(value))} |")
    out.append("")
    if summary.get("thresholds"):
        out += ["Thresholds come from `config/thresholds.toml` (profile shown above).", ""]
    logs = env.get("container_logs") or []
    if logs:
        out += ["Container logs: " + ", ".join(f"[{n}]({n})" for n in logs), ""]
    return "\n".join(out)


def publish(results: Path, summary: dict[str, Any]) -> Path:
    """Charts, the merged JUnit file, test_report.md and test_report.html (the same report as
    one self-contained page, ``wsrig.htmlreport``), all from the summary and the folder: the
    one place a report is written (the suite, ``wsrig report`` and ``wsrig probe``).
    Returns the Markdown report's path."""
    from wsrig.charts import make_charts
    from wsrig.htmlreport import HTML_NAME, render_html
    from wsrig.junit import merge_files

    charts = [c.serialize() for c in make_charts(summary, results)]
    junit = merge_files(summary, results).name
    markdown = render_markdown(summary, charts, junit)
    path = results / "test_report.md"
    path.write_text(markdown)
    trend = _trend_charts(results)
    (results / HTML_NAME).write_text(render_html(summary, results, markdown, trend), encoding="utf-8")
    return path


def _trend_charts(results: Path) -> list[Path]:
    """The trend charts over this run and the earlier ones beside it (none when it is alone,
    or when they cannot be drawn: the report never fails for its trend)."""
    import sys

    from wsrig.config import repo_root
    from wsrig.trend_charts import report_trend_charts

    def warn(message: str) -> None:
        print(f"trend: {message}", file=sys.stderr)

    try:
        return report_trend_charts(results, repo_root() / "config" / "trend.toml", warn)
    except Exception as exc:  # a trend is a bonus: say why it is missing, keep the report
        warn(f"no trend charts: {exc!r}")
        return []
