"""The security stage's judges: token, Origin, frame size, invalid input, handshake timeout,
connection and rate limits, the fuzz, the flood, container hardening.

Pure: a probe's raw measurements (close codes and HTTP statuses, error frames received,
counter deltas and dead letters from the backend's status, stored data before and after,
the normal client's latency and the measuring client's own health) and the thresholds
in; checks and findings out. Each finding starts with the protection it is about
(``token check:``, ``origin check:``, ``size limit:``, ``invalid input:``, ...), names
its check and carries the measured facts. A frame the backend rejects is accounted for,
never silently gone: its error frame, its counter, its dead letter and the store left
intact are each judged from what was measured.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from wsrig.checkers import Finding
from wsrig.hardening import hardening_problems, summarize
from wsrig.hostile import check_counters, check_dead_letters, check_stored, check_unchanged, counter_deltas
from wsrig.judges.base import Check, Rule, Verdict
from wsrig.righealth import ProcessHealth, RigHealth, RigLimits, beyond_rig, scenario_status
from wsrig.stats import LatencySummary

#: the token probe's cases: a hello without ``auth``, a hello with a wrong token
TOKEN_CASES = ("auth_missing_token", "auth_wrong_token")
#: the tokens the backend's log is searched for
TOKEN_SECRETS = ("the configured token", "a wrong token")
#: the origin probe's endpoints: a foreign Origin must be refused on each
ORIGIN_PATHS = ("/ws/stream", "/ws")
#: the handshake-timeout probe's cases: TCP with no upgrade, a half-sent upgrade (both
#: dropped), an upgraded publisher that never sends its hello (closed 1008)
HANDSHAKE_DROPS = ("handshake_silent_tcp", "handshake_partial_upgrade")
#: close codes the flooding publisher may get: none (throttled) or the keepalive's 1011
FLOOD_PUBLISHER_CLOSES = (None, 1011)


def _error(check: str, message: str, **evidence: Any) -> Finding:
    return Finding("error", message, check=check, evidence=evidence)


def _counted_once(check: str, what: str, counter: str, counted: int, **evidence: Any) -> list[Finding]:
    """The backend's ``counter`` rose by exactly one for the one bad input sent: else a finding."""
    if counted == 1:
        return []
    return [_error(check, f"{what}: {counter} rose by {counted}, expected 1", **{counter: counted}, **evidence)]


def _publisher_token(m: Mapping[str, Any], limits: Mapping[str, Any]) -> Verdict:
    """A hello with a missing or a wrong token is closed 1008 and counted; no token reaches the log."""
    findings, observed = [], []
    for case in TOKEN_CASES:
        code, counted = m["cases"][case]["close_code"], m["cases"][case]["auth_failures"]
        if code != 1008:
            findings.append(
                _error(
                    "auth_close_code",
                    f"token check: {case}: expected close 1008, got {code}",
                    case=case,
                    close_code=code,
                )
            )
        findings += _counted_once("auth_failures_counted", f"token check: {case}", "auth_failures", counted, case=case)
        observed.append(f"{case}: close {code}, auth_failures +{counted}")
    leaked = [label for label in TOKEN_SECRETS if m["secrets_in_log"][label]]
    findings += [
        _error("secrets_not_logged", f"token check: {label} appears in the backend's log", secret=label)
        for label in leaked
    ]
    observed.append("leaked: " + ", ".join(leaked) if leaked else "no token in the log")
    figures = {
        "expected": "close 1008 and auth_failures +1 for a missing and a wrong token; neither token in the log",
        "observed": "; ".join(observed),
    }
    return [], findings, figures


