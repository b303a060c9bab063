"""Connectivity's judges: handshakes, first message, pings, concurrent clients, frame size, status API.

Pure: a probe's raw measurements and the thresholds in, checks and findings out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wsrig.checkers import Finding
from wsrig.judges.base import Check, Rule, Verdict, p99


def _handshake_time(m: Mapping[str, Any], limits: Mapping[str, Any]) -> Verdict:
    """Every client completed its handshake, P99 within ``handshake_p99_ms``."""
    summary = p99(m["handshake_ms"])
    checks = [
        Check("handshakes_completed", len(m["handshake_ms"]), int(m["clients"]), ">="),
        Check("handshake_p99_ms", summary.p99, limits["handshake_p99_ms"], unit=" ms"),
    ]
    return checks, [], {"handshake_ms": summary.serialize()}


def _first_live_message(m: Mapping[str, Any], limits: Mapping[str, Any]) -> Verdict:
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


def _ping_rtt(m: Mapping[str, Any], limits: Mapping[str, Any]) -> Verdict:
    """Every ping answered, round trip P99 within ``ping_rtt_p99_ms``."""
    summary = p99(m["rtt_ms"])
    checks = [
        Check("pongs_received", len(m["rtt_ms"]), int(m["pings"]), ">="),
        Check("ping_rtt_p99_ms", summary.p99, limits["ping_rtt_p99_ms"], unit=" ms"),
    ]
    return checks, [], {"ping_rtt_ms": summary.serialize()}


def _concurrent_clients(m: Mapping[str, Any], limits: Mapping[str, Any]) -> Verdict:
    """All N clients received live traffic, and the status API counted at least N."""
    n = int(m["clients"])
    checks = [
        Check("concurrent_clients_receiving", int(m["receiving"]), n, ">="),
        Check("status_api_client_count", int(m["status_client_count"]), n, ">="),
    ]
    return checks, [], {"concurrent_handshake_ms": p99(m["handshake_ms"]).serialize()}


def _large_message(m: Mapping[str, Any], limits: Mapping[str, Any]) -> Verdict:
    """A frame just under the limit was acknowledged (its size counts only when it was)."""
    size = int(m["size"])
    accepted = size if m.get("ack_type") == "ack" else 0
    findings = (
        []
        if accepted
        else [Finding("error", f"a {size}-byte frame under the limit got {m.get('ack_type')!r}, not an ack")]
    )
    return [Check("large_frame_bytes_accepted", accepted, size, ">=")], findings, {}


def _oversize_message(m: Mapping[str, Any], limits: Mapping[str, Any]) -> Verdict:
    """A frame over the limit closed the connection with 1009."""
    return [Check("oversize_close_code", m["close_code"], 1009, "==")], [], {}


def _status_api(m: Mapping[str, Any], limits: Mapping[str, Any]) -> Verdict:
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


#: probe name -> its rule
RULES: dict[str, Rule] = {
    "handshake_time": _handshake_time,
    "first_live_message": _first_live_message,
    "ping_rtt": _ping_rtt,
    "concurrent_clients": _concurrent_clients,
    "large_message": _large_message,
    "oversize_message": _oversize_message,
    "status_api": _status_api,
}
