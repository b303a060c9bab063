"""Tests of trading_bot.publisher_core: the publisher's pure protocol state machine."""

from __future__ import annotations

import json

import pytest
from trading_bot.publisher_core import Backoff, MemoryOutbox, PublisherCore, gap_ranges
from wscontract import CRITICAL_TYPES, DATA_TYPES, validate_envelope

RUN = "run-0000-aaaa"

SAMPLES = {
    "market_data": {"symbol": "BTCUSD", "price": 100.0, "bid": 99.9, "ask": 100.1, "tick": 1},
    "signal": {"symbol": "BTCUSD", "action": "buy", "strength": 0.5},
    "order": {"order_id": "o1", "symbol": "BTCUSD", "side": "buy", "quantity": 1.0, "status": "new"},
    "trade": {"trade_id": "t1", "order_id": "o1", "symbol": "BTCUSD", "side": "buy", "quantity": 1.0, "price": 100.0},
    "position": {"symbol": "BTCUSD", "quantity": 1.0, "avg_price": 100.0},
    "portfolio": {"cash": 1.0, "equity": 2.0, "realized_pnl": 0.0, "unrealized_pnl": 0.0},
    "alert": {"level": "info", "message": "hi"},
    "heartbeat": {"uptime_s": 1.0},
    "bot_status": {"state": "trading", "connected": True},
}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(queue_size: int = 1000, outbox: MemoryOutbox | None = None) -> PublisherCore:
    return PublisherCore(RUN, outbox or MemoryOutbox(), queue_size, clock=Clock())


def eph(core: PublisherCore) -> int:
    return core.produce("market_data", SAMPLES["market_data"])


def crit(core: PublisherCore) -> int:
    return core.produce("trade", SAMPLES["trade"])


def seqs(frames) -> list[int]:
    return [f.seq for f in frames]


def decode(frame) -> dict:
    return json.loads(frame.text)


# --- sequencing and envelopes --------------------------------------------------------


def test_seq_strictly_increasing_over_all_types():
    """Seqs are 1, 2, 3, ... across every type together."""
    core = make()
    got = [core.produce(t, d) for t, d in SAMPLES.items() for _ in range(3)]
    assert got == list(range(1, len(got) + 1))
    assert core.last_seq == len(got)


def test_every_envelope_validates_including_gap():
    """Every produced envelope, gap included, validates against the wire contract."""
    core = make(queue_size=2)
    for t, d in SAMPLES.items():
        core.produce(t, d)
    for _ in range(5):
        eph(core)
    core._clock.now += 2  # type: ignore[attr-defined]
    core.poll()
    frames = core.on_welcome(0)
    types = {f.type for f in frames}
    assert "gap" in types
    assert types >= CRITICAL_TYPES
    for f in frames:
        env = decode(f)
        validate_envelope(env)
        assert env["run_id"] == RUN and env["source"] == "ai-trading-bot" and env["v"] == 1
        assert env["seq"] == f.seq and env["type"] == f.type
    assert {decode(f)["type"] for f in frames} <= DATA_TYPES


def test_unknown_type_rejected():
    """Producing a type outside the contract is a programming error."""
    with pytest.raises(ValueError):
        make().produce("nonsense", {})


# --- overflow and gaps -----------------------------------------------------------------


def test_overflow_drops_oldest_and_gap_declares_exactly_those():
    """Drop-oldest; the gap's ranges skip interleaved critical seqs; counts are exact."""
    core = make(queue_size=3)
    clock = core._clock  # type: ignore[attr-defined]
    core.produce("market_data", SAMPLES["market_data"])  # 1
    core.produce("signal", SAMPLES["signal"])  # 2
    crit(core)  # 3 (critical, never dropped)
    core.produce("heartbeat", SAMPLES["heartbeat"])  # 4
    # queue now 1,2,4; next ones push out 1 then 2
    clock.now += 0.0
    eph(core)  # 5 -> drops 1 -> a gap at once (first gap is never rate-limited)
    first_gap = core.last_seq  # 6
    g1 = decode(core.on_welcome(0)[-1])
    core.on_disconnect()
    assert g1["type"] == "gap" and g1["seq"] == first_gap
    assert g1["data"]["ranges"] == [[1, 1]]
    assert g1["data"]["counts_by_type"] == {"market_data": 1}
    eph(core)  # 7 -> drops 2
    eph(core)  # 8 -> drops 4
    assert core.stats()["pending_drops"] == 2  # rate-limited: within one second
    clock.now += 1.0
    eph(core)  # 9 -> drops 5, and now the gap is due
    gap_seq = core.last_seq
    frames = core.on_welcome(0)
    gap = decode(next(f for f in frames if f.seq == gap_seq))
    assert gap["data"] == {
        "from_seq": 2,
        "to_seq": 5,
        "count": 3,
        "ranges": [[2, 2], [4, 5]],
        "counts_by_type": {"heartbeat": 1, "market_data": 1, "signal": 1},
        "reason": "queue_overflow",
    }
    assert core.dropped_by_type == {"market_data": 2, "signal": 1, "heartbeat": 1}
    assert core.declared_dropped_total == core.dropped_total == 4
    assert [g["count"] for g in core.declared_gaps] == [1, 3]