def _origin_check(m: Mapping[str, Any], limits: Mapping[str, Any]) -> Verdict:
    """A foreign Origin is refused (403) on both endpoints and counted; an allowed Origin
    passes, and a missing one as the policy (SYSTEM__ALLOW_MISSING_ORIGIN) says."""
    allowed, evil = list(m["allowed_origins"]), m["evil_origin"]
    findings, observed = [], []
    if not allowed:
        findings.append(
            _error(
                "origin_allow_list",
                "origin check: no allow-list configured (SYSTEM__ALLOWED_ORIGINS is empty): any web page may connect",
                allowed_origins=allowed,
            )
        )
    for path in ORIGIN_PATHS:
        status, counted = m["rejected"][path]["status"], m["rejected"][path]["origin_rejected"]
        if status != 403:
            findings.append(
                _error(
                    "origin_rejected",
                    f"origin check: Origin {evil} on {path} got HTTP {status}, expected 403",
                    path=path,
                    origin=evil,
                    status=status,
                )
            )
        findings += _counted_once(
            "origin_rejected_counted", f"origin check: {path}", "origin_rejected", counted, path=path
        )
        observed.append(f"{evil} on {path}: HTTP {status}, origin_rejected +{counted}")
    if allowed:
        status = m["allowed_status"]
        if status != 101:
            findings.append(
                _error(
                    "origin_allowed",
                    f"origin check: allowed Origin {allowed[0]} got HTTP {status}",
                    origin=allowed[0],
                    status=status,
                )
            )
        observed.append(f"{allowed[0]}: HTTP {status}")
    want = 101 if m["allow_missing"] else 403
    if m["missing_status"] != want:
        findings.append(
            _error(
                "origin_missing",
                f"origin check: no Origin got HTTP {m['missing_status']}, policy says {want}",
                status=m["missing_status"],
                allow_missing=m["allow_missing"],
            )
        )
    observed.append(f"no Origin: HTTP {m['missing_status']}")
    figures = {
        "expected": f"HTTP 403 and origin_rejected +1 for {evil} on {' and '.join(ORIGIN_PATHS)}; 101 for an"
        f" allowed Origin; {want} with none",
        "observed": "; ".join(observed),
    }
    return [], findings, figures


def _size_limit(m: Mapping[str, Any], limits: Mapping[str, Any]) -> Verdict:
    """A frame over SYSTEM__MAX_FRAME_BYTES closes the connection with 1009 and is counted."""
    code, counted, size, limit = m["close_code"], m["oversize_closes"], m["frame_bytes"], m["limit"]
    findings = []
    if code != 1009:
        findings.append(
            _error(
                "size_limit_close_code",
                f"size limit: a frame of {size} bytes got close {code}, expected 1009 (limit {limit})",
                close_code=code,
                frame_bytes=size,
                limit=limit,
            )
        )
    findings += _counted_once("size_limit_counted", "size limit", "oversize_closes", counted)
    figures = {"expected": "close 1009, oversize_closes +1", "observed": f"close {code}, oversize_closes +{counted}"}
    return [], findings, figures


def _invalid_input(m: Mapping[str, Any], limits: Mapping[str, Any]) -> Verdict:
    """Each kind of invalid frame is accounted for: an error frame with its code, its
    ``rejected_by_code`` counter +1, a dead letter; the connection stays up and the store
    holds only the one valid trade sent after them."""
    cases = list(m["cases"])
    findings = []
    if not cases:
        findings.append(_error("invalid_cases", "invalid input: no invalid frame was sent", cases=0))
    for c in cases:
        name, want, got, counted = c["name"], c["want"], c["error_code"], c["counted"]
        if got != want:
            findings.append(
                _error(
                    "error_frame",
                    f"invalid input: {name}: expected error {want}, got {got or 'no error frame'}",
                    case=name,
                    expected=want,
                    error_code=got,
                )
            )
        findings += _counted_once(
            "rejection_counted", f"invalid input: {name}", f"rejected_by_code.{want}", counted, case=name, code=want
        )
    rejected = Counter(str(c["want"]) for c in cases)
    findings += [
        _error("dead_lettered", f"invalid input: {p}", rejected=dict(rejected))
        for p in check_dead_letters(rejected, m["status_before"], m["status_after"])
    ]
    if not m["acked"]:
        findings.append(
            _error(
                "connection_stays_up",
                "invalid input: the connection did not stay up (a valid trade after them was not acked)",
                valid_seq=m["valid_seq"],
            )
        )
    stored = list(m["stored_seqs"])
    if stored != [m["valid_seq"]]:
        findings.append(
            _error(
                "store_intact",
                f"invalid input: {len(stored)} envelope(s) stored for the run (seqs {stored[:10]}), expected only"
                f" the 1 valid one (seq {m['valid_seq']})",
                stored_seqs=stored[:10],
                valid_seq=m["valid_seq"],
            )
        )
    figures = {
        "expected": "per invalid frame: its error code, rejected_by_code +1, a dead letter; the next valid trade"
        " acked and only it stored",
        "observed": "; ".join(f"{c['name']}: error {c['error_code']} +{c['counted']}" for c in cases)
        + f"; acked={bool(m['acked'])}, stored={len(stored)}",
        "invalid_frames": len(cases),
    }
    return [], findings, figures


