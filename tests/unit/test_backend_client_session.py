"""Tests of dashboard_backend.client_session: the /ws/stream rules driven with plain data (no sockets)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from dashboard_backend.actions import Close, Send
from dashboard_backend.client_session import RATE_LIMITED, Clients, ClientSession
from dashboard_backend.config import Config
from dashboard_backend.fanout import Entry, Hub, Subscription
from dashboard_backend.metrics import ServerCounters
from dashboard_backend.state import DashboardState
from wscontract import validate_control

RUN = "run-aaaa-bbbb"


def make(**config: Any) -> Clients:
    settings: dict[str, Any] = {"data_dir": "/nonexistent", "client_queue_size": 5}
    settings.update(config)
    return Clients(Config(**settings), hub=Hub(100), state=DashboardState(), counters=ServerCounters())


def subscribe(**frame: Any) -> str:
    return json.dumps({"type": "subscribe", **frame})


def published(hub: Hub, *seqs: int, msg_type: str = "heartbeat", symbol: str | None = None) -> None:
    for seq in seqs:
        hub.publish(Entry(RUN, seq, msg_type, symbol, json.dumps({"seq": seq})))


def test_no_subscribe_in_time_means_everything_with_a_snapshot():
    """Timeout: the default subscription, a client with the configured queue, a complete snapshot first."""
    rules = make()
    session = rules.open("1.2.3.4:5", 0.0)
    assert rules.counters.client_connections_total == 1
    client = session.subscribe_timed_out()
    assert client.sub == Subscription() and client.capacity == 5 and client.remote == "1.2.3.4:5"
    head = json.loads(session.attach() or "")
    validate_control(head)
    assert head["type"] == "snapshot" and head["resumed"] is True
    assert rules.hub.clients == {client.id: client}


def test_a_subscribe_sets_the_filter_and_may_decline_the_snapshot():
    """types/symbols become the client's filter; snapshot false means nothing is sent first."""
    rules = make()
    session = rules.open("r", 0.0)
    actions, client = session.receive_subscribe(subscribe(types=["trade"], symbols=["BTC"], snapshot=False), 0.0)
    assert actions == []
    assert client.sub == Subscription(frozenset({"trade"}), frozenset({"BTC"}))
    assert session.attach() is None


def test_a_resume_replays_what_the_ring_holds_and_says_whether_it_is_whole():
    """Resume after seq 2: seqs 3..4 queued as backlog, snapshot resumed true; a hole makes it false."""
    rules = make()
    published(rules.hub, 1, 2, 3, 4)
    session = rules.open("r", 0.0)
    session.receive_subscribe(subscribe(resume={"run_id": RUN, "after_seq": 2}), 0.0)
    head = json.loads(session.attach() or "")
    assert head["resumed"] is True
    assert session.client is not None and [json.loads(t)["seq"] for t in session.client.backlog] == [3, 4]

    holey = make()
    published(holey.hub, 1, 2, 4)
    holey.hub.last[RUN] = 4
    other = holey.open("r", 0.0)
    other.receive_subscribe(subscribe(resume={"run_id": RUN, "after_seq": 1}), 0.0)
    assert json.loads(other.attach() or "")["resumed"] is False


@pytest.mark.parametrize(
    "raw",
    [
        "{nope",
        json.dumps({"type": "hello"}),
        subscribe(types=["no_such_type"]),
    ],
)
def test_a_bad_subscribe_keeps_the_default_and_says_so(raw):
    """Not JSON, not a subscribe, or invalid: error 'bad_subscribe' (default kept), counted, default filter."""
    rules = make()
    session = rules.open("r", 0.0)
    actions, client = session.receive_subscribe(raw, 0.0)
    (action,) = actions
    assert isinstance(action, Send)
    error = json.loads(action.text)
    validate_control(error)
    assert error["code"] == "bad_subscribe" and error["detail"].endswith("(default subscription kept)")
    assert rules.counters.bad_subscribe == 1
    assert client.sub == Subscription()
    assert json.loads(session.attach() or "")["type"] == "snapshot"


def test_frames_after_the_subscribe_are_counted_and_over_the_rate_closed():
    """Later frames are ignored but counted; past the burst (the subscribe took one token) the client is closed 1008."""
    rules = make(client_max_msgs_per_s=1, client_msg_burst=3)
    session = rules.open("r", now=10.0)
    session.receive_subscribe(subscribe(), 10.0)
    assert session.receive(10.0) is None and session.receive(10.0) is None
    assert session.receive(10.0) == Close(RATE_LIMITED, "rate limit exceeded")
    assert rules.counters.client_frames_ignored == 3 and rules.counters.rate_limit_closes == 1


def test_the_end_detaches_the_client_once():
    """closed(): the client leaves the hub; a second call (or one before attach) does nothing."""
    rules = make()
    session = rules.open("r", 0.0)
    session.closed()
    client = session.subscribe_timed_out()
    session.attach()
    session.closed()
    session.closed()
    assert client.id not in rules.hub.clients and not rules.hub.groups


def test_each_client_gets_its_own_id():
    """Ids increase from 1 across sessions."""
    rules = make()
    ids = [rules.open("r", 0.0).subscribe_timed_out().id for _ in range(3)]
    assert ids == [1, 2, 3]


@pytest.mark.parametrize(("code", "counter"), [(1009, "oversize_closes"), (1007, "invalid_utf8_closes")])
def test_a_close_websockets_sent_itself_is_counted(code, counter):
    """1009 and 1007 on a client connection are counted (no dead letter: clients publish nothing)."""
    rules = make()
    session: ClientSession = rules.open("r", 0.0)
    session.close_sent(code)
    session.close_sent(1000)
    session.close_sent(None)
    assert getattr(rules.counters, counter) == 1
    assert rules.counters.oversize_closes + rules.counters.invalid_utf8_closes == 1
