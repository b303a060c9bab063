"""The integration stage's judges: the trading session, its reconciliation, the status timeline, the logs.

Pure: what the stage recorded of one finished session and the thresholds in, checks and
findings out. The comparisons themselves are ``wsrig.reconcile``'s, the client stream's
order and gaps ``wsrig.checkers``', the log scan ``wsrig.logscan``'s; this module only
applies them to a stored record, so ``wsrig judge`` reaches the same verdict offline.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wsrig.checkers import Finding, check_gap_declarations, check_stream
from wsrig.history import observed_from_frames
from wsrig.judges.base import Check, Rule, Verdict
from wsrig.logscan import scan_log
from wsrig.reconcile import Sources, reconcile

#: unexpected log entries quoted one finding each; the rest are counted in one more
MAX_LOG_FINDINGS = 20


def _trading_session(m: Mapping[str, Any], limits: Mapping[str, Any]) -> Verdict:
    """The bot ended its session by itself with at least ``min_trades`` fills, and then
    everything settled: the bot's last seq acked, the client caught up to it."""
    trades = int((m["bot_stats"].get("trading") or {}).get("trades", 0))
    checks = [
        Check("session_ended", bool(m["session_ended"]), True, "=="),
        Check("session_trades", trades, int(limits["min_trades"]), ">="),
        Check("session_settled", m["settle_error"] is None, True, "=="),
    ]
    findings = []
    if not m["session_ended"]:
        findings.append(
            Finding(
                "error",
                f"the bot did not end its trading session within {float(m['duration_s']):g} s"
                " (does it honour SYSTEM__TRADING_SESSION_S?)",
                check="session_ended",
                evidence={"duration_s": m["duration_s"]},
            )
        )
    if m["settle_error"] is not None:
        findings.append(Finding("error", str(m["settle_error"]), check="session_settled"))
    return checks, findings, {}


def _client_stream(sources: Sources) -> tuple[list[Check], list[Finding], dict[str, Any]]:
    """The client followed the run from seq 1: in order, nothing twice, no hole that was not
    declared, every gap declaration well formed."""
    frames = [f for f in sources.stream if f.get("run_id") == sources.run_id]
    report = check_stream(observed_from_frames((0, dict(f)) for f in frames)).get(sources.run_id)
    if report is None:  # nothing of the run: the reconciliation's seqs and counts say so
        return [], [], {}
    checks = [
        Check("stream_duplicated", len(report.duplicated), 0),
        Check("stream_reordered", len(report.reordered), 0),
        Check("stream_undeclared_gaps", len(report.undeclared_gaps), 0),
    ]
    findings = report.findings() + check_gap_declarations(dict(f) for f in frames if f.get("type") == "gap")
    return checks, findings, {"stream": report.serialize()}


def _reconciliation(m: Mapping[str, Any], limits: Mapping[str, Any]) -> Verdict:
    """Orders, positions, portfolio, trades per symbol and counts agree across the bot, the
    backend (state, store, status, metrics) and the client's stream; each disagreeing
    comparison is a finding naming both sources and values."""
    sources = Sources(**m)
    rows, findings = reconcile(sources)
    checks = [Check("reconciliation_rows", len(rows)), Check("reconciliation_mismatches", len(findings), 0)]
    stream_checks, stream_findings, figures = _client_stream(sources)
    return checks + stream_checks, findings + stream_findings, {**figures, "comparisons": [r.serialize() for r in rows]}


def _status_timeline(m: Mapping[str, Any], limits: Mapping[str, Any]) -> Verdict:
    """Both services answered their status endpoint in at least one sample every two
    seconds of the session (``session_s`` / 2 samples)."""
    columns = list(m["columns"])
    bot, backend = columns.index("bot_last_seq"), columns.index("backend_received")
    answered = sum(1 for row in m["rows"] if row[bot] != "" and row[backend] != "")
    minimum = int(float(limits["session_s"]) / 2)
    return [Check("status_timeline_samples", answered, minimum, ">=")], [], {}


def _container_logs(m: Mapping[str, Any], limits: Mapping[str, Any]) -> Verdict:
    """Every container's log was read and holds no error, traceback or warning but those
    ``log_allow`` expects."""
    allow = list(limits.get("log_allow", []))
    problems = [p for service, text in m["logs"].items() for p in scan_log(service, text, allow)]
    findings = [
        Finding(
            "error",
            p.message(),
            check="log_problems",
            evidence={"source": p.source, "line": p.line_no, "kind": p.kind},
        )
        for p in problems[:MAX_LOG_FINDINGS]
    ]
    if len(problems) > MAX_LOG_FINDINGS:
        findings.append(
            Finding(
                "error", f"... and {len(problems) - MAX_LOG_FINDINGS} more unexpected log entries", check="log_problems"
            )
        )
    for service, error in m["unread"].items():
        findings.append(Finding("error", f"no log for {service}: {error}", check="logs_read"))
    if not m["logs"]:
        findings.append(Finding("error", "no container log was read", check="logs_read"))
    return [Check("log_problems", len(problems), 0)], findings, {}


#: probe name -> its rule
RULES: dict[str, Rule] = {
    "trading_session": _trading_session,
    "reconciliation": _reconciliation,
    "status_timeline": _status_timeline,
    "container_logs": _container_logs,
}
