"""Message flow's judges: frames valid, order and gaps, types, snapshot, filters, resume, counts.

Pure: a probe's raw measurements and the thresholds in, checks and findings out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wsrig.checkers import Finding, check_counts_agree, check_gap_declarations, check_stream
from wsrig.history import observed_from_frames
from wsrig.judges.base import Check, Rule, Verdict


def _frames_valid(m: Mapping[str, Any], limits: Mapping[str, Any]) -> Verdict:
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


def _order(m: Mapping[str, Any], limits: Mapping[str, Any]) -> Verdict:
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


def _types_seen(m: Mapping[str, Any], limits: Mapping[str, Any]) -> Verdict:
    """Every required message type appeared in the window."""
    missing = sorted(set(limits["required_types"]) - set(m["types"]))
    findings = [Finding("error", f"types never seen in the window: {missing}")] if missing else []
    return [Check("required_types_missing", len(missing), 0)], findings, {"types_seen": dict(m["types"])}


def _snapshot_matches_state(m: Mapping[str, Any], limits: Mapping[str, Any]) -> Verdict:
    """The snapshot equals /api/state read around it at a quiet moment (positions, portfolio)."""
    findings = [
        Finding("error", f"snapshot {key} differ from /api/state")
        for key in ("positions", "portfolio")
        if m["snapshot"].get(key) != m["state"].get(key)
    ]
    return [], findings, {"snapshot_positions": len(m["snapshot"].get("positions") or {})}


def _filters(m: Mapping[str, Any], limits: Mapping[str, Any]) -> Verdict:
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


def _resume(m: Mapping[str, Any], limits: Mapping[str, Any]) -> Verdict:
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


def _counts_agree(m: Mapping[str, Any], limits: Mapping[str, Any]) -> Verdict:
    """The bot's /stats (before, after) and the backend's status agree on the bot's run."""
    before, status, after = m["bot_before"], m["backend"], m["bot_after"]
    figures = {
        "bot_last_seq": after.get("last_seq"),
        "bot_acked_seq": after.get("acked_seq"),
        "backend_acked_seq": status.get("runs", {}).get(after.get("run_id"), {}).get("acked_seq"),
    }
    return [], check_counts_agree(before, status, after), figures


#: probe name -> its rule
RULES: dict[str, Rule] = {
    "frames_valid": _frames_valid,
    "order": _order,
    "types_seen": _types_seen,
    "snapshot_matches_state": _snapshot_matches_state,
    "filters": _filters,
    "resume": _resume,
    "counts_agree": _counts_agree,
}
