"""The security stage's judges on recorded measurements: one clean history per probe, and
per probe the defects it exists to catch, each a named finding (check and evidence)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from test_hardening import GOOD as HARDENED

from wsrig import messages
from wsrig.judges import JUDGES, judge_probe
from wsrig.righealth import RigLimits
from wsrig.scenario_history import ProbeHistory, history_path, load_history
from wsrig.scenario_judge import judge_history

LIMITS = {
    "client_p99_ms": 100.0,
    "fuzz_min_frames": 10000,
    "handshake_timeout_slack_s": 3,
    "origin_rejected_probe": "http://evil.example",
}
RIG_TABLE = {
    "loop_lag_p99_ms": 10,
    "loop_lag_max_ms": 50,
    "generator_lag_p99_ms": 20,
    "us_per_delivery": 20,
    "us_per_delivery_min_rate": 25000,
}
RIG = RigLimits.from_thresholds(RIG_TABLE)

HEALTHY = {"name": "normal client", "loop_lag_p99_ms": 1.0, "loop_lag_max_ms": 6.0, "cpu_s": 1.0}
#: the measuring client ran late: its worst stall (80 ms) could have added that much to a latency
LAGGING = {"name": "normal client", "loop_lag_p99_ms": 30.0, "loop_lag_max_ms": 80.0, "cpu_s": 1.0}

FUZZ_RUN = "fuzz-0001"
BOT_RUN = "bot-0001"
_TRADE = messages.envelope(FUZZ_RUN, 1, "trade")
_ORDER = messages.envelope(FUZZ_RUN, 2, "order")
_BOT_A = messages.envelope(BOT_RUN, 1, "order")
_BOT_B = messages.envelope(BOT_RUN, 2, "trade")
FLOOD_START = 1_000_000_000_000


def _counters(rejected: dict[str, int], bad: int, ignored: int, **more: int) -> dict[str, Any]:
    return {
        "rejected": sum(rejected.values()),
        "rejected_by_code": rejected,
        "bad_subscribe": bad,
        "client_frames_ignored": ignored,
        "internal_errors": 0,
        **more,
    }


CLEAN: dict[str, dict[str, Any]] = {
    "publisher_token": {
        "cases": {
            "auth_missing_token": {"close_code": 1008, "auth_failures": 1},
            "auth_wrong_token": {"close_code": 1008, "auth_failures": 1},
        },
        "secrets_in_log": {"the configured token": False, "a wrong token": False},
    },
    "origin_check": {
        "allowed_origins": ["http://127.0.0.1:8000"],
        "allow_missing": True,
        "evil_origin": "http://evil.example",
        "rejected": {
            "/ws/stream": {"status": 403, "origin_rejected": 1},
            "/ws": {"status": 403, "origin_rejected": 1},
        },
        "allowed_status": 101,
        "missing_status": 101,
    },
    "size_limit": {"limit": 1048576, "frame_bytes": 1049794, "close_code": 1009, "oversize_closes": 1},
    "invalid_input": {
        "cases": [
            {"name": "invalid_json", "want": "invalid_json", "error_code": "invalid_json", "counted": 1},
            {"name": "wrong_type", "want": "schema_violation", "error_code": "schema_violation", "counted": 1},
            {"name": "non_utf8_binary", "want": "invalid_json", "error_code": "invalid_json", "counted": 1},
            {"name": "run_mismatch", "want": "run_mismatch", "error_code": "run_mismatch", "counted": 1},
        ],
        "status_before": {"counters": {}, "runs": [], "dead_letters": {"by_code": {"invalid_json": 3}}},
        "status_after": {
            "counters": {},
            "runs": [],
            "dead_letters": {"by_code": {"invalid_json": 5, "schema_violation": 1, "run_mismatch": 1}},
        },
        "acked": True,
        "valid_seq": 105,
        "stored_seqs": [105],
    },
    "invalid_utf8_text": {"close_code": 1007, "invalid_utf8_closes": 1},
    "bad_subscribe": {"kinds": ["bad_subscribe", "snapshot"], "bad_subscribe": 1},
    "handshake_timeout": {
        "handshake_timeout_s": 10.0,
        "waited_s": 18.0,
        "cases": {
            "handshake_silent_tcp": {"took_s": 10.1, "handshake_timeouts": 1},
            "handshake_partial_upgrade": {"took_s": 10.05, "handshake_timeouts": 1},
            "handshake_no_hello": {"close_code": 1008, "took_s": 10.2, "handshake_timeouts": 1},
        },
    },
    "connection_limit": {
        "limit": 1000,
        "live": 4,
        "refused_at": 996,
        "opened": 996,
        "connections_refused": 1,
        "reuse_status": 101,
    },
    "client_rate_limit": {"rate": 20.0, "burst": 50, "sent": 71, "close_code": 1008, "rate_limit_closes": 1},
    "fuzz": {
        "run_id": FUZZ_RUN,
        "bot_run_id": BOT_RUN,
        "seed": 20240601,
        "generate_s": 14.0,
        "fuzz_s": 30.0,
        "tally": {
            "frames": 10300,
            "bytes": 10_000_000,
            "accepted": 3,
            "accepted_critical": 2,
            "accepted_trades": 1,
            "rejected_by_code": {"invalid_json": 2, "schema_violation": 1},
            "bad_subscribe": 1,
            "good_subscribe": 1,
            "ignored_client_frames": 4,
        },
        "sent_critical": [_TRADE, _ORDER],
        "status_before": {
            "counters": _counters({"invalid_json": 5}, 0, 0, committed=10),
            "runs": [BOT_RUN],
            "dead_letters": {"by_code": {"invalid_json": 5}},
        },
        "status_after": {
            "counters": _counters({"invalid_json": 7, "schema_violation": 1}, 1, 4, committed=40),
            "runs": [BOT_RUN, FUZZ_RUN],
            "dead_letters": {"by_code": {"invalid_json": 7, "schema_violation": 1}},
        },
        "errors_seen": {"invalid_json": 2, "schema_violation": 1},
        "publisher_closed": None,
        "stream_errors": [],
        "normal_closed": None,
        "health": {"status": 200, "ready": True, "error": None},
        "container": {"started_before": "t0", "started_after": "t0", "state_after": "running"},
        "events": [_TRADE, _ORDER],
        "trades": [_TRADE],
        "bot_events_before": [_BOT_A],
        "bot_events_after": [_BOT_A, _BOT_B],
        "latency_during_ms": [4.0] * 200,
        "latency_window_s": 5.0,
        "latency_after_ms": [3.0] * 200,
        "normal_health": HEALTHY,
    },
    "flood": {
        "flood_s": 6.0,
        "baseline_window_s": 5.0,
        "flood_start_ns": FLOOD_START,
        "flood": {
            "start_ns": FLOOD_START + 10_000_000,
            "end_ns": FLOOD_START + 6_000_000_000,
            "publisher_frames": 120000,
            "publisher_close": None,
            "client_frames": 400,
            "client_close": 1008,
        },
        "normal_closed": None,
        "publisher_throttled": 5000,
        "rate_limit_closes": 1,
        "bot_latencies": [[FLOOD_START - 4_000_000_000 + i * 20_000_000, 3.0] for i in range(200)]
        + [[FLOOD_START + 100_000_000 + i * 20_000_000, 5.0] for i in range(250)],
        "normal_health": HEALTHY,
    },
    "container_hardening": {
        "containers": {
            service: {
                "inspect": copy.deepcopy(HARDENED),  # a container as the hardening rules want it
                "process_users": ["10001"],
                "top_error": None,
            }
            for service in ("dashboard-backend", "ai-trading-bot")
        }
    },
}


def _measured(name: str, **changed: Any) -> dict[str, Any]:
    """The clean history of ``name`` with ``changed`` set; a key ``a.b.c`` sets a nested value."""
    m = copy.deepcopy(CLEAN[name])
    for key, value in changed.items():
        *path, last = key.split(".")
        target = m
        for part in path:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value
    return m


def _row(name: str, limits: dict[str, Any] | None = None, **changed: Any) -> dict[str, Any]:
    h = ProbeHistory(name=name, stage="security", measured=_measured(name, **changed))
    return judge_probe(h, limits or LIMITS, RIG)


def _errors(row: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in row["findings"] if f["severity"] == "error"]


def _found(row: dict[str, Any]) -> str:
    return " | ".join(f"[{f.get('check')}] {f['message']}" for f in row["findings"])


def test_every_probe_has_a_judge_and_a_clean_record_passes():
    assert set(JUDGES["security"]) == set(CLEAN)
    for name in CLEAN:
        row = _row(name)
        assert row["status"] == "passed", (name, row["findings"])
        assert not row["findings"], (name, row["findings"])
        assert all(c["passed"] for c in row.get("checks", []))


@pytest.mark.parametrize(
    ("name", "defect", "check", "finding"),
    [
        # the backend takes a wrong token: the connection stays open, nothing counted
        (
            "publisher_token",
            {"cases.auth_wrong_token": {"close_code": None, "auth_failures": 0}},
            "auth_close_code",
            "token check: auth_wrong_token: expected close 1008, got None",
        ),
        (
            "publisher_token",
            {"cases.auth_missing_token.auth_failures": 0},
            "auth_failures_counted",
            "token check: auth_missing_token: auth_failures rose by 0, expected 1",
        ),
        (
            "publisher_token",
            {"secrets_in_log.the configured token": True},
            "secrets_not_logged",
            "token check: the configured token appears in the backend's log",
        ),
        # an evil Origin is let in
        (
            "origin_check",
            {"rejected./ws/stream": {"status": 101, "origin_rejected": 0}},
            "origin_rejected",
            "origin check: Origin http://evil.example on /ws/stream got HTTP 101, expected 403",
        ),
        (
            "origin_check",
            {"rejected./ws.origin_rejected": 0},
            "origin_rejected_counted",
            "origin check: /ws: origin_rejected rose by 0, expected 1",
        ),
        (
            "origin_check",
            {"allowed_origins": [], "allowed_status": None},
            "origin_allow_list",
            "origin check: no allow-list configured",
        ),
        (
            "origin_check",
            {"allowed_status": 403},
            "origin_allowed",
            "origin check: allowed Origin http://127.0.0.1:8000 got HTTP 403",
        ),
        (
            "origin_check",
            {"allow_missing": False},
            "origin_missing",
            "origin check: no Origin got HTTP 101, policy says 403",
        ),
        # an oversize frame is not closed 1009
        (
            "size_limit",
            {"close_code": None, "oversize_closes": 0},
            "size_limit_close_code",
            "size limit: a frame of 1049794 bytes got close None, expected 1009 (limit 1048576)",
        ),
        ("size_limit", {"oversize_closes": 2}, "size_limit_counted", "size limit: oversize_closes rose by 2"),
        # invalid JSON without an error frame; a rejection not counted; not dead-lettered
        (
            "invalid_input",
            {"cases.0.error_code": None},
            "error_frame",
            "invalid input: invalid_json: expected error invalid_json, got no error frame",
        ),
        (
            "invalid_input",
            {"cases.1.counted": 0},
            "rejection_counted",
            "invalid input: wrong_type: rejected_by_code.schema_violation rose by 0, expected 1",
        ),
        (
            "invalid_input",
            {"status_after.dead_letters.by_code": {"invalid_json": 5, "run_mismatch": 1}},
            "dead_lettered",
            "invalid input: DEAD LETTERS do not account for the rejected frames (+1 unaccounted)",
        ),
        (
            "invalid_input",
            {"status_after": {"counters": {}, "runs": []}},
            "dead_lettered",
            "the backend's status has no dead_letters",
        ),
        (
            "invalid_input",
            {"acked": False},
            "connection_stays_up",
            "invalid input: the connection did not stay up",
        ),
        # an invalid frame stored beside the valid one: the store did not stay intact
        (
            "invalid_input",
            {"stored_seqs": [103, 105]},
            "store_intact",
            "invalid input: 2 envelope(s) stored for the run (seqs [103, 105]), expected only the 1 valid one",
        ),
        ("invalid_input", {"cases": []}, "invalid_cases", "invalid input: no invalid frame was sent"),
        (
            "invalid_utf8_text",
            {"close_code": 1000},
            "invalid_utf8_close_code",
            "invalid input: non-UTF-8 text frame got close 1000, expected 1007",
        ),
        (
            "invalid_utf8_text",
            {"invalid_utf8_closes": 0},
            "invalid_utf8_counted",
            "invalid input: invalid_utf8_closes rose by 0, expected 1",
        ),
        (
            "bad_subscribe",
            {"kinds": ["snapshot"]},
            "bad_subscribe_answer",
            "invalid input: bad subscribe: expected error bad_subscribe then a snapshot, got ['snapshot']",
        ),
        ("bad_subscribe", {"bad_subscribe": 0}, "bad_subscribe_counted", "invalid input: bad_subscribe rose by 0"),
        (
            "handshake_timeout",
            {"cases.handshake_silent_tcp.took_s": None},
            "handshake_dropped",
            "handshake timeout: handshake_silent_tcp: still open after 18s, bound 13s",
        ),
        (
            "handshake_timeout",
            {"cases.handshake_partial_upgrade.took_s": 14.0},
            "handshake_dropped",
            "handshake timeout: handshake_partial_upgrade: dropped only after 14.00s, bound 13s",
        ),
        (
            "handshake_timeout",
            {"cases.handshake_no_hello.close_code": None},
            "handshake_no_hello",
            "handshake timeout: a publisher with no hello got close None after 10.2s (bound 13s)",
        ),
        (
            "handshake_timeout",
            {"cases.handshake_silent_tcp.handshake_timeouts": 0},
            "handshake_counted",
            "handshake timeout: handshake_silent_tcp: handshake_timeouts rose by 0, expected 1",
        ),
        (
            "connection_limit",
            {"refused_at": None, "opened": 1010},
            "connection_limit_enforced",
            "connection limit: 1010 extra connections (on top of 4) all accepted; limit 1000",
        ),
        (
            "connection_limit",
            {"refused_at": 900},
            "connection_limit_enforced",
            "connection limit: refused with 904 connections open, limit is 1000",
        ),
        (
            "connection_limit",
            {"connections_refused": 0},
            "connection_limit_counted",
            "connection limit: connections_refused did not rise",
        ),
        (
            "connection_limit",
            {"reuse_status": 503},
            "connection_slot_reused",
            "connection limit: a freed slot was not reused (HTTP 503)",
        ),
        (
            "client_rate_limit",
            {"close_code": None},
            "client_rate_close_code",
            "rate limit: a client sending 71 frames at once got close None, expected 1008",
        ),
        (
            "client_rate_limit",
            {"rate_limit_closes": 0},
            "client_rate_counted",
            "rate limit: rate_limit_closes rose by 0",
        ),
        (
            "container_hardening",
            {"containers.dashboard-backend.inspect.Config.User": ""},
            "hardening",
            "hardening: dashboard-backend: runs as root (User=unset)",
        ),
        (
            "container_hardening",
            {"containers.ai-trading-bot.inspect.HostConfig.CapAdd": ["NET_ADMIN"]},
            "hardening",
            "hardening: ai-trading-bot: capabilities added: ['NET_ADMIN']",
        ),
        (
            "container_hardening",
            {"containers.ai-trading-bot.process_users": ["10001", "0"]},
            "hardening_processes",
            "hardening: ai-trading-bot: 1 process(es) run as root",
        ),
        ("container_hardening", {"containers": {}}, "hardening", "hardening: no container inspected"),
    ],
)
def test_each_defect_is_a_named_finding(name, defect, check, finding):
    row = _row(name, **defect)
    assert row["status"] == "failed", _found(row)
    named = [f for f in _errors(row) if f.get("check") == check and finding in f["message"]]
    assert named, _found(row)
    assert all(f.get("check") and f.get("evidence") for f in row["findings"]), _found(row)


# --- the fuzz: every rejected frame accounted for, the store exactly what was valid --------------------------


@pytest.mark.parametrize(
    ("defect", "check", "finding"),
    [
        # a rejection not counted
        (
            {"status_after.counters.rejected_by_code": {"invalid_json": 7}},
            "fuzz_counters",
            "fuzz: rejected_by_code does not add up",
        ),
        # a rejection without its error frame
        (
            {"errors_seen": {"invalid_json": 2}},
            "fuzz_counters",
            "fuzz: error frames received by code {'invalid_json': 2} != expected",
        ),
        ({"status_after.counters.internal_errors": 3}, "fuzz_counters", "fuzz: internal_errors rose by 3"),
        ({"status_after.counters.bad_subscribe": 0}, "fuzz_counters", "fuzz: bad_subscribe rose by 0, expected 1"),
        (
            {"status_after.counters.client_frames_ignored": 2},
            "fuzz_counters",
            "fuzz: client_frames_ignored rose by 2, expected 4",
        ),
        (
            {"status_after.dead_letters.by_code": {"invalid_json": 7}},
            "fuzz_dead_lettered",
            "fuzz: DEAD LETTERS do not account for the rejected frames (+1 unaccounted)",
        ),
        # stored data changed by the fuzz: the bot's, or the fuzz run's own
        (
            {"bot_events_after": [{**_BOT_A, "source": "fuzz"}, _BOT_B]},
            "fuzz_bot_store_unchanged",
            "fuzz: bot run bot-0001: 1 stored message(s) changed, seqs [1]",
        ),
        ({"bot_events_after": [_BOT_B]}, "fuzz_bot_store_unchanged", "1 stored message(s) vanished, seqs [1]"),
        (
            {"events": [_TRADE, _ORDER, messages.envelope(FUZZ_RUN, 9, "order")]},
            "fuzz_stored_exactly",
            "fuzz: /api/events: 1 stored message(s) that were rejected or never sent, seqs [9]",
        ),
        ({"events": [_TRADE]}, "fuzz_stored_exactly", "fuzz: /api/events: 1 valid message(s) not stored, seqs [2]"),
        (
            {"trades": [{**_TRADE, "data": {}}]},
            "fuzz_stored_exactly",
            "fuzz: /api/trades: 1 stored message(s) differ from what was sent",
        ),
        (
            {"status_after.runs": [BOT_RUN, FUZZ_RUN, "ghost-run"]},
            "fuzz_no_new_runs",
            "fuzz: runs appeared that no hello opened: ['ghost-run']",
        ),
        ({"publisher_closed": 1011}, "fuzz_publisher_kept", "fuzz: the fuzz publisher's connection was closed (1011)"),
        ({"stream_errors": ["ConnectionClosed: 1006"]}, "fuzz_stream_connections", "connection failed"),
        (
            {"health": {"status": None, "ready": False, "error": "refused"}},
            "fuzz_backend_healthy",
            "fuzz: backend unreachable after the fuzz: refused",
        ),
        (
            {"health.ready": False},
            "fuzz_backend_healthy",
            "fuzz: backend not healthy after the fuzz (health=True, ready=False)",
        ),
        (
            {"container.started_after": "t1"},
            "fuzz_backend_not_restarted",
            "fuzz: the backend container restarted or stopped (running)",
        ),
        ({"normal_closed": 1013}, "fuzz_normal_client_kept", "fuzz: the normal client was disconnected (1013)"),
        (
            {"latency_after_ms": []},
            "fuzz_normal_client_served",
            "fuzz: the normal client received no bot envelope after the fuzz",
        ),
        ({"tally.frames": 5000}, "fuzz_frames", "fuzz_frames = 5000 breaks the threshold >= 10000"),
        (
            {"latency_after_ms": [3.0] * 190 + [150.0] * 10},
            "fuzz_client_p99_after_ms",
            "fuzz_client_p99_after_ms = 150.0 ms breaks the threshold <= 100.0 ms",
        ),
    ],
)
def test_each_fuzz_defect_is_a_named_finding(defect, check, finding):
    row = _row("fuzz", **defect)
    assert row["status"] == "failed", _found(row)
    named = [f for f in _errors(row) if f.get("check") == check and finding in f["message"]]
    assert named, _found(row)
    assert all(f.get("check") and f.get("evidence") for f in row["findings"]), _found(row)


def test_a_fuzz_finding_carries_the_measured_facts():
    row = _row("fuzz", **{"status_after.counters.rejected_by_code": {"invalid_json": 7}})
    f = next(f for f in _errors(row) if f["check"] == "fuzz_counters")
    assert f["evidence"]["counter_deltas"]["rejected_by_code"] == {"invalid_json": 2}
    assert f["evidence"]["errors_seen"] == {"invalid_json": 2, "schema_violation": 1}


# --- latency judged with the measuring client's own health ----------------------------------------------------

_SLOW_AFTER_FUZZ = [3.0] * 190 + [150.0] * 10  # P99 150 ms: 50 ms over, within the lagging client's 80 ms stall
_SLOW_FLOOD = [
    [FLOOD_START + 100_000_000 + i * 20_000_000, 150.0 if i % 20 == 0 else 5.0] for i in range(250)
]  # the flood window's samples


def _flood_latencies(during: list[list[float]]) -> list[list[float]]:
    baseline = [s for s in CLEAN["flood"]["bot_latencies"] if s[0] < FLOOD_START]
    return baseline + during


@pytest.mark.parametrize(
    ("name", "changed", "check"),
    [
        ("fuzz", {"latency_after_ms": _SLOW_AFTER_FUZZ}, "fuzz_client_p99_after_ms"),
        ("flood", {"bot_latencies": _flood_latencies(_SLOW_FLOOD)}, "flood_client_p99_ms"),
    ],
)
def test_latency_breach_with_a_lagging_measuring_client_is_invalid_never_failed(name, changed, check):
    healthy = _row(name, **changed)
    assert healthy["status"] == "failed" and any(f["check"] == check for f in _errors(healthy)), _found(healthy)

    lagging = _row(name, **changed, normal_health=LAGGING)
    assert lagging["status"] == "invalid" and not lagging["passed"], _found(lagging)
    assert not _errors(lagging), "an invalid row's broken timing check is the rig's, not a finding"
    assert any("rig event-loop lag" in r for r in lagging["invalid_reasons"])
    assert next(c for c in lagging["checks"] if c["name"] == check)["passed"] is False  # still shown as broken
    assert lagging["rig_health"]["loop_lag_max_ms"] == 80.0


@pytest.mark.parametrize(
    ("p99", "stall", "status"),
    [(400.0, 80.0, "failed"), (1026.0, 65.0, "failed"), (150.0, 65.0, "invalid"), (150.0, 80.0, "invalid")],
)
def test_a_breach_beyond_the_lagging_clients_worst_stall_is_the_systems(p99, stall, status):
    """Over the bound by more than the client's worst stall could add: the system's, failed
    (seen: P99 1,026 ms with the client 65 ms late); within that reach: invalid."""
    health = {**LAGGING, "loop_lag_max_ms": stall}
    row = _row("fuzz", latency_after_ms=[3.0] * 190 + [p99] * 10, normal_health=health)
    assert row["status"] == status, _found(row)
    assert (row["invalid_reasons"] == []) == (status == "failed")
    assert any(f["check"] == "fuzz_client_p99_after_ms" for f in _errors(row)) == (status == "failed")


def test_a_correctness_finding_fails_whatever_the_measuring_client_did():
    row = _row(
        "flood", normal_health=LAGGING, **{"flood.client_close": None, "bot_latencies": _flood_latencies(_SLOW_FLOOD)}
    )
    assert row["status"] == "failed", _found(row)
    assert any(f["check"] == "flood_client_closed" for f in _errors(row))
    assert any(f["check"] == "flood_client_p99_ms" for f in _errors(row))  # the timing breach joins it


def test_a_lagging_client_with_its_latency_met_passes():
    """A late client only adds latency: a met bound stands."""
    for name in ("fuzz", "flood"):
        row = _row(name, normal_health=LAGGING)
        assert row["status"] == "passed", (name, _found(row))


@pytest.mark.parametrize(
    ("defect", "check", "finding"),
    [
        (
            {"flood.client_close": None, "rate_limit_closes": 0},
            "flood_client_closed",
            "rate limit: the flooding client got close None (rate_limit_closes +0), expected 1008 and +1",
        ),
        (
            {"flood.publisher_close": 1008},
            "flood_publisher_throttled",
            "flood: the flooding publisher was closed with 1008; the policy is to throttle it",
        ),
        ({"normal_closed": 1013}, "flood_normal_client_kept", "flood: the normal client was disconnected (1013)"),
        (
            {"bot_latencies": _flood_latencies([])},
            "flood_normal_client_served",
            "flood: the normal client received no bot envelope during the flood",
        ),
    ],
)
def test_each_flood_defect_is_a_named_finding(defect, check, finding):
    row = _row("flood", **defect)
    assert row["status"] == "failed", _found(row)
    assert [f for f in _errors(row) if f.get("check") == check and finding in f["message"]], _found(row)


def test_the_flood_judges_its_window_against_the_baseline():
    row = _row("flood")
    assert row["latency_ms"]["p99"] == 5.0 and row["latency_ms_baseline"]["p99"] == 3.0
    assert row["flood_effect_p99_ms"] == 2.0


def test_a_publisher_throttle_never_reached_is_a_warning():
    row = _row("flood", publisher_throttled=0)
    assert row["status"] == "passed"
    [warning] = row["findings"]
    assert warning["severity"] == "warning" and warning["check"] == "flood_throttle_exercised"


def test_docker_top_failing_is_a_warning_the_inspect_rules_still_judge():
    row = _row(
        "container_hardening",
        **{"containers.ai-trading-bot.process_users": None, "containers.ai-trading-bot.top_error": "denied"},
    )
    assert row["status"] == "passed" and row["findings"][0]["severity"] == "warning"


# --- judged again offline, under other thresholds ---------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CLEAN))
def test_a_security_history_round_trips_and_is_judged_the_same(tmp_path, name):
    h = ProbeHistory(name=name, stage="security", measured=_measured(name))
    again = load_history(h.save(history_path(tmp_path, "security", h.name)))
    thresholds = {"security": LIMITS, "rig_health": RIG_TABLE}
    assert judge_history(again, thresholds, "security") == judge_probe(h, LIMITS, RIG)


def test_a_tightened_threshold_breaks_a_history_that_passed():
    """wsrig judge --thresholds: the same measurements, a stricter file, the breach reported."""
    h = ProbeHistory(name="handshake_timeout", stage="security", measured=_measured("handshake_timeout"))
    strict = {"security": {**LIMITS, "handshake_timeout_slack_s": 0}, "rig_health": RIG_TABLE}
    row = judge_history(h, strict, "security")
    assert row["status"] == "failed" and "dropped only after 10.10s, bound 10s" in _found(row)
    fuzz = ProbeHistory(name="fuzz", stage="security", measured=_measured("fuzz"))
    row = judge_history(fuzz, {"security": {**LIMITS, "client_p99_ms": 2.0}, "rig_health": RIG_TABLE}, "security")
    assert row["status"] == "failed" and "fuzz_client_p99_after_ms = 3.0 ms breaks the threshold <= 2.0 ms" in _found(
        row
    )


def test_the_rig_limits_come_from_the_thresholds_judged_with():
    """A client that stalled 45 ms is healthy under a 50 ms limit (its 120 ms P99 fails) and
    lagging under a 40 ms one (the 20 ms breach is within its stall: invalid)."""
    stalled = {**HEALTHY, "loop_lag_max_ms": 45.0}
    measured = _measured("fuzz", latency_after_ms=[3.0] * 190 + [120.0] * 10, normal_health=stalled)
    h = ProbeHistory(name="fuzz", stage="security", measured=measured)
    row = judge_history(h, {"security": LIMITS, "rig_health": RIG_TABLE}, "security")
    assert row["status"] == "failed", _found(row)
    row = judge_history(h, {"security": LIMITS, "rig_health": {**RIG_TABLE, "loop_lag_max_ms": 40}}, "security")
    assert row["status"] == "invalid" and "45.0 ms in normal client > 40 ms" in row["invalid_reasons"][0], row