def _invalid_utf8_text(m: Mapping[str, Any], limits: Mapping[str, Any]) -> Verdict:
    """A text frame that is not UTF-8 breaks RFC 6455: close 1007, counted."""
    code, counted = m["close_code"], m["invalid_utf8_closes"]
    findings = []
    if code != 1007:
        findings.append(
            _error(
                "invalid_utf8_close_code",
                f"invalid input: non-UTF-8 text frame got close {code}, expected 1007",
                close_code=code,
            )
        )
    findings += _counted_once("invalid_utf8_counted", "invalid input", "invalid_utf8_closes", counted)
    return [], findings, {"expected": "close 1007, invalid_utf8_closes +1", "observed": f"close {code}, +{counted}"}


def _bad_subscribe(m: Mapping[str, Any], limits: Mapping[str, Any]) -> Verdict:
    """An invalid subscribe gets error bad_subscribe (counted), then the default subscription's snapshot."""
    kinds, counted = list(m["kinds"]), m["bad_subscribe"]
    findings = []
    if kinds[:2] != ["bad_subscribe", "snapshot"]:
        findings.append(
            _error(
                "bad_subscribe_answer",
                f"invalid input: bad subscribe: expected error bad_subscribe then a snapshot, got {kinds}",
                kinds=kinds,
            )
        )
    findings += _counted_once("bad_subscribe_counted", "invalid input", "bad_subscribe", counted)
    figures = {"expected": "error bad_subscribe, snapshot, counter +1", "observed": f"{kinds}, counter +{counted}"}
    return [], findings, figures


def _handshake_timeout(m: Mapping[str, Any], limits: Mapping[str, Any]) -> Verdict:
    """TCP with no upgrade and a half-sent upgrade are dropped, an upgrade with no hello is
    closed 1008, each within SYSTEM__HANDSHAKE_TIMEOUT + ``handshake_timeout_slack_s``, and counted."""
    timeout = float(m["handshake_timeout_s"])
    bound = timeout + float(limits["handshake_timeout_slack_s"])
    findings, observed = [], []
    for case in HANDSHAKE_DROPS:
        took, counted = m["cases"][case]["took_s"], m["cases"][case]["handshake_timeouts"]
        if took is None or took > bound:
            when = f"still open after {m['waited_s']:.0f}s" if took is None else f"dropped only after {took:.2f}s"
            findings.append(
                _error(
                    "handshake_dropped",
                    f"handshake timeout: {case}: {when}, bound {bound:g}s (SYSTEM__HANDSHAKE_TIMEOUT={timeout:g})",
                    case=case,
                    took_s=took,
                    bound_s=bound,
                )
            )
        findings += _counted_once(
            "handshake_counted", f"handshake timeout: {case}", "handshake_timeouts", counted, case=case
        )
        observed.append(
            f"{case}: " + ("not dropped" if took is None else f"dropped after {took:.2f}s") + f", +{counted}"
        )
    hello = m["cases"]["handshake_no_hello"]
    code, took, counted = hello["close_code"], hello["took_s"], hello["handshake_timeouts"]
    if code != 1008 or took > bound:
        findings.append(
            _error(
                "handshake_no_hello",
                f"handshake timeout: a publisher with no hello got close {code} after {took:.1f}s (bound {bound:g}s)",
                close_code=code,
                took_s=took,
                bound_s=bound,
            )
        )
    findings += _counted_once(
        "handshake_counted", "handshake timeout: no hello", "handshake_timeouts", counted, case="handshake_no_hello"
    )
    observed.append(f"handshake_no_hello: close {code} after {took:.2f}s, +{counted}")
    figures = {
        "expected": f"each dropped (no hello: close 1008) within {bound:g}s, handshake_timeouts +1",
        "observed": "; ".join(observed),
        "bound_s": bound,
    }
    return [], findings, figures


