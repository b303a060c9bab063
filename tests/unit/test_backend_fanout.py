"""Tests for dashboard_backend.fanout: filters, per-client order, resume, overflow."""

from __future__ import annotations

import json

from dashboard_backend.fanout import Client, Entry, Hub, Subscription, declared_of

RUN = "run-0000-aaaa"


def entry(seq: int, msg_type: str = "market_data", symbol: str | None = "BTC") -> Entry:
    return Entry(RUN, seq, msg_type, symbol, f"frame-{seq}")


def client(cid: int = 1, capacity: int = 100, **sub: frozenset[str]) -> Client:
    return Client(id=cid, remote="test", capacity=capacity, sub=Subscription(**sub))


def test_filters_by_type_and_symbol():
    """Type and symbol filters select frames; envelopes without a symbol pass."""
    hub = Hub(ring_size=100)
    c = client(types=frozenset({"market_data", "portfolio"}), symbols=frozenset({"ETH"}))
    hub.attach(c)
    hub.publish(entry(1, "market_data", "BTC"))
    hub.publish(entry(2, "market_data", "ETH"))
    hub.publish(entry(3, "trade", "ETH"))
    hub.publish(entry(4, "portfolio", None))
    assert c.take(10) == ["frame-2", "frame-4"]


def test_never_sends_a_seq_twice_or_backwards():
    """Per client and run, a seq at or below the last one queued is not queued again."""
    hub = Hub(ring_size=100)
    c = client()
    hub.attach(c)
    for seq in (1, 2, 2, 1, 3):
        hub.publish(entry(seq))
    assert c.take(10) == ["frame-1", "frame-2", "frame-3"]


def test_resume_replays_exactly_the_missed_seqs():
    """Resume after N replays the ring's seqs > N, then live ones follow without overlap."""
    hub = Hub(ring_size=100)
    for seq in range(1, 11):
        hub.publish(entry(seq))
    c = client()
    assert hub.attach(c, resume=(RUN, 7)) is True
    hub.publish(entry(10))  # a late duplicate must not reach the client
    hub.publish(entry(11))
    assert c.take(100) == ["frame-8", "frame-9", "frame-10", "frame-11"]


def test_resume_is_false_when_too_old():
    """Asking for seqs already evicted from the ring gives resumed=False (and what is left)."""
    hub = Hub(ring_size=5)
    for seq in range(1, 11):
        hub.publish(entry(seq))
    c = client()
    assert hub.attach(c, resume=(RUN, 3)) is False
    assert c.take(100) == [f"frame-{s}" for s in range(6, 11)]
    assert hub.attach(client(2), resume=(RUN, 5)) is True


def test_resume_is_false_for_seqs_from_before_a_restart():
    """Seqs broadcast before this process started are not in the ring: resumed=False."""
    hub = Hub(ring_size=100)
    hub.restore_last(RUN, 50)
    assert hub.attach(client(), resume=(RUN, 40)) is False
    assert hub.attach(client(2), resume=(RUN, 50)) is True


def test_restart_with_empty_ring_is_not_resumed_and_caught_up_client_is():
    """After a restart the ring is empty: any resume below the restored seq is refused."""
    hub = Hub(ring_size=100)
    hub.restore_last(RUN, 50)
    c = client()
    assert hub.attach(c, resume=(RUN, 38)) is False and c.take(100) == []
    assert hub.attach(client(2), resume=(RUN, 60)) is True  # saw more than was persisted


def test_contiguous_ring_resumes_across_a_restart():
    """Resume is true when the ring holds every seq after after_seq, restored or new."""
    hub = Hub(ring_size=100)
    hub.restore_last(RUN, 10)
    hub.refill(entry(s, "trade") for s in range(1, 11))
    for seq in range(11, 16):
        hub.publish(entry(seq))
    c = client()
    assert hub.attach(c, resume=(RUN, 4)) is True
    assert c.take(100) == [f"frame-{s}" for s in range(5, 16)]


def test_refill_with_ephemeral_holes_replays_critical_but_is_not_resumed():
    """Stored (critical) envelopes are replayed after a restart; the lost ones make it False."""
    hub = Hub(ring_size=100)
    hub.restore_last(RUN, 10)
    hub.refill(entry(s, "trade") for s in (2, 5, 8))
    c = client()
    assert hub.attach(c, resume=(RUN, 1)) is False
    assert c.take(100) == ["frame-2", "frame-5", "frame-8"]
    # A filter does not hide a hole: the hub cannot tell what the missing seqs were.
    trades = client(2, types=frozenset({"trade"}))
    assert hub.attach(trades, resume=(RUN, 1)) is False
    assert hub.attach(client(3), resume=(RUN, 8)) is False  # 9 and 10 are gone
    assert hub.attach(client(4), resume=(RUN, 10)) is True


