"""Tests of dashboard_backend.publisher_session: the /ws rules driven with plain data (no sockets)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from dashboard_backend.actions import Close, Send
from dashboard_backend.config import Config
from dashboard_backend.deadletter import DeadLetters
from dashboard_backend.fanout import Client, Hub, Subscription
from dashboard_backend.fastcheck import EnvelopeCheck
from dashboard_backend.ingest import Ingest
from dashboard_backend.metrics import ServerCounters
from dashboard_backend.publisher_session import (
    INTERNAL_ERROR,
    SQLITE_MAX_INT,
    Publishers,
    PublisherSession,
)
from dashboard_backend.state import DashboardState
from dashboard_backend.store import Row
from wscontract import DATA_TYPES, SCHEMA_BASE, schema_dir, validate_control

RUN = "run-aaaa-bbbb"
TOKEN = "s3cret-token"
NOW = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


class Committer:
    """Stands in for the group committer: keeps what it is given."""

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.pokes = 0

    def submit(self, row: Row) -> None:
        self.rows.append(row)

    def poke(self) -> None:
        self.pokes += 1


def make(**config: Any) -> Publishers:
    settings: dict[str, Any] = {"auth_token": TOKEN, "data_dir": "/nonexistent"}
    settings.update(config)
    rules = Publishers(
        Config(**settings),
        ingest=Ingest(),
        hub=Hub(1000),
        state=DashboardState(),
        dead_letters=DeadLetters(100),
        counters=ServerCounters(),
        envelope_ok=EnvelopeCheck.from_dir(schema_dir(), SCHEMA_BASE, DATA_TYPES),
    )
    rules.committer = Committer()
    return rules


def hello(run_id: str = RUN, token: str = TOKEN, **extra: Any) -> str:
    return json.dumps({"type": "hello", "v": 1, "source": "test", "run_id": run_id, "auth": token, **extra})


def envelope(seq: int, msg_type: str = "heartbeat", run_id: str = RUN, **over: Any) -> str:
    data: dict[str, Any] = {
        "heartbeat": {"uptime_s": 1.5},
        "market_data": {"symbol": "BTC", "price": 100.5, "bid": 100.0, "ask": 101.0, "volume": 3},
        "trade": {"trade_id": f"t{seq}", "order_id": "o1", "symbol": "BTC", "side": "buy", "quantity": 2, "price": 10},
    }[msg_type]
    env = {
        "v": 1,
        "type": msg_type,
        "source": "test",
        "run_id": run_id,
        "seq": seq,
        "ts_ns": 1_700_000_000,
        "data": data,
    }
    env.update(over)
    return json.dumps(env)


def opened(rules: Publishers, run_id: str = RUN) -> PublisherSession:
    session = rules.open("10.0.0.1:5000", now=0.0)
    actions, old = session.receive_hello(hello(run_id), NOW)
    assert session.accepted and old is None and len(actions) == 1
    return session


def sent(actions: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(a.text) for a in actions if isinstance(a, Send)]


# --- the hello --------------------------------------------------------------------


def test_a_valid_hello_is_welcomed_with_the_durable_watermark():
    """The welcome carries the run and its acked (persisted) seq; the session is the run's."""
    rules = make()
    rules.ingest.restore(RUN, 41, 45)
    session = rules.open("10.0.0.1:5000", now=0.0)
    assert rules.counters.publisher_connections_total == 1
    actions, old = session.receive_hello(hello(), NOW)
    assert old is None and session.accepted
    (welcome,) = sent(actions)
    validate_control(welcome)
    assert welcome == {"type": "welcome", "run_id": RUN, "acked_seq": 41}
    assert rules.get(RUN) is session and len(rules) == 1
    assert session.connected_at == "2026-01-02T03:04:05.678+00:00"


def test_hello_timeout_counts_and_closes_1008():
    """No first frame in time: counted as a handshake timeout, closed 1008 'expected hello'."""
    rules = make()
    actions = rules.open("r", 0.0).hello_timed_out()
    assert actions == [Close(1008, "expected hello")]
    assert rules.counters.handshake_timeouts == 1


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        ("{not json", "first frame must be a hello: "),
        (envelope(1), "first frame must be a hello"),
    ],
)
def test_a_first_frame_that_is_no_hello_gets_an_error_and_1008(raw, detail):
    """Not JSON, or not a hello: error 'expected_hello', close 1008, rejected and dead-lettered."""
    rules = make()
    session = rules.open("r", 0.0)
    actions, old = session.receive_hello(raw, NOW)
    assert old is None and not session.accepted
    assert isinstance(actions[0], Send) and actions[1:] == [Close(1008, "expected hello")]
    error = json.loads(actions[0].text)
    validate_control(error)
    assert error["code"] == "expected_hello" and error["detail"].startswith(detail)
    assert rules.ingest.counters.rejected == 1
    (letter,) = list(rules.dead_letters)
    assert letter.source == "hello"
    assert len(rules) == 0