def test_gap_at_most_once_per_second():
    """While drops keep happening, a gap is produced at most once a second."""
    core = make(queue_size=1)
    clock = core._clock  # type: ignore[attr-defined]
    for _ in range(50):
        eph(core)
        clock.now += 0.1
    # 5 s of overflow: first gap at t=0 then one per second
    assert core.produced_by_type["gap"] in (5, 6)
    assert core.declared_dropped_total + len(core._pending_drops) == core.dropped_total  # type: ignore[attr-defined]


def test_gap_emitted_at_reconnect_even_within_the_second():
    """A welcome declares pending drops at once, before the resend list is built."""
    core = make(queue_size=1)
    eph(core)
    eph(core)  # drops 1 -> gap 3 at once
    eph(core)  # drops 2: pending, rate-limited
    assert core.stats()["pending_drops"] == 1
    frames = core.on_welcome(0)
    assert core.stats()["pending_drops"] == 0
    gaps = [decode(f) for f in frames if f.type == "gap"]
    assert [g["data"]["ranges"] for g in gaps] == [[[1, 1]], [[2, 2]]]
    assert seqs(frames) == sorted(seqs(frames))


def test_critical_never_dropped_however_full():
    """A full queue never costs a critical message; only ephemeral ones drop."""
    core = make(queue_size=2)
    crit_seqs = []
    for _ in range(200):
        crit_seqs.append(crit(core))
        eph(core)
    frames = core.on_welcome(0)
    sent = set(seqs(frames))
    assert set(crit_seqs) <= sent
    assert core.queue_depth == 2
    assert core.dropped_total == 198
    assert all(f.type != "market_data" or f.seq >= 399 for f in frames)


def test_gap_ranges_merges_consecutive_only():
    """ranges are inclusive pairs covering exactly the given seqs."""
    assert gap_ranges([5, 1, 2, 3, 7, 8, 10]) == [[1, 3], [5, 5], [7, 8], [10, 10]]
    assert gap_ranges([]) == []


# --- welcome, resend, ack -------------------------------------------------------------


def test_on_welcome_resends_exactly_unacked_after_acked_seq_in_order():
    """Resend list = every held seq > acked_seq, critical and ephemeral merged by seq."""
    core = make()
    for i in range(10):
        crit(core) if i % 3 == 0 else eph(core)
    frames = core.on_welcome(4)
    assert seqs(frames) == [5, 6, 7, 8, 9, 10]
    assert core.acked_seq == 4
    assert core.outbox_depth == 2  # 7 and 10
    assert core.queue_depth == 4  # 5, 6, 8, 9


def test_resend_after_reconnect_counts_and_order():
    """After a disconnect, unacked frames come again; resent_total counts them."""
    core = make()
    core.on_welcome(0)
    for _ in range(5):
        eph(core)
        crit(core)
    assert seqs(core.next_frames()) == list(range(1, 11))
    core.on_ack(4)
    core.on_disconnect()
    eph(core)  # 11 produced while disconnected: buffered, not handed out
    assert core.next_frames() == []
    frames = core.on_welcome(6)
    assert seqs(frames) == [7, 8, 9, 10, 11]
    assert core.resent_total == 4
    crit(core)
    assert seqs(core.next_frames()) == [12]


def test_next_frames_strictly_increasing_and_skips_dropped():
    """While connected, frames go out in seq order; ephemeral dropped meanwhile are skipped."""
    core = make(queue_size=2)
    core.on_welcome(0)
    for _ in range(4):
        eph(core)  # overflows: drops oldest, a gap follows
    frames = core.next_frames()
    got = seqs(frames)
    assert got == sorted(got) and len(set(got)) == len(got)
    dropped = {
        s
        for g in (decode(f) for f in frames if f.type == "gap")
        for a, b in g["data"]["ranges"]
        for s in range(a, b + 1)
    }
    assert dropped.isdisjoint(s for s, f in zip(got, frames, strict=True) if f.type != "gap")
    more = core.next_frames()
    assert all(s > got[-1] for s in seqs(more))