def test_gap_declared_seqs_count_as_held():
    """Seqs a gap in the ring declares dropped are not holes; undeclared ones are."""
    gap = {"type": "gap", "seq": 8, "data": {"ranges": [[6, 7], [0, 1], [9, 99]]}}
    assert declared_of(gap) == ((6, 7), (1, 1))  # clamped to [1, seq - 1]
    hub = Hub(ring_size=100)
    for seq in (1, 2, 3, 4, 5):
        hub.publish(entry(seq))
    hub.publish(Entry(RUN, 8, "gap", None, json.dumps(gap), declared_of(gap)))
    hub.publish(entry(9))
    c = client()
    assert hub.attach(c, resume=(RUN, 3)) is True
    assert c.take(100) == ["frame-4", "frame-5", json.dumps(gap), "frame-9"]
    hub.publish(entry(11))  # 10 never arrived and is not declared
    assert hub.attach(client(2), resume=(RUN, 3)) is False
    assert hub.attach(client(3), resume=(RUN, 10)) is True


def test_rejected_seq_marker_is_held_but_not_replayed():
    """A rejected seq leaves a marker: it is no hole, and nothing is sent for it."""
    hub = Hub(ring_size=100)
    hub.publish(entry(1))
    hub.skip(RUN, 2)
    hub.publish(entry(3))
    c = client()
    assert hub.attach(c, resume=(RUN, 0)) is True
    assert c.take(100) == ["frame-1", "frame-3"]
    # At or below what an earlier process knew, a rejection proves nothing: no marker.
    hub2 = Hub(ring_size=100)
    hub2.restore_last(RUN, 5)
    hub2.skip(RUN, 5)
    assert hub2.attach(client(), resume=(RUN, 4)) is False


def test_unknown_run_resumes_only_from_zero():
    """A run the hub never heard of: after_seq 0 is fine, a higher one cannot be vouched for."""
    hub = Hub(ring_size=100)
    hub.publish(entry(1))
    assert hub.attach(client(1), resume=("other-run", 0)) is True
    assert hub.attach(client(2), resume=("other-run", 7)) is False


def test_eviction_makes_resume_false_but_not_for_later_seqs():
    """Evicted seqs are holes; resuming above them is still complete."""
    hub = Hub(ring_size=3)
    for seq in range(1, 7):
        hub.publish(entry(seq))
    assert hub.attach(client(1), resume=(RUN, 2)) is False
    assert hub.attach(client(2), resume=(RUN, 3)) is True


def test_full_queue_marks_client_for_1013():
    """A client whose queue is full is marked overflowed, dropped and counted."""
    hub = Hub(ring_size=100)
    slow, fast = client(1, capacity=3), client(2, capacity=100)
    hub.attach(slow)
    hub.attach(fast)
    kicked = []
    for seq in range(1, 6):
        kicked += hub.publish(entry(seq))
    assert kicked == [slow] and slow.overflowed
    assert hub.slow_client_disconnects == 1
    assert 1 not in hub.clients and len(fast.take(100)) == 5


def test_backlog_does_not_count_against_the_live_queue():
    """A large resume replay does not overflow the bounded live queue."""
    hub = Hub(ring_size=100)
    for seq in range(1, 51):
        hub.publish(entry(seq))
    c = client(capacity=5)
    hub.attach(c, resume=(RUN, 0))
    assert hub.publish(entry(51)) == []
    assert len(c.take(1000)) == 51


# --- lanes: one pending list per subscription group --------------------------------


def test_a_lane_member_gets_frames_from_its_group_once_per_message():
    """Promoted clients are served from the group's pending list, in order, filter applied."""
    hub = Hub(ring_size=100)
    ready = []
    hub.lane_ready = ready.append
    a, b = client(1, types=frozenset({"market_data"})), client(2, types=frozenset({"market_data"}))
    other = client(3, types=frozenset({"trade"}))
    for c in (a, b, other):
        hub.attach(c)
        assert hub.promote(c)
    assert a.group is b.group and other.group is not a.group
    hub.publish(entry(1))
    hub.publish(entry(2, "trade"))
    hub.publish(entry(3))
    assert ready == [a.group, other.group]  # once per group, when its first frame is pending
    assert a.depth == b.depth == 2 and not a.queue and not b.queue
    assert hub.take_lane(a.group) == ["frame-1", "frame-3"]
    assert hub.take_lane(other.group) == ["frame-2"]
    assert a.depth == 0


