"""Judges of the stages whose probes record a ``ProbeHistory`` (connectivity, message flow): raw measurements -> checks and findings.

Pure: no I/O, no clock. One function per probe, looked up by stage and probe name; each
returns the checks (a value against its threshold, as the report prints them) and any
finding a threshold cannot express. ``judge_probe`` turns them into the scenario row
the stage records and ``wsrig judge`` computes again from the stored history.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from wsrig.checkers import Finding, check_counts_agree, check_gap_declarations, check_stream
from wsrig.history import observed_from_frames
from wsrig.record import Check
from wsrig.scenario_history import ProbeHistory
from wsrig.scenario_judge import scenario_row
from wsrig.stats import LatencySummary

__all__ = ["JUDGES", "judge_probe"]

Rule = Callable[[Mapping[str, Any], Mapping[str, Any]], tuple[list[Check], list[Finding], dict[str, Any]]]


def _p99(samples: list[float]) -> LatencySummary:
    return LatencySummary.from_ms(samples)


def _handshake_time(
    m: Mapping[str, Any], limits: Mapping[str, Any]
) -> tuple[list[Check], list[Finding], dict[str, Any]]:
    """Every client completed its handshake, P99 within ``handshake_p99_ms``."""
    summary = _p99(m["handshake_ms"])
    checks = [
        Check("handshakes_completed", len(m["handshake_ms"]), int(m["clients"]), ">="),
        Check("handshake_p99_ms", summary.p99, limits["handshake_p99_ms"], unit=" ms"),
    ]
    return checks, [], {"handshake_ms": summary.serialize()}


def _first_live_message(
    m: Mapping[str, Any], limits: Mapping[str, Any]
) -> tuple[list[Check], list[Finding], dict[str, Any]]:
    """A snapshot, and a live envelope of the bot's run within ``first_message_within_s``."""
    deadline = float(limits["first_message_within_s"])
    findings = []
    if not m["snapshot"]:
        findings.append(Finding("error", "no snapshot frame for a subscriber that asked for one"))
    elapsed = m["first_live_s"]
    if elapsed is None:
        findings.append(
            Finding("error", f"no live envelope of the bot's run {str(m['bot_run_id'])[:8]} within {deadline:g}s")
        )
        return [], findings, {}
    return [Check("first_live_message_s", round(float(elapsed), 3), deadline, unit=" s")], findings, {}


def _ping_rtt(m: Mapping[str, Any], limits: Mapping[str, Any]) -> tuple[list[Check], list[Finding], dict[str, Any]]:
    """Every ping answered, round trip P99 within ``ping_rtt_p99_ms``."""
    summary = _p99(m["rtt_ms"])
    checks = [
        Check("pongs_received", len(m["rtt_ms"]), int(m["pings"]), ">="),
        Check("ping_rtt_p99_ms", summary.p99, limits["ping_rtt_p99_ms"], unit=" ms"),
    ]
    return checks, [], {"ping_rtt_ms": summary.serialize()}


def _concurrent_clients(
    m: Mapping[str, Any], limits: Mapping[str, Any]
) -> tuple[list[Check], list[Finding], dict[str, Any]]:
    """All N clients received live traffic, and the status API counted at least N."""
    n = int(m["clients"])
    checks = [
        Check("concurrent_clients_receiving", int(m["receiving"]), n, ">="),
        Check("status_api_client_count", int(m["status_client_count"]), n, ">="),
    ]
    return checks, [], {"concurrent_handshake_ms": _p99(m["handshake_ms"]).serialize()}


def _large_message(
    m: Mapping[str, Any], limits: Mapping[str, Any]
) -> tuple[list[Check], list[Finding], dict[str, Any]]:
    """A frame just under the limit was acknowledged (its size counts only when it was)."""
    size = int(m["size"])
    accepted = size if m.get("ack_type") == "ack" else 0
    findings = (
        []
        if accepted
        else [Finding("error", f"a {size}-byte frame under the limit got {m.get('ack_type')!r}, not an ack")]
    )
    return [Check("large_frame_bytes_accepted", accepted, size, ">=")], findings, {}


