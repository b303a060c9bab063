"""The integration stage's judges on recorded sessions: each probe's clean record passes, and
each defect a probe exists to catch is a named finding."""

from __future__ import annotations

import copy
from dataclasses import asdict
from typing import Any

import pytest
from _session_fixtures import RUN, finished_session

from wsrig.judges import JUDGES, judge_probe
from wsrig.scenario_history import ProbeHistory, history_path, load_history
from wsrig.scenario_judge import judge_history
from wsrig.timeline import COLUMNS, timeline_row

LIMITS: dict[str, Any] = {"session_s": 60, "min_trades": 10, "settle_timeout_s": 60, "log_allow": []}

BOT = {"run_id": RUN, "last_seq": 14, "acked_seq": 14, "trading": {"trades": 146}}
BACKEND = {"counters": {"received": 14, "broadcast": 14}, "runs": {RUN: {"acked_seq": 14}}}

CLEAN: dict[str, dict[str, Any]] = {
    "trading_session": {
        "run_id": RUN,
        "duration_s": 60.3,
        "session_ended": True,
        "settle_error": None,
        "bot_stats": {"run_id": RUN, "trading": {"ticks": 600, "orders": 146, "trades": 146}},
    },
    "reconciliation": asdict(finished_session()),
    "status_timeline": {"columns": COLUMNS, "rows": [timeline_row(1e9 + t, BOT, BACKEND) for t in range(62)]},
    "container_logs": {
        "logs": {"ai-trading-bot": "INFO trading session started\nINFO session ended\n", "fault-proxy": "listening\n"},
        "unread": {},
    },
}


def _row(name: str, **changed: Any) -> dict[str, Any]:
    measured = {**copy.deepcopy(CLEAN[name]), **changed}
    return judge_probe(ProbeHistory(name=name, stage="integration", measured=measured), LIMITS)


def _found(row: dict[str, Any]) -> str:
    return " | ".join(f["message"] for f in row["findings"])


def _session(**changed: Any) -> dict[str, Any]:
    """The clean session's sources with some of them replaced (deep copies: the clean one stays)."""
    return {**copy.deepcopy(CLEAN["reconciliation"]), **changed}


def test_every_probe_has_a_judge_and_a_clean_record_passes():
    """The four probes of the stage are judged, and a clean session passes each with its checks."""
    assert set(JUDGES["integration"]) == set(CLEAN)
    for name in CLEAN:
        row = _row(name)
        assert row["status"] == "passed", (name, row["findings"])
        assert row["checks"] and all(c["passed"] for c in row["checks"])


# --- the session ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("defect", "finding"),
    [
        ({"session_ended": False}, "session_ended = False breaks the threshold == True"),
        ({"session_ended": False}, "the bot did not end its trading session within 60.3 s (does it honour"),
        ({"bot_stats": {"trading": {"trades": 3}}}, "session_trades = 3 breaks the threshold >= 10"),
        ({"bot_stats": {}}, "session_trades = 0 breaks the threshold >= 10"),
        ({"settle_error": "timed out after 60 s waiting for bot acked"}, "session_settled = False breaks"),
        ({"settle_error": "timed out after 60 s waiting for bot acked"}, "timed out after 60 s waiting for bot acked"),
    ],
)
def test_a_session_that_did_not_end_trade_or_settle_fails(defect, finding):
    row = _row("trading_session", **defect)
    assert row["status"] == "failed" and finding in _found(row), _found(row)


# --- the reconciliation ---------------------------------------------------------------------


def _without_seq(envelopes: list[dict[str, Any]], seq: int) -> list[dict[str, Any]]:
    return [e for e in envelopes if e["seq"] != seq]


def _trade(seq: int) -> dict[str, Any]:
    return next(e for e in CLEAN["reconciliation"]["stored_trades"] if e["seq"] == seq)


@pytest.mark.parametrize(
    ("defect", "finding"),
    [
        # acked but not stored: the bot's ETHUSD fill (seq 6, acked) is missing from the store
        (
            lambda s: {"stored_trades": _without_seq(s["stored_trades"], 6)},
            "trades: ETHUSD: bot /api/state = 1 but backend /api/trades = 0",
        ),
        (
            lambda s: {"stored_trades": _without_seq(s["stored_trades"], 6)},
            "sum of trades = position: ETHUSD: backend /api/trades = 0 but backend /api/state position = -3",
        ),
        # stored twice: one fill kept twice by the backend
        (
            lambda s: {"stored_trades": [*s["stored_trades"], _trade(2)]},
            "trades: BTCUSD: bot /api/state = 2 but backend /api/trades = 3",
        ),
        # an acked order never stored
        (
            lambda s: {"stored_orders": [e for e in s["stored_orders"] if e["data"]["symbol"] != "ETHUSD"]},
            "orders placed: bot /api/state = 3 but backend /api/events (orders) = 2",
        ),
        # counts disagree between bot and backend
        (
            lambda s: {"backend_status": {**s["backend_status"], "runs": {RUN: {"last_seq": 14, "acked_seq": 13}}}},
            "acked seq: bot /stats = 14 but backend /api/websocket/status run = 13",
        ),
        (
            lambda s: {
                "backend_status": {
                    **s["backend_status"],
                    "counters": {**s["backend_status"]["counters"], "unique": 13, "duplicates": 1},
                }
            },
            "sent = received + declared dropped: bot /stats produced = 14 but backend /api/websocket/status"
            " unique + declared_dropped = 13",
        ),
        (
            lambda s: {"clients_received": 12},
            "broadcast = what clients got: backend /api/websocket/status = 14 but client stream = 12",
        ),
        # a gap the client never had declared: seq 5 missing from its stream
        (
            lambda s: {"stream": _without_seq(s["stream"], 5)},
            f"run {RUN}: seqs missing from the stream and never declared in a gap: 5",
        ),
        (lambda s: {"stream": _without_seq(s["stream"], 5)}, "stream_undeclared_gaps = 1 breaks the threshold <= 0"),
        # delivered twice, and out of order (the reconciliation's sort alone would hide this one)
        (
            lambda s: {"stream": [*s["stream"][:4], s["stream"][3], *s["stream"][4:]]},
            f"run {RUN}: DUPLICATED to a subscriber: seqs 4",
        ),
        (
            lambda s: {"stream": [*s["stream"][:3], s["stream"][4], s["stream"][3], *s["stream"][5:]]},
            f"run {RUN}: REORDERED: seqs arrived after a higher seq: 4",
        ),
        # a gap declaration that does not add up
        (
            lambda s: {
                "stream": [
                    *s["stream"],
                    {
                        "type": "gap",
                        "run_id": RUN,
                        "seq": 15,
                        "data": {"count": 2, "ranges": [[16, 16]], "counts_by_type": {"market_data": 2}},
                    },
                ]
            },
            "gap seq 15: count 2, ranges cover 1, counts_by_type sum 2: they must agree",
        ),
    ],
)
def test_each_reconciliation_defect_is_a_named_finding(defect, finding):
    row = _row("reconciliation", **defect(_session()))
    assert row["status"] == "failed" and finding in _found(row), _found(row)