def _connection_limit(m: Mapping[str, Any], limits: Mapping[str, Any]) -> Verdict:
    """At SYSTEM__MAX_CONNECTIONS open WebSockets the next handshake gets 503 (counted); a freed slot is reused."""
    limit, live, refused_at, counted, reused = (
        int(m["limit"]),
        int(m["live"]),
        m["refused_at"],
        m["connections_refused"],
        m["reuse_status"],
    )
    findings = []
    if refused_at is None:
        findings.append(
            _error(
                "connection_limit_enforced",
                f"connection limit: {m['opened']} extra connections (on top of {live}) all accepted; limit {limit}",
                opened=m["opened"],
                live=live,
                limit=limit,
            )
        )
    elif not limit - 5 <= live + refused_at <= limit:  # a handful may close while the batch opens
        findings.append(
            _error(
                "connection_limit_enforced",
                f"connection limit: refused with {live + refused_at} connections open, limit is {limit}",
                open=live + refused_at,
                limit=limit,
            )
        )
    if counted < 1:
        findings.append(
            _error(
                "connection_limit_counted",
                "connection limit: connections_refused did not rise",
                connections_refused=counted,
            )
        )
    if reused != 101:
        findings.append(
            _error(
                "connection_slot_reused",
                f"connection limit: a freed slot was not reused (HTTP {reused})",
                status=reused,
            )
        )
    at = live + refused_at if refused_at is not None else "never"
    figures = {
        "expected": f"HTTP 503 at {limit} open connections, connections_refused +1, freed slot reusable",
        "observed": f"refused at {at}, +{counted}, reuse HTTP {reused}",
    }
    return [], findings, figures


def _client_rate_limit(m: Mapping[str, Any], limits: Mapping[str, Any]) -> Verdict:
    """A /ws/stream client sending over its frame rate is closed 1008 and counted."""
    code, counted, sent = m["close_code"], m["rate_limit_closes"], m["sent"]
    findings = []
    if code != 1008:
        findings.append(
            _error(
                "client_rate_close_code",
                f"rate limit: a client sending {sent} frames at once got close {code}, expected 1008"
                f" (rate {m['rate']:g}/s, burst {m['burst']})",
                close_code=code,
                sent=sent,
            )
        )
    findings += _counted_once("client_rate_counted", "rate limit", "rate_limit_closes", counted)
    figures = {
        "expected": "close 1008, rate_limit_closes +1",
        "observed": f"close {code} after {sent} frames, +{counted}",
    }
    return [], findings, figures


def _rig_verdict(
    latency: Check, checks: list[Check], findings: list[Finding], health: Mapping[str, Any], rig_limits: RigLimits
) -> dict[str, Any]:
    """A client latency judged with the measuring client's own health (``wsrig.righealth``).

    A late client adds at most its worst stall to its P99: a breach within that reach is
    not the system's, and with the client lagging the row is ``invalid`` (never failed or
    passed); a breach beyond it, or with a healthy client, fails. Correctness findings and
    the other checks fail whatever the client did. The row's status (only when invalid),
    reasons and the client's health, as figures.
    """
    rig = RigHealth((ProcessHealth(**health),))
    lag = rig.lagging(rig_limits)
    if lag and beyond_rig(float(latency.value), latency.op, float(latency.threshold), rig.worst_stall_ms):
        lag = []
    correctness = [f.message for f in findings if f.severity == "error"]
    correctness += [c.breach() for c in checks if c is not latency and not c.passed]
    status = scenario_status(correctness, [] if latency.passed else [latency.breach()], [], lag)
    figures: dict[str, Any] = {"invalid_reasons": lag if status == "invalid" else [], "rig_health": rig.serialize()}
    if status == "invalid":
        figures["status"] = "invalid"
    return figures