def _oversize_message(
    m: Mapping[str, Any], limits: Mapping[str, Any]
) -> tuple[list[Check], list[Finding], dict[str, Any]]:
    """A frame over the limit closed the connection with 1009."""
    return [Check("oversize_close_code", m["close_code"], 1009, "==")], [], {}


def _status_api(m: Mapping[str, Any], limits: Mapping[str, Any]) -> tuple[list[Check], list[Finding], dict[str, Any]]:
    """The status API lists the bot's publisher and counts 5 more clients while they are there."""
    before, during, after, extra = int(m["before"]), int(m["during"]), int(m["after"]), int(m["extra"])
    findings = []
    if m["bot_run_id"] not in m["publishers"]:
        findings.append(
            Finding(
                "error", f"bot run {str(m['bot_run_id'])[:8]} not among the status API's publishers {m['publishers']}"
            )
        )
    checks = [
        Check("status_clients_during", during, before + extra, ">="),
        Check("status_clients_after", after, during - extra, "<="),
    ]
    return checks, findings, {}


def _frames_valid(m: Mapping[str, Any], limits: Mapping[str, Any]) -> tuple[list[Check], list[Finding], dict[str, Any]]:
    """The snapshot and every frame of the live window pass the contract's schemas."""
    import wscontract

    invalid = []
    if m["snapshot"] is None:
        invalid.append("no snapshot frame")
    else:
        try:
            wscontract.validate_control(m["snapshot"])
        except wscontract.Invalid as exc:
            invalid.append(f"the snapshot: {exc}")
    for _, frame in m["frames"]:
        try:
            wscontract.validate_envelope(frame)
        except wscontract.Invalid as exc:
            invalid.append(f"seq {frame.get('seq')} ({frame.get('type')}, run {str(frame.get('run_id'))[:8]}): {exc}")
    # each names the seq, type, run, field and the validator's message (the first 10)
    findings = [Finding("error", f"INVALID FRAME on the client stream: {line}") for line in invalid[:10]]
    return [Check("invalid_frames", len(invalid), 0)], findings, {"frames": len(m["frames"])}


def _order(m: Mapping[str, Any], limits: Mapping[str, Any]) -> tuple[list[Check], list[Finding], dict[str, Any]]:
    """The bot's run in the window: enough envelopes, strictly increasing, no duplicate, no
    hole that was not declared, and every gap declaration well formed."""
    frames = [(int(t), dict(f)) for t, f in m["frames"]]
    reports = check_stream(observed_from_frames(frames))
    run = str(m["bot_run_id"])
    if run not in reports:
        return [], [Finding("error", f"no envelope of the bot's run {run[:8]} observed")], {}
    rep = reports[run]
    checks = [
        Check("envelopes_observed", rep.received, int(limits["min_messages"]), ">="),
        Check("duplicated", len(rep.duplicated), 0),
        Check("reordered", len(rep.reordered), 0),
        Check("undeclared_gaps", len(rep.undeclared_gaps), 0),
    ]
    findings = rep.findings() + check_gap_declarations(f for _, f in frames if f.get("type") == "gap")
    return checks, findings, {"stream": rep.serialize()}


def _types_seen(m: Mapping[str, Any], limits: Mapping[str, Any]) -> tuple[list[Check], list[Finding], dict[str, Any]]:
    """Every required message type appeared in the window."""
    missing = sorted(set(limits["required_types"]) - set(m["types"]))
    findings = [Finding("error", f"types never seen in the window: {missing}")] if missing else []
    return [Check("required_types_missing", len(missing), 0)], findings, {"types_seen": dict(m["types"])}