def test_promotion_only_with_nothing_of_its_own_and_at_a_lane_boundary():
    hub = Hub(ring_size=100)
    a, b = client(1), client(2)
    hub.attach(a)
    assert hub.promote(a)
    hub.attach(b)
    hub.publish(entry(1))
    assert b.queue and not hub.promote(b)  # its own frame first
    b.take(10)
    assert not hub.promote(b)  # the lane has frame 1 pending, which b already has
    hub.take_lane(a.group)
    assert hub.promote(b) and not hub.promote(b)
    hub.publish(entry(2))
    assert hub.take_lane(b.group) == ["frame-2"]


def test_a_resume_ahead_of_what_the_hub_knows_keeps_the_per_client_check():
    """A client claiming seqs above the highest published must not get them from the lane."""
    hub = Hub(ring_size=100)
    hub.publish(entry(1))
    ahead = client(1)
    hub.attach(ahead, resume=(RUN, 5))
    assert not hub.promote(ahead)
    for seq in range(2, 8):
        hub.publish(entry(seq))
    assert ahead.take(10) == ["frame-6", "frame-7"]
    assert hub.promote(ahead)  # now nothing it claims is ahead of the hub


def test_demotion_keeps_order_and_no_duplicates():
    hub = Hub(ring_size=100)
    a = client(1)
    hub.attach(a)
    hub.promote(a)
    hub.publish(entry(1))
    hub.publish(entry(2))
    frames = hub.take_lane(a.group)
    assert hub.demote(a, frames) and not a.in_lane
    hub.publish(entry(2))  # republished seqs are still never queued twice
    hub.publish(entry(3))
    assert a.take(10) == ["frame-1", "frame-2", "frame-3"]


def test_a_lane_not_flushed_for_a_whole_queue_overflows_its_members():
    hub = Hub(ring_size=100)
    lane = [client(i, capacity=3) for i in (1, 2)]
    for c in lane:
        hub.attach(c)
        hub.promote(c)
    kicked = []
    for seq in range(1, 5):
        kicked += hub.publish(entry(seq))
    assert kicked == lane and all(c.overflowed for c in lane)
    assert hub.slow_client_disconnects == 2 and not hub.clients and not hub.groups


def test_detach_leaves_no_empty_group():
    hub = Hub(ring_size=100)
    a, b = client(1), client(2)
    hub.attach(a)
    hub.attach(b)
    hub.promote(a)
    hub.detach(a)
    assert a.group is b.group and list(hub.groups) == [b.sub]
    hub.detach(b)
    assert hub.groups == {}


def test_a_lane_member_with_a_larger_queue_is_demoted_not_dropped():
    hub = Hub(ring_size=100)
    small, large = client(1, capacity=2), client(2, capacity=10)
    notified = []
    large.notify = lambda: notified.append(2)
    for c in (small, large):
        hub.attach(c)
        hub.promote(c)
    kicked = []
    for seq in range(1, 4):
        kicked += hub.publish(entry(seq))
    assert kicked == [small] and not large.overflowed and not large.in_lane
    assert notified and large.take(10) == ["frame-1", "frame-2", "frame-3"]


def test_lane_capacity_is_the_smallest_members_through_joins_and_leaves():
    # The lane overflows at its smallest member's queue size; kept in O(1) per change.
    hub = Hub(ring_size=10)
    clients = [Client(i, "r", capacity=cap) for i, cap in enumerate((5, 3, 5, 8))]
    for c in clients:
        hub.attach(c)
        assert hub.promote(c)
    group = clients[0].group
    assert group is not None and group.capacity == 3
    hub.detach(clients[1])  # the smallest leaves: the next smallest rules
    assert group.capacity == 5
    assert hub.demote(clients[0], []) and group.capacity == 5  # one of two 5s left
    hub.detach(clients[2])
    assert group.capacity == 8
    hub.detach(clients[3])
    assert group.capacity == 0 and not group.capacities
