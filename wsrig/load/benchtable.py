"""The benchmark table of docs/BENCHMARKS.md, from a run's ``test_summary.json``.

Pure: one Markdown table per load/performance stage with the figures a reader compares
between machines and versions (rates, deliveries/s, HDR percentiles from intended time,
the uncorrected P99 beside them, loss, generator lag, CPU of the backend and the rig).
"""

from __future__ import annotations

from typing import Any

__all__ = ["bench_markdown"]

HEADER = (
    "| scenario | rate msg/s | subscribers | deliveries/s | acked/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms "
    "| p99 uncorrected ms | lost | generator lag p99 ms | backend CPU % | rig CPU % "
    "| rig µs/delivery | backend µs/delivery | rig loop lag p99 ms | p99 / reference | status |"
)


def _num(value: Any, digits: int = 1) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _row(s: dict[str, Any]) -> str:
    lat = s.get("latency_ms") or {}
    unc = s.get("latency_uncorrected_ms") or {}
    cpu = s.get("cpu_percent_mean") or {}
    backend = next((v for k, v in cpu.items() if "dashboard" in k), None)
    cells = [
        s.get("name", "?"),
        _num(s.get("rate"), 0),
        _num(s.get("subscribers")),
        _num(s.get("deliveries_per_s"), 0),
        _num(s.get("acked_per_s"), 0),
        _num(lat.get("p50"), 2),
        _num(lat.get("p90"), 2),
        _num(lat.get("p99"), 2),
        _num(lat.get("p999"), 2),
        _num(lat.get("max"), 2),
        _num(unc.get("p99"), 2),
        _num(s.get("lost")),
        _num(s.get("generator_lag_p99_ms"), 2),
        _num(backend),
        _num(cpu.get("rig")),
        _num(s.get("rig_us_per_delivery"), 2),
        _num(s.get("backend_us_per_delivery"), 2),
        _num((s.get("rig_health") or {}).get("loop_lag_p99_ms"), 2),
        _num((s.get("ratio_to_reference") or {}).get("p99"), 2),
        s.get("status") or ("passed" if s.get("passed") else "failed"),
    ]
    return "| " + " | ".join(cells) + " |"


def bench_markdown(summary: dict[str, Any]) -> str:
    """Tables for the load and performance stages of one run, checks included."""
    out = [
        f"Run `{summary.get('suite_run_id')}`, profile `{summary.get('profile')}`, verdict {summary.get('verdict')}."
    ]
    for stage in summary.get("stages", []):
        if stage.get("name") not in ("load", "performance") or stage.get("status") == "skipped":
            continue
        out += ["", f"### {stage['name']} ({stage.get('status')}, {stage.get('duration_s', 0):.0f} s)", "", HEADER]
        out.append("|" + "---|" * HEADER.count(" | ") + "---|")
        for s in stage.get("scenarios", []):
            if "latency_ms" in s and "rate" in s:
                out.append(_row(s))
        hop = next((s for s in stage.get("scenarios", []) if s.get("name") == "bot_latency"), None)
        if hop:
            out += ["", "| bot stream hop | p50 ms | p99 ms | p99.9 ms | max ms | count |", "|---|---|---|---|---|---|"]
            for key, label in (
                ("latency_ms", "end to end"),
                ("bot_to_backend_ms", "bot -> backend"),
                ("backend_to_client_ms", "backend -> client"),
            ):
                h = hop.get(key) or {}
                out.append(
                    f"| {label} | {_num(h.get('p50'), 2)} | {_num(h.get('p99'), 2)} | {_num(h.get('p999'), 2)} "
                    f"| {_num(h.get('max'), 2)} | {_num(h.get('count'))} |"
                )
        checks = (stage.get("metrics") or {}).get("checks", [])
        if checks:
            out += ["", "| check | value | threshold | result |", "|---|---|---|---|"]
            for c in checks:
                verdict = "pass" if c.get("passed") else "**FAIL**"
                out.append(
                    f"| {c['name']} | {_num(c['value'], 2)} {c.get('unit', '')} "
                    f"| {c.get('op', '')} {c.get('threshold')} {c.get('unit', '')} | {verdict} |"
                )
    return "\n".join(out) + "\n"