def _snapshot_matches_state(
    m: Mapping[str, Any], limits: Mapping[str, Any]
) -> tuple[list[Check], list[Finding], dict[str, Any]]:
    """The snapshot equals /api/state read around it at a quiet moment (positions, portfolio)."""
    findings = [
        Finding("error", f"snapshot {key} differ from /api/state")
        for key in ("positions", "portfolio")
        if m["snapshot"].get(key) != m["state"].get(key)
    ]
    return [], findings, {"snapshot_positions": len(m["snapshot"].get("positions") or {})}


def _filters(m: Mapping[str, Any], limits: Mapping[str, Any]) -> tuple[list[Check], list[Finding], dict[str, Any]]:
    """A subscriber with a type and symbol filter got only frames of those types and symbol."""
    wrong = [(t, sym) for t, sym in m["frames"] if t not in m["types"] or sym != m["symbol"]]
    findings = []
    if wrong:
        findings.append(
            Finding(
                "error",
                f"{len(wrong)} frame(s) outside the filter types={m['types']} symbol={m['symbol']}: {wrong[:3]}",
            )
        )
    checks = [Check("filter_violations", len(wrong), 0), Check("filtered_frames", len(m["frames"]), 1, ">=")]
    return checks, findings, {}


def _resume(m: Mapping[str, Any], limits: Mapping[str, Any]) -> tuple[list[Check], list[Finding], dict[str, Any]]:
    """A client that left and resumed got exactly what a client that stayed got, once."""
    mine, theirs = list(m["mine"]), list(m["theirs"])
    findings = []
    if not m["snapshot"]:
        findings.append(Finding("error", "no snapshot on resume"))
    if not m["resumed"]:
        findings.append(Finding("error", "backend says the resume point is no longer in its ring buffer"))
    if len(mine) != len(set(mine)):
        findings.append(Finding("error", "resumed client received duplicates"))
    if mine != theirs:
        near = next((a for a, b in zip(mine, theirs, strict=False) if a != b), None)
        findings.append(
            Finding(
                "error",
                f"resumed history differs from the witness: {len(mine)} vs {len(theirs)} envelopes; first difference near seq {near}",
            )
        )
    return [], findings, {"resume_messages_compared": len(theirs)}


def _counts_agree(m: Mapping[str, Any], limits: Mapping[str, Any]) -> tuple[list[Check], list[Finding], dict[str, Any]]:
    """The bot's /stats (before, after) and the backend's status agree on the bot's run."""
    before, status, after = m["bot_before"], m["backend"], m["bot_after"]
    figures = {
        "bot_last_seq": after.get("last_seq"),
        "bot_acked_seq": after.get("acked_seq"),
        "backend_acked_seq": status.get("runs", {}).get(after.get("run_id"), {}).get("acked_seq"),
    }
    return [], check_counts_agree(before, status, after), figures


#: stage -> probe name -> its rule
JUDGES: dict[str, dict[str, Rule]] = {
    "connectivity": {
        "handshake_time": _handshake_time,
        "first_live_message": _first_live_message,
        "ping_rtt": _ping_rtt,
        "concurrent_clients": _concurrent_clients,
        "large_message": _large_message,
        "oversize_message": _oversize_message,
        "status_api": _status_api,
    },
    "message_flow": {
        "frames_valid": _frames_valid,
        "order": _order,
        "types_seen": _types_seen,
        "snapshot_matches_state": _snapshot_matches_state,
        "filters": _filters,
        "resume": _resume,
        "counts_agree": _counts_agree,
    },
}


def judge_probe(h: ProbeHistory, limits: Mapping[str, Any]) -> dict[str, Any]:
    """The probe's row: its checks (each broken one an error finding) and its own findings."""
    rule = JUDGES.get(h.stage, {}).get(h.name)
    if rule is None:
        raise ValueError(f"no judge for probe {h.stage}/{h.name}")
    checks, findings, figures = rule(h.measured, limits)
    findings = [Finding("error", c.breach()) for c in checks if not c.passed] + findings
    return scenario_row(h.name, "none", findings, checks=[c.serialize() for c in checks], **figures)