def test_a_disagreeing_comparison_names_its_check_and_both_sides():
    """A reconciliation finding carries its comparison as evidence, for ``wsrig judge``'s readers."""
    s = _session()
    row = _row("reconciliation", stored_trades=_without_seq(s["stored_trades"], 6))
    finding = next(f for f in row["findings"] if f["message"].startswith("trades: ETHUSD"))
    assert finding["check"] == "trades"
    assert finding["evidence"] == {
        "subject": "ETHUSD",
        "a_source": "bot /api/state",
        "a_value": 1,
        "b_source": "backend /api/trades",
        "b_value": 0,
    }
    disagree = [c for c in row["comparisons"] if not c["ok"]]
    assert {c["check"] for c in disagree} >= {"trades", "sum of trades = position"}
    mismatches = next(c for c in row["checks"] if c["name"] == "reconciliation_mismatches")
    assert mismatches["value"] == len(disagree) and not mismatches["passed"]


def test_a_declared_gap_is_not_an_undeclared_one():
    """A hole the stream itself declared is no stream finding (the counts still judge the drop)."""
    s = _session()
    gap = {
        "type": "gap",
        "run_id": RUN,
        "seq": 15,
        "data": {"count": 1, "from_seq": 14, "to_seq": 14, "ranges": [[14, 14]], "counts_by_type": {"heartbeat": 1}},
    }
    row = _row("reconciliation", stream=[*_without_seq(s["stream"], 14), gap])
    assert "never declared in a gap" not in _found(row)
    assert row["stream"]["declared_missing"] == 1


# --- the status timeline and the logs -------------------------------------------------------


def test_a_timeline_where_a_service_did_not_answer_is_too_short():
    rows = [timeline_row(1e9 + t, BOT, BACKEND if t < 20 else None) for t in range(62)]
    row = _row("status_timeline", rows=rows)
    assert "status_timeline_samples = 20 breaks the threshold >= 30" in _found(row), _found(row)


@pytest.mark.parametrize(
    ("logs", "unread", "finding"),
    [
        (
            {"dashboard-backend": "INFO up\nTraceback (most recent call last):\n  File x\nKeyError: 'seq'\n"},
            {},
            "dashboard-backend log line 2: unexpected traceback: Traceback (most recent call last): | File x | KeyError: 'seq'",
        ),
        ({"ai-trading-bot": "WARNING queue full\n"}, {}, "ai-trading-bot log line 1: unexpected warning"),
        ({"ai-trading-bot": "ERROR x\n" * 25}, {}, "... and 5 more unexpected log entries"),
        ({"ai-trading-bot": "ERROR x\n" * 25}, {}, "log_problems = 25 breaks the threshold <= 0"),
        ({"ai-trading-bot": "INFO ok\n"}, {"dashboard-backend": "no such container"}, "no log for dashboard-backend"),
        ({}, {}, "no container log was read"),
    ],
)
def test_an_unexpected_log_entry_or_an_unread_log_fails(logs, unread, finding):
    row = _row("container_logs", logs=logs, unread=unread)
    assert row["status"] == "failed" and finding in _found(row), _found(row)


def test_log_allow_lets_an_expected_entry_pass():
    measured = {"logs": {"ai-trading-bot": "WARNING queue full\n"}, "unread": {}}
    history = ProbeHistory(name="container_logs", stage="integration", measured=measured)
    assert judge_probe(history, {**LIMITS, "log_allow": ["queue full"]})["status"] == "passed"
    assert judge_probe(history, LIMITS)["status"] == "failed"


# --- offline ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CLEAN))
def test_a_recorded_session_is_judged_again_the_same(tmp_path, name):
    """Each history round-trips through JSON and ``wsrig judge`` reaches the same row."""
    h = ProbeHistory(name=name, stage="integration", measured=copy.deepcopy(CLEAN[name]))
    again = load_history(h.save(history_path(tmp_path, "integration", h.name)))
    assert judge_history(again, {"integration": LIMITS}, "integration") == judge_probe(h, LIMITS)