def test_a_wrong_token_is_closed_without_an_error_frame_and_kept_masked():
    """Auth failure: close 1008 only, counted as such (not as a rejected frame), token masked."""
    rules = make()
    session = rules.open("r", 0.0)
    actions, _ = session.receive_hello(hello(token="near-" + TOKEN), NOW)
    assert actions == [Close(1008, "authentication failed")]
    assert rules.counters.auth_failures == 1 and rules.ingest.counters.rejected == 0
    (letter,) = list(rules.dead_letters)
    assert letter.code == "auth_failed" and letter.run_id == RUN
    assert TOKEN not in letter.raw and '"auth": "***"' in letter.raw
    assert not session.accepted and len(rules) == 0


def test_a_hello_breaking_its_schema_gets_the_validator_error_and_1008():
    """Right token, invalid hello (run_id too short): its error code, 'invalid hello', masked letter."""
    rules = make()
    session = rules.open("r", 0.0)
    actions, _ = session.receive_hello(hello(run_id="short"), NOW)
    assert isinstance(actions[0], Send) and actions[1] == Close(1008, "invalid hello")
    error = json.loads(actions[0].text)
    validate_control(error)
    (letter,) = list(rules.dead_letters)
    assert letter.code == error["code"] and TOKEN not in letter.raw
    assert rules.ingest.counters.rejected == 1 and not session.accepted


def test_a_newer_hello_of_the_same_run_supersedes_the_older():
    """Takeover: the old session is returned to be closed, marked superseded, counted; it leaves quietly."""
    rules = make()
    first = opened(rules)
    second = rules.open("10.0.0.2:6000", 1.0)
    actions, old = second.receive_hello(hello(), NOW)
    assert old is first and first.superseded and not second.superseded
    assert rules.counters.publisher_takeovers == 1
    assert sent(actions)[0]["type"] == "welcome"
    first.closed()
    assert rules.get(RUN) is second
    second.closed()
    assert len(rules) == 0


# --- envelopes --------------------------------------------------------------------


def test_a_new_envelope_is_sequenced_applied_and_published():
    """A valid envelope: no reply, counted, in the ring and on every client's queue."""
    rules = make()
    client = Client(id=1, remote="c", capacity=10, sub=Subscription())
    rules.hub.attach(client)
    session = opened(rules)
    assert session.receive(envelope(1, "market_data"), recv_ns=5) is None
    assert rules.ingest.counters.unique == 1 and rules.ingest.counters.received_by_type["market_data"] == 1
    assert len(rules.hub.ring) == 1 and len(client.queue) == 1
    assert rules.committer.rows == []  # type: ignore[union-attr]  # ephemeral: nothing to store


def test_a_critical_envelope_is_submitted_with_its_receive_time_and_a_clamped_ts():
    """A trade goes to the committer as (run, seq, type, ts clamped to SQLite, recv_ns, text) and into the state."""
    rules = make()
    session = opened(rules)
    raw = envelope(1, "trade", ts_ns=2**70)
    assert session.receive(raw, recv_ns=123) is None
    assert rules.committer.rows == [(RUN, 1, "trade", SQLITE_MAX_INT, 123, raw)]  # type: ignore[union-attr]
    assert list(rules.state.recent_trades)[0]["seq"] == 1


def test_a_duplicate_is_dropped_silently():
    """The same seq twice: no reply, counted as a duplicate, published once."""
    rules = make()
    session = opened(rules)
    session.receive(envelope(1), 1)
    assert session.receive(envelope(1), 2) is None
    assert rules.ingest.counters.duplicates == 1 and len(rules.hub.ring) == 1


