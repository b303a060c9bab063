"""The connectivity stage's judges on recorded measurements: one clean, and one per defect."""

from __future__ import annotations

import pytest

from wsrig.probe_judges import JUDGES, judge_probe
from wsrig.scenario_history import ProbeHistory, history_path, load_history
from wsrig.scenario_judge import judge_history

LIMITS = {
    "handshake_p99_ms": 100,
    "first_message_within_s": 5,
    "ping_rtt_p99_ms": 50,
}

CLEAN = {
    "handshake_time": {"clients": 20, "handshake_ms": [3.0] * 20},
    "first_live_message": {"first_live_s": 0.4, "snapshot": True, "bot_run_id": "bot-run"},
    "ping_rtt": {"pings": 50, "rtt_ms": [0.5] * 50},
    "concurrent_clients": {"clients": 100, "receiving": 100, "status_client_count": 101, "handshake_ms": [4.0] * 100},
    "large_message": {"size": 900000, "ack_type": "ack"},
    "oversize_message": {"size": 1100000, "close_code": 1009},
    "status_api": {
        "extra": 5,
        "before": 2,
        "during": 7,
        "after": 2,
        "publishers": ["bot-run"],
        "bot_run_id": "bot-run",
    },
}


def _row(name: str, **changed) -> dict:
    return judge_probe(ProbeHistory(name=name, stage="connectivity", measured={**CLEAN[name], **changed}), LIMITS)


def _found(row: dict) -> str:
    return " | ".join(f["message"] for f in row["findings"])


def test_every_probe_has_a_judge_and_a_clean_record_passes():
    assert set(JUDGES["connectivity"]) == set(CLEAN)
    for name in CLEAN:
        row = _row(name)
        assert row["status"] == "passed", (name, row["findings"])
        assert row["checks"] and all(c["passed"] for c in row["checks"])


@pytest.mark.parametrize(
    ("name", "defect", "finding"),
    [
        ("handshake_time", {"handshake_ms": [3.0] * 18 + [400.0] * 2}, "handshake_p99_ms = "),
        ("handshake_time", {"handshake_ms": [3.0] * 12}, "handshakes_completed = 12 breaks the threshold >= 20"),
        ("first_live_message", {"first_live_s": 7.5}, "first_live_message_s = 7.5 s breaks the threshold <= 5.0 s"),
        ("first_live_message", {"first_live_s": None}, "no live envelope of the bot's run bot-run within 5s"),
        ("first_live_message", {"snapshot": False}, "no snapshot frame"),
        ("ping_rtt", {"rtt_ms": [0.5] * 40}, "pongs_received = 40 breaks the threshold >= 50"),
        ("ping_rtt", {"rtt_ms": [0.5] * 45 + [80.0] * 5}, "ping_rtt_p99_ms = 80.0 ms breaks"),
        ("concurrent_clients", {"receiving": 97}, "concurrent_clients_receiving = 97 breaks the threshold >= 100"),
        ("concurrent_clients", {"status_client_count": 60}, "status_api_client_count = 60 breaks"),
        ("large_message", {"ack_type": "no ack (timed out)"}, "got 'no ack (timed out)', not an ack"),
        ("oversize_message", {"close_code": 1000}, "oversize_close_code = 1000 breaks the threshold == 1009"),
        ("oversize_message", {"close_code": None}, "oversize_close_code = None breaks the threshold == 1009"),
        ("status_api", {"publishers": []}, "bot run bot-run not among the status API's publishers"),
        ("status_api", {"during": 3}, "status_clients_during = 3 breaks the threshold >= 7"),
        ("status_api", {"after": 7}, "status_clients_after = 7 breaks the threshold <= 2"),
    ],
)
def test_each_defect_is_a_named_finding(name, defect, finding):
    row = _row(name, **defect)
    assert row["status"] == "failed" and finding in _found(row), _found(row)


def test_a_probe_history_round_trips_and_is_judged_by_kind(tmp_path):
    h = ProbeHistory(name="ping_rtt", stage="connectivity", measured=CLEAN["ping_rtt"])
    again = load_history(h.save(history_path(tmp_path, "connectivity", h.name)))
    assert judge_history(again, {"connectivity": LIMITS}, "connectivity") == judge_probe(h, LIMITS)


def test_an_unknown_probe_is_refused():
    with pytest.raises(ValueError, match="no judge for probe connectivity/nope"):
        judge_probe(ProbeHistory(name="nope", stage="connectivity"), LIMITS)