def _fuzz(m: Mapping[str, Any], limits: Mapping[str, Any]) -> Verdict:
    """At least ``fuzz_min_frames`` hostile frames: every rejection answered, counted and
    dead-lettered as the contract predicts, exactly the valid critical envelopes stored,
    the bot's stored data unchanged, no run nobody opened, the backend healthy and not
    restarted, and a normal client connected with its P99 after the fuzz within ``client_p99_ms``."""
    tally, before, after = m["tally"], m["status_before"], m["status_after"]
    deltas = counter_deltas(before["counters"], after["counters"])
    findings = [
        _error("fuzz_counters", f"fuzz: {p}", counter_deltas=_fuzz_deltas(deltas), errors_seen=m["errors_seen"])
        for p in check_counters(tally, deltas, m["errors_seen"])
    ]
    findings += [
        _error("fuzz_dead_lettered", f"fuzz: {p}", rejected_by_code=tally["rejected_by_code"])
        for p in check_dead_letters(tally["rejected_by_code"], before, after)
    ]
    if m["publisher_closed"] is not None:
        findings.append(
            _error(
                "fuzz_publisher_kept",
                f"fuzz: the fuzz publisher's connection was closed ({m['publisher_closed']}) although every frame"
                " fits the protocol",
                close_code=m["publisher_closed"],
            )
        )
    findings += [
        _error("fuzz_stream_connections", f"fuzz: /ws/stream connection failed: {e}", error=e)
        for e in m["stream_errors"][:5]
    ]
    health = m["health"]
    if health["error"] is not None:
        findings.append(
            _error("fuzz_backend_healthy", f"fuzz: backend unreachable after the fuzz: {health['error']}", **health)
        )
    healthy = health["status"] == 200 and health["error"] is None
    if not (healthy and health["ready"]):
        findings.append(
            _error(
                "fuzz_backend_healthy",
                f"fuzz: backend not healthy after the fuzz (health={healthy}, ready={health['ready']})",
                **health,
            )
        )
    container = m["container"]
    if container["started_after"] != container["started_before"] or container["state_after"] != "running":
        findings.append(
            _error(
                "fuzz_backend_not_restarted",
                f"fuzz: the backend container restarted or stopped ({container['state_after']})",
                **container,
            )
        )
    critical = {int(e["seq"]): e for e in m["sent_critical"]}
    trades = {seq: e for seq, e in critical.items() if e.get("type") == "trade"}
    stored = check_stored("/api/events", critical, m["events"]) + check_stored("/api/trades", trades, m["trades"])
    findings += [_error("fuzz_stored_exactly", f"fuzz: {p}", run_id=m["run_id"]) for p in stored]
    bot = str(m["bot_run_id"])
    findings += [
        _error("fuzz_bot_store_unchanged", f"fuzz: {p}", run_id=bot)
        for p in check_unchanged(f"bot run {bot[:8]}", m["bot_events_before"], m["bot_events_after"])
    ]
    new_runs = sorted(set(after["runs"]) - set(before["runs"]) - {m["run_id"]})
    if new_runs:
        findings.append(
            _error("fuzz_no_new_runs", f"fuzz: runs appeared that no hello opened: {new_runs[:5]}", runs=new_runs[:5])
        )
    after_lat = LatencySummary.from_ms(m["latency_after_ms"])
    if after_lat.count == 0:
        findings.append(
            _error(
                "fuzz_normal_client_served",
                "fuzz: the normal client received no bot envelope after the fuzz",
                samples=0,
                window_s=m["latency_window_s"],
            )
        )
    if m["normal_closed"] is not None:
        findings.append(
            _error(
                "fuzz_normal_client_kept",
                f"fuzz: the normal client was disconnected ({m['normal_closed']})",
                close_code=m["normal_closed"],
            )
        )
    latency = Check("fuzz_client_p99_after_ms", after_lat.p99, float(limits["client_p99_ms"]), unit=" ms")
    checks = [Check("fuzz_frames", int(tally["frames"]), int(limits["fuzz_min_frames"]), ">="), latency]
    figures = {
        "seed": m["seed"],
        "generate_s": m["generate_s"],
        "fuzz_s": m["fuzz_s"],
        "frames": tally["frames"],
        "bytes": tally["bytes"],
        "fuzz": tally,
        "counter_deltas": _fuzz_deltas(deltas),
        "expected": {
            "frames": tally["frames"],
            "rejected_by_code": tally["rejected_by_code"],
            "bad_subscribe": tally["bad_subscribe"],
            "client_frames_ignored": tally["ignored_client_frames"],
            "stored_events": len(critical),
            "stored_trades": len(trades),
            "internal_errors": 0,
            "healthy": True,
        },
        "observed": {
            "rejected_by_code": deltas.get("rejected_by_code", {}),
            "error_frames": dict(m["errors_seen"]),
            "bad_subscribe": deltas.get("bad_subscribe", 0),
            "client_frames_ignored": deltas.get("client_frames_ignored", 0),
            "stored_events": len(m["events"]),
            "stored_trades": len(m["trades"]),
            "internal_errors": deltas.get("internal_errors", 0),
            "healthy": healthy and bool(health["ready"]),
        },
        "latency_ms_during": LatencySummary.from_ms(m["latency_during_ms"]).serialize(),
        "latency_ms": after_lat.serialize(),
        **_rig_verdict(latency, checks, findings, m["normal_health"], limits["rig_health"]),
    }
    return checks, findings, figures


