"""Tests for dashboard_backend.fanout: filters, per-client order, resume, overflow."""

from __future__ import annotations

from dashboard_backend.fanout import Client, Entry, Hub, Subscription

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
    hub.restore_floor(RUN, 50)
    assert hub.attach(client(), resume=(RUN, 40)) is False
    assert hub.attach(client(2), resume=(RUN, 50)) is True


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
