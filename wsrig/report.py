"""Render ``test_report.md`` from a summary: one pure function, verdict first.

The same function serves ``run_all_tests.sh`` and ``wsrig report DIR``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["render_markdown"]

_ICON = {"passed": "PASS", "failed": "FAIL", "error": "ERROR", "skipped": "skipped", "not_run": "not run"}
_SCENARIO_COLUMNS = (
    "lost", "duplicated", "reordered", "undeclared_drops", "declared_dropped", "recovery_s", "trading_continued",
)  # fmt: skip


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "-"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _stage_table(stages: list[dict[str, Any]]) -> list[str]:
    lines = ["| stage | status | duration | tests passed / failed / skipped | note |", "|---|---|---|---|---|"]
    for s in stages:
        t = s["tests"]
        failed = t.get("failed", 0) + t.get("errors", 0)
        note = s.get("reason") or ""
        if s["status"] == "failed" and s["findings"]:
            note = s["findings"][0]["message"][:160]
        lines.append(
            f"| {s['name']} | **{_ICON.get(s['status'], s['status'])}** | {s['duration_s']:.1f} s | "
            f"{t.get('passed', 0)} / {failed} / {t.get('skipped', 0)} | {note.replace('|', '/')} |"
        )
    return lines


def _checks(checks: list[dict[str, Any]]) -> list[str]:
    if not checks:
        return []
    lines = ["| measure | value | threshold | ok |", "|---|---|---|---|"]
    for c in checks:
        unit = c.get("unit") or ""
        threshold = f"{c['op']} {_fmt(c['threshold'])}{unit}" if c.get("threshold") is not None else "(recorded)"
        lines.append(f"| {c['name']} | {_fmt(c['value'])}{unit} | {threshold} | {'yes' if c['passed'] else '**NO**'} |")
    return lines


def _scenarios(scenarios: list[dict[str, Any]]) -> list[str]:
    if not scenarios:
        return []
    cols = [c for c in _SCENARIO_COLUMNS if any(c in s for s in scenarios)]
    extra = sorted({k for s in scenarios for k in s if k not in (*cols, "name", "passed", "latency_ms", "detail")})[:4]
    head = ["scenario", *cols, *extra, "verdict"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in scenarios:
        row = [s["name"], *(_fmt(s.get(c)) for c in cols), *(_fmt(s.get(c)) for c in extra)]
        row.append("pass" if s["passed"] else "**FAIL**")
        lines.append("| " + " | ".join(row) + " |")
    latency = [s for s in scenarios if "latency_ms" in s]
    if latency:
        lines += [
            "",
            "| scenario | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | count |",
            "|---|---|---|---|---|---|---|",
        ]
        for s in latency:
            m = s["latency_ms"]
            lines.append(
                f"| {s['name']} | {m['p50']} | {m['p90']} | {m['p99']} | {m['p999']} | {m['max']} | {m['count']} |"
            )
    return lines


def render_markdown(summary: dict[str, Any]) -> str:
    """Summary dict -> Markdown text a person can read in a minute."""
    verdict = summary["verdict"].upper()
    stages = summary["stages"]
    ran = [s for s in stages if s["status"] not in ("skipped",)]
    bad = [s for s in ran if s["status"] not in ("passed", "not_run")]
    out = [
        f"# WebSocket bridge test report: **{verdict}**",
        "",
        f"Run `{summary['suite_run_id']}`, {summary['started_at']} to {summary['finished_at']}, profile `{summary.get('profile', 'quick')}`.",
        "",
    ]
    if bad:
        out.append("**What failed:**")
        out.append("")
        for s in bad:
            first = s["findings"][0]["message"] if s["findings"] else (s.get("reason") or s["status"])
            out.append(f"- `{s['name']}` {s['status']}: {first}")
        out.append("")
    not_run = [s["name"] for s in stages if s["status"] == "not_run"]
    if not_run:
        out += [f"Not run (not built yet, counted as not passed): {', '.join(not_run)}.", ""]
    out += ["## Stages", "", *_stage_table(stages), ""]
    for s in stages:
        if s["status"] in ("skipped", "not_run"):
            continue
        out += [f"## {s['name']}", ""]
        out.append(
            f"Status **{_ICON.get(s['status'], s['status'])}** in {s['duration_s']:.1f} s. Log: [{s['log']}]({s['log']}), JUnit: [{s['junit']}]({s['junit']})."
        )
        out.append("")
        checks = s["metrics"].get("checks", [])
        if checks:
            out += ["Measured against thresholds:", "", *_checks(checks), ""]
        plain = {k: v for k, v in s["metrics"].items() if k != "checks" and not isinstance(v, (dict, list))}
        if plain:
            out += ["| metric | value |", "|---|---|", *(f"| {k} | {_fmt(v)} |" for k, v in plain.items()), ""]
        if s["scenarios"]:
            out += ["Scenarios:", "", *_scenarios(s["scenarios"]), ""]
        if s["findings"]:
            out += ["Findings:", ""]
            out += [f"- {f['severity']}: {f['message']}" for f in s["findings"]]
            out.append("")
    env = summary.get("environment", {})
    out += ["## Environment", "", "| item | value |", "|---|---|"]
    for key in ("git_sha", "docker_version", "compose_version"):
        out.append(f"| {key} | {_fmt(env.get(key))} |")
    for name, image in (env.get("images") or {}).items():
        out.append(f"| image {name} | {image} |")
    for key, value in (env.get("host") or {}).items():
        out.append(f"| host {key} | {_fmt(value)} |")
    out.append("")
    if summary.get("thresholds"):
        out += ["Thresholds come from `config/thresholds.toml` (profile shown above).", ""]
    logs = env.get("container_logs") or []
    if logs:
        out += ["Container logs: " + ", ".join(f"[{n}]({n})" for n in logs), ""]
    return "\n".join(out)