def test_cumulative_ack_frees_outbox_and_queue():
    """ack(seq) frees every critical and ephemeral message <= seq at once."""
    outbox = MemoryOutbox()
    core = make(outbox=outbox)
    core.on_welcome(0)
    for _ in range(5):
        crit(core)
        eph(core)
    core.next_frames()
    assert core.on_ack(6) == 6
    assert outbox.depth(RUN) == 2 and core.queue_depth == 2
    assert core.on_ack(3) == 0  # older ack: nothing more
    assert core.on_ack(10) == 4
    assert core.outbox_depth == 0 and core.queue_depth == 0 and core.acked_seq == 10


def test_ack_beyond_sent_is_clamped():
    """An ack for seqs never sent cannot free unsent messages."""
    core = make()
    core.on_welcome(0)
    crit(core)
    core.next_frames()
    crit(core)  # 2, not yet handed out
    core.on_ack(99)
    assert core.acked_seq == 1 and core.outbox_depth == 1 and core.acks_beyond_sent == 1
    assert seqs(core.next_frames()) == [2]


def test_produced_while_disconnected_is_buffered():
    """Messages produced with no connection are held and all sent after welcome."""
    core = make()
    for _ in range(20):
        eph(core)
        crit(core)
    assert core.next_frames() == []
    assert seqs(core.on_welcome(0)) == list(range(1, 41))


def test_disabled_publishing_counts_but_buffers_nothing():
    """With buffering off, seqs and counters advance but nothing is held."""
    outbox = MemoryOutbox()
    core = PublisherCore(RUN, outbox, 5, buffering=False)
    for _ in range(10):
        crit(core)
        eph(core)
    assert core.last_seq == 20 and core.produced_by_type["trade"] == 10
    assert outbox.depth() == 0 and core.queue_depth == 0 and core.dropped_total == 0


def test_old_runs_are_listed_and_delivered():
    """Old run_ids' pending criticals are found, filtered by their acked_seq and acked."""
    outbox = MemoryOutbox()
    old = make(outbox=outbox)
    old.run_id = "run-old-0001"
    for _ in range(4):
        crit(old)
    core = make(outbox=outbox)
    assert core.old_runs() == ["run-old-0001"]
    frames = core.old_run_frames("run-old-0001", 1)
    assert seqs(frames) == [2, 3, 4]
    core.on_old_ack("run-old-0001", 4)
    assert core.old_runs() == []


def test_stats_shape():
    """stats() carries every counter /stats promises."""
    s = make().stats()
    for key in (
        "run_id",
        "last_seq",
        "acked_seq",
        "produced_by_type",
        "dropped_by_type",
        "declared_gaps",
        "dropped_total",
        "declared_dropped_total",
        "queue_depth",
        "outbox_depth",
        "sent_total",
        "resent_total",
    ):
        assert key in s


# --- backoff -------------------------------------------------------------------------


def test_backoff_exponential_capped_equal_jitter():
    """With rand=1 delays double from base up to the cap; rand moves them within [c/2, c] (equal jitter)."""
    b = Backoff(0.5, max_retries=100, cap=30.0, rand=lambda: 1.0)
    delays = [b.next_delay() for _ in range(10)]
    assert delays[:7] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    assert max(delays) == 30.0
    half = Backoff(0.5, max_retries=100, rand=lambda: 0.5)
    assert [half.next_delay() for _ in range(3)] == [0.375, 0.75, 1.5]
    zero = Backoff(0.5, max_retries=100, rand=lambda: 0.0)
    assert [zero.next_delay() for _ in range(3)] == [0.25, 0.5, 1.0]


def test_a_short_outage_cannot_open_the_circuit():
    """Even the fastest retries (rand=0) take 13.75 s to fail 10 times with the test
    settings (0.5 s base, 4 s cap): a 6 s outage never reaches the 60 s long wait."""
    fastest = Backoff(0.5, max_retries=10, cap=4.0, rand=lambda: 0.0)
    delays = [fastest.next_delay() for _ in range(9)]
    assert sum(delays) == 13.75 and fastest.long_waits == 0


def test_backoff_long_wait_after_max_retries_then_starts_over():
    """The max_retries-th failure in a row waits 60 s once; then counting restarts."""
    b = Backoff(1.0, max_retries=3, rand=lambda: 1.0)
    assert [b.next_delay() for _ in range(7)] == [1.0, 2.0, 60.0, 1.0, 2.0, 60.0, 1.0]
    assert b.long_waits == 2


def test_backoff_never_gives_up():
    """Thousands of failures still give finite, bounded delays."""
    b = Backoff(0.5, max_retries=10)
    delays = [b.next_delay() for _ in range(5000)]
    assert all(0 <= d <= 60.0 for d in delays)


def test_backoff_resets_after_success():
    """reset() brings the delay back to the base range."""
    b = Backoff(0.5, max_retries=10, rand=lambda: 1.0)
    for _ in range(5):
        b.next_delay()
    b.reset()
    assert b.next_delay() == 0.5
