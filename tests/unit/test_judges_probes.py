"""The connectivity stage's judges on recorded measurements: one clean, and one per defect."""

from __future__ import annotations

import pytest

from wsrig.judges import JUDGES, judge_probe
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


# --- message flow -------------------------------------------------------------------------

from wsrig import messages  # noqa: E402

MF_LIMITS = {"min_messages": 5, "required_types": ["market_data", "trade"]}
RUN = messages.new_run_id()


def _env(seq: int, kind: str = "market_data", **data) -> dict:
    env = messages.envelope(RUN, seq, kind)
    env["data"].update(data)
    return env


def _mf(name: str, **measured) -> dict:
    return judge_probe(ProbeHistory(name=name, stage="message_flow", measured=measured), MF_LIMITS)


SNAPSHOT = {"type": "snapshot", "positions": {}, "portfolio": None, "recent_trades": [], "runs": {}, "resumed": True}


def test_message_flow_clean_records_pass():
    frames = [(i, _env(i)) for i in range(1, 8)]
    rows = [
        _mf("frames_valid", snapshot=SNAPSHOT, frames=frames),
        _mf("order", frames=frames, bot_run_id=RUN),
        _mf("types_seen", types={"market_data": 6, "trade": 1}),
        _mf(
            "snapshot_matches_state",
            snapshot={"positions": {}, "portfolio": 1},
            state={"positions": {}, "portfolio": 1},
        ),
        _mf("filters", types=["trade"], symbol="BTCUSD", frames=[["trade", "BTCUSD"]] * 3),
        _mf("resume", mine=[4, 5, 6], theirs=[4, 5, 6], snapshot=True, resumed=True),
    ]
    assert [r["status"] for r in rows] == ["passed"] * 6, [r["findings"] for r in rows]
    assert set(JUDGES["message_flow"]) >= {r["name"] for r in rows}


def test_a_frame_that_breaks_the_schema_is_named_not_a_crash():
    frames = [(1, _env(1)), (2, _env(2, "trade", quantity="1.0"))]
    found = _found(_mf("frames_valid", snapshot=SNAPSHOT, frames=frames))
    assert (
        f"INVALID FRAME on the client stream: seq 2 (trade, run {RUN[:8]}): schema_violation: trade: data/quantity: '1.0' is not of type 'number'"
        in found
    )
    assert "invalid_frames = 1 breaks" in found


@pytest.mark.parametrize(
    ("seqs", "finding"),
    [
        ([1, 2, 3, 5, 6, 7], "undeclared_gaps = 1 breaks"),
        ([1, 2, 3, 3, 4, 5], "duplicated = 1 breaks"),
        ([1, 3, 2, 4, 5, 6], "reordered = 1 breaks"),
        ([1, 2], "envelopes_observed = 2 breaks"),
    ],
)
def test_order_defects_are_named(seqs, finding):
    frames = [(i, {"run_id": RUN, "seq": s, "type": "market_data"}) for i, s in enumerate(seqs)]
    assert finding in _found(_mf("order", frames=frames, bot_run_id=RUN))


def test_other_message_flow_defects_are_named():
    assert "types never seen in the window: ['trade']" in _found(_mf("types_seen", types={"market_data": 9}))
    assert "snapshot portfolio differ" in _found(
        _mf(
            "snapshot_matches_state",
            snapshot={"positions": {}, "portfolio": 1},
            state={"positions": {}, "portfolio": 2},
        )
    )
    assert "1 frame(s) outside the filter" in _found(
        _mf("filters", types=["trade"], symbol="BTCUSD", frames=[["trade", "BTCUSD"], ["signal", "BTCUSD"]])
    )
    resumed = _found(_mf("resume", mine=[4, 5, 5, 7], theirs=[4, 5, 6, 7], snapshot=False, resumed=False))
    for words in ("no snapshot on resume", "no longer in its ring", "duplicates", "first difference near seq 5"):
        assert words in resumed
    assert "outside the bot's window" in _found(
        _mf(
            "counts_agree",
            bot_before={"run_id": RUN, "acked_seq": 10, "last_seq": 12, "produced_by_type": {"market_data": 12}},
            backend={"runs": {RUN: {"acked_seq": 30}}},
            bot_after={"run_id": RUN, "acked_seq": 12, "last_seq": 12, "produced_by_type": {"market_data": 12}},
        )
    )


def test_a_broken_threshold_finding_names_its_check_and_figures():
    (finding,) = _row("handshake_time", handshake_ms=[300.0] * 20)["findings"]
    assert finding["check"] == "handshake_p99_ms"
    assert finding["evidence"] == {"value": 300.0, "threshold": 100, "op": "<="}