def _fuzz_deltas(deltas: Mapping[str, Any]) -> dict[str, Any]:
    """The counters the fuzz moves, as the row shows them."""
    keys = ("received", "unique", "rejected", "rejected_by_code", "bad_subscribe", "client_frames_ignored")
    return {k: deltas.get(k) for k in (*keys, "internal_errors", "publisher_throttled", "committed")}


def _flood(m: Mapping[str, Any], limits: Mapping[str, Any]) -> Verdict:
    """One publisher and one client connection flood: another client stays connected and
    served with its P99 during the flood within ``client_p99_ms``; the flooding client is
    closed 1008 (counted); the flooding publisher is throttled, not closed (the keepalive's
    1011 aside). A throttle never reached is a warning: the flood did not exercise it."""
    p99_max = float(limits["client_p99_ms"])
    flood, window_ns = m["flood"], float(m["baseline_window_s"]) * 1e9
    start = int(m["flood_start_ns"])
    samples = [(int(t), float(ms)) for t, ms in m["bot_latencies"]]
    baseline = LatencySummary.from_ms(ms for t, ms in samples if start - window_ns <= t < start)
    during = LatencySummary.from_ms(ms for t, ms in samples if flood["start_ns"] <= t <= flood["end_ns"])
    findings = []
    if during.count == 0:
        findings.append(
            _error(
                "flood_normal_client_served",
                "flood: the normal client received no bot envelope during the flood",
                samples=0,
                flood_ns=[flood["start_ns"], flood["end_ns"]],
            )
        )
    if m["normal_closed"] is not None:
        findings.append(
            _error(
                "flood_normal_client_kept",
                f"flood: the normal client was disconnected ({m['normal_closed']})",
                close_code=m["normal_closed"],
            )
        )
    rate_closes, throttled = m["rate_limit_closes"], m["publisher_throttled"]
    if flood["client_close"] != 1008 or rate_closes != 1:
        findings.append(
            _error(
                "flood_client_closed",
                f"rate limit: the flooding client got close {flood['client_close']} (rate_limit_closes"
                f" +{rate_closes}), expected 1008 and +1",
                close_code=flood["client_close"],
                rate_limit_closes=rate_closes,
            )
        )
    if flood["publisher_close"] not in FLOOD_PUBLISHER_CLOSES:
        findings.append(
            _error(
                "flood_publisher_throttled",
                f"flood: the flooding publisher was closed with {flood['publisher_close']}; the policy is to throttle it",
                close_code=flood["publisher_close"],
            )
        )
    if throttled == 0:
        findings.append(
            Finding(
                "warning",
                f"flood: the publisher flood ({flood['publisher_frames']} frames in {m['flood_s']:g}s) never hit"
                " SYSTEM__PUBLISHER_MAX_MSGS_PER_S: the throttle was not exercised",
                check="flood_throttle_exercised",
                evidence={"publisher_frames": flood["publisher_frames"], "publisher_throttled": throttled},
            )
        )
    latency = Check("flood_client_p99_ms", during.p99, p99_max, unit=" ms")
    figures = {
        "expected": f"normal client P99 <= {p99_max:g} ms; flooding client closed 1008; flooding publisher"
        " throttled (or cut by the keepalive, 1011)",
        "observed": {
            "p99_baseline_ms": baseline.p99,
            "p99_during_ms": during.p99,
            "publisher_frames": flood["publisher_frames"],
            "publisher_throttled": throttled,
            "publisher_close": flood["publisher_close"],
            "client_frames": flood["client_frames"],
            "client_close": flood["client_close"],
            "rate_limit_closes": rate_closes,
        },
        "flood_effect_p99_ms": round(during.p99 - baseline.p99, 3),
        "latency_ms_baseline": baseline.serialize(),
        "latency_ms": during.serialize(),
        **_rig_verdict(latency, [latency], findings, m["normal_health"], limits["rig_health"]),
    }
    return [latency], findings, figures