def test_a_frame_that_is_not_json_gets_an_error_and_a_dead_letter_of_the_run():
    """Invalid JSON: error frame without seq, rejected, dead letter names the session's run."""
    rules = make()
    session = opened(rules)
    error = json.loads(session.receive("{oops", 1) or "")
    validate_control(error)
    assert "seq" not in error
    (letter,) = list(rules.dead_letters)
    assert letter.run_id == RUN and letter.code == error["code"]


def test_a_schema_violation_of_its_own_run_is_answered_with_its_seq_and_accounted():
    """An invalid envelope of the run: error with its seq, dead-lettered, its seq accounted and held in the ring."""
    rules = make()
    session = opened(rules)
    bad = json.dumps({**json.loads(envelope(3, "market_data")), "data": {"symbol": "BTC", "price": "x"}})
    error = json.loads(session.receive(bad, 1) or "")
    validate_control(error)
    assert error["seq"] == 3 and error["code"] == "schema_violation"
    (letter,) = list(rules.dead_letters)
    assert (letter.run_id, letter.seq, letter.code) == (RUN, 3, "schema_violation")
    assert rules.hub.ring[-1][1] == 3 and rules.hub.ring[-1][6] is True  # a marker: held, nothing to send
    assert session.receive(envelope(1), 2) is None and session.receive(envelope(2), 3) is None
    assert rules.ingest.watermark(RUN) == 3


def test_an_envelope_of_another_run_is_refused():
    """run_id not the hello's: error run_mismatch with its seq, dead-lettered, nothing published."""
    rules = make()
    session = opened(rules)
    error = json.loads(session.receive(envelope(1, run_id="run-other-0000"), 1) or "")
    assert error["code"] == "run_mismatch" and error["seq"] == 1
    assert rules.ingest.counters.rejected_by_code["run_mismatch"] == 1
    assert len(rules.hub.ring) == 0 and rules.ingest.counters.unique == 0


def test_a_client_the_publish_overflows_is_handed_over_to_be_closed():
    """A full client queue: the client goes to on_overflow (closed 1013 by the delivery) and is counted."""
    rules = make()
    kicked: list[Client] = []
    rules.on_overflow = kicked.append
    client = Client(id=7, remote="c", capacity=1, sub=Subscription())
    rules.hub.attach(client)
    session = opened(rules)
    session.receive(envelope(1), 1)
    session.receive(envelope(2), 2)
    assert kicked == [client] and rules.hub.slow_client_disconnects == 1


def test_the_internal_error_frame_is_a_valid_error():
    """The frame a raising frame is answered with is a contract error frame."""
    frame = json.loads(INTERNAL_ERROR)
    validate_control(frame)
    assert frame["code"] == "internal"


def test_over_its_rate_the_reader_is_told_to_wait_and_it_is_counted():
    """Beyond the burst, throttle says how long to pause and counts each pause."""
    rules = make(publisher_max_msgs_per_s=10, publisher_msg_burst=2)
    session = rules.open("r", now=100.0)
    assert session.throttle(100.0) == 0 and session.throttle(100.0) == 0
    assert session.throttle(100.0) == pytest.approx(0.1)
    assert rules.counters.publisher_throttled == 1


# --- acks and the end -------------------------------------------------------------


def test_an_ack_is_due_only_when_the_durable_watermark_moves():
    """ack(): nothing until a commit persists more; then one cumulative ack; then nothing again."""
    rules = make()
    session = opened(rules)
    session.receive(envelope(1), 1)
    session.receive(envelope(2), 2)
    assert session.ack() is None  # accounted in memory, not yet persisted
    rules.ingest.mark_persisted(rules.ingest.changed_watermarks())
    ack = json.loads(session.ack() or "")
    validate_control(ack)
    assert ack == {"type": "ack", "run_id": RUN, "seq": 2}
    assert session.ack() is None


@pytest.mark.parametrize(
    ("code", "counter", "letter"),
    [(1009, "oversize_closes", "too_big"), (1007, "invalid_utf8_closes", "invalid_utf8"), (1000, None, None)],
)
def test_a_close_websockets_sent_itself_is_counted_and_dead_lettered(code, counter, letter):
    """1009 and 1007: counted and kept as a dead letter with the reason (the frame never arrived)."""
    rules = make()
    session = rules.open("r", 0.0)
    session.close_sent(code, "why")
    if counter is None:
        assert len(rules.dead_letters) == 0
        return
    assert getattr(rules.counters, counter) == 1
    (kept,) = list(rules.dead_letters)
    assert kept.code == letter and kept.detail == f"closed {code}: why" and kept.size == 0