def _container_hardening(m: Mapping[str, Any], limits: Mapping[str, Any]) -> Verdict:
    """Every service container: non-root, read-only root, no added capabilities,
    no-new-privileges, loopback ports, writable only /data and /tmp; no process runs as root."""
    containers = m["containers"]
    findings = []
    if not containers:
        findings.append(_error("hardening", "hardening: no container inspected", containers=0))
    for service, c in containers.items():
        findings += [
            _error("hardening", f"hardening: {service}: {p}", service=service, settings=summarize(c["inspect"]))
            for p in hardening_problems(c["inspect"])
        ]
        if c["top_error"] is not None:
            findings.append(
                Finding(
                    "warning",
                    f"hardening: {service}: docker top failed: {c['top_error']}",
                    check="hardening_processes",
                    evidence={"service": service},
                )
            )
        root = [u for u in c["process_users"] or [] if u in ("root", "0")]
        if root:
            findings.append(
                _error(
                    "hardening_processes",
                    f"hardening: {service}: {len(root)} process(es) run as root",
                    service=service,
                    process_users=c["process_users"],
                )
            )
    figures = {
        "expected": "non-root, read-only root fs, CapDrop ALL, no CapAdd, no-new-privileges, ports on 127.0.0.1"
        " only, writable only /data and /tmp",
        "observed": {service: summarize(c["inspect"]) for service, c in containers.items()},
    }
    return [], findings, figures


#: probe name -> its rule
RULES: dict[str, Rule] = {
    "publisher_token": _publisher_token,
    "origin_check": _origin_check,
    "size_limit": _size_limit,
    "invalid_input": _invalid_input,
    "invalid_utf8_text": _invalid_utf8_text,
    "bad_subscribe": _bad_subscribe,
    "handshake_timeout": _handshake_timeout,
    "connection_limit": _connection_limit,
    "client_rate_limit": _client_rate_limit,
    "fuzz": _fuzz,
    "flood": _flood,
    "container_hardening": _container_hardening,
}
