"""Tests for dashboard_backend.ingest: dedup, watermark, gaps, rejects, broadcast order."""

from __future__ import annotations

from typing import Any

from dashboard_backend.ingest import Ingest, Intervals

RUN = "run-0000-aaaa"


def env(seq: int, msg_type: str = "heartbeat", run_id: str = RUN, **data: Any) -> dict[str, Any]:
    return {
        "v": 1,
        "type": msg_type,
        "source": "test",
        "run_id": run_id,
        "seq": seq,
        "ts_ns": 1,
        "data": data or {"uptime_s": 1.0},
    }


def gap(seq: int, ranges: list[list[int]]) -> dict[str, Any]:
    count = sum(b - a + 1 for a, b in ranges)
    return env(
        seq,
        "gap",
        from_seq=ranges[0][0],
        to_seq=ranges[-1][1],
        count=count,
        ranges=ranges,
        counts_by_type={"market_data": count},
        reason="queue_overflow",
    )


# --- intervals ------------------------------------------------------------------


def test_intervals_merge_adjacent_and_overlapping():
    """Adjacent and overlapping ranges merge into one; membership follows."""
    s = Intervals()
    s.add(5, 7)
    s.add(10, 12)
    assert len(s) == 2 and 6 in s and 8 not in s
    s.add(8, 9)
    assert len(s) == 1 and s.size() == 8
    assert s.absorb(4) == 12 and len(s) == 0


def test_intervals_huge_range_is_cheap():
    """A range of 10**15 seqs costs one interval, not 10**15 entries."""
    s = Intervals()
    s.add(10, 10**15)
    assert 10**14 in s and s.size() == 10**15 - 9


# --- dedup and broadcast ----------------------------------------------------------


def test_duplicate_is_not_rebroadcast_and_is_counted():
    """A seq seen before is neither new nor broadcast, and counts as a duplicate."""
    ing = Ingest()
    first = ing.accept(env(1))
    again = ing.accept(env(1))
    assert first.new and first.broadcast
    assert not again.new and not again.broadcast
    assert ing.counters.duplicates == 1
    assert ing.counters.received == 2 and ing.counters.unique == 1


def test_pending_critical_duplicate_is_detected():
    """A critical seq received but not yet committed is already a duplicate."""
    ing = Ingest()
    assert ing.accept(env(1, "alert", level="info", message="x")).pending
    assert not ing.accept(env(1, "alert", level="info", message="x")).new
    assert ing.counters.duplicates == 1


def test_out_of_order_is_stored_but_never_broadcast():
    """A new seq below the last broadcast one is accepted (and stored) but not broadcast."""
    ing = Ingest()
    assert ing.accept(env(1)).broadcast
    assert ing.accept(env(3)).broadcast
    late = ing.accept(env(2, "alert", level="info", message="x"))
    assert late.new and late.pending and not late.broadcast
    assert ing.counters.late == 1
    assert ing.last_broadcast(RUN) == 3


# --- watermark ------------------------------------------------------------------


def test_watermark_waits_for_critical_commit():
    """Ephemeral seqs after a pending critical one do not advance the watermark past it."""
    ing = Ingest()
    ing.accept(env(1))
    ing.accept(env(2, "alert", level="info", message="x"))
    ing.accept(env(3))
    assert ing.watermark(RUN) == 1
    assert ing.projected_watermark(RUN, [2]) == 3
    ing.committed(RUN, [2])
    assert ing.watermark(RUN) == 3


def test_gap_ranges_fill_holes():
    """Seqs declared dropped by a gap count as accounted; the watermark jumps over them."""
    ing = Ingest()
    ing.accept(env(1))
    ing.accept(env(4))
    ing.accept(env(6))
    assert ing.watermark(RUN) == 1
    ing.accept(gap(7, [[2, 3], [5, 5]]))
    assert ing.watermark(RUN) == 6  # the gap itself (7) is pending commit
    ing.committed(RUN, [7])
    assert ing.watermark(RUN) == 7
    assert ing.counters.gaps_declared == 1 and ing.counters.declared_dropped == 3


def test_gap_cannot_declare_its_own_future():
    """Ranges at or past the gap's own seq are ignored, so later seqs are not swallowed."""
    ing = Ingest()
    ing.accept(gap(1, [[1, 100]]))
    ing.committed(RUN, [1])
    assert ing.watermark(RUN) == 1
    assert ing.accept(env(2)).new


def test_rejected_seq_is_accounted():
    """A rejected seq of the run counts as accounted so acks do not stall."""
    ing = Ingest()
    ing.accept(env(1))
    ing.reject("schema_violation", RUN, 2)
    ing.accept(env(3))
    assert ing.watermark(RUN) == 3
    assert ing.counters.rejected == 1
    assert ing.counters.rejected_by_code == {"schema_violation": 1}


def test_reject_without_seq_only_counts():
    """A frame with no usable seq is counted but touches no watermark."""
    ing = Ingest()
    ing.reject("invalid_json")
    assert ing.counters.rejected_by_code["invalid_json"] == 1
    assert ing.runs() == {}


# --- persistence ----------------------------------------------------------------


def test_restore_brings_back_watermark_and_stored_seqs():
    """After restore, seqs at or below the watermark and stored ones above are duplicates."""
    ing = Ingest()
    ing.restore(RUN, acked_seq=10, last_seq=12, committed_above=[12])
    assert ing.watermark(RUN) == 10
    assert not ing.accept(env(9)).new
    assert not ing.accept(env(12, "alert", level="info", message="x")).new
    eleven = ing.accept(env(11))
    assert eleven.new and not eleven.broadcast  # already past the restored broadcast seq
    assert ing.watermark(RUN) == 12
    assert ing.changed_watermarks() == {RUN: (12, 12)}


def test_changed_watermarks_clears_after_persist():
    """Only runs changed since the last save are reported."""
    ing = Ingest()
    ing.accept(env(1))
    changed = ing.changed_watermarks()
    assert changed == {RUN: (1, 1)}
    ing.mark_persisted(changed)
    assert ing.changed_watermarks() == {}


def test_durable_watermark_follows_persistence_only():
    """The ackable watermark moves only when the store reports it written."""
    ing = Ingest()
    ing.accept(env(1))
    ing.accept(env(2))
    assert ing.watermark(RUN) == 2 and ing.durable_watermark(RUN) == 0
    ing.mark_persisted(ing.changed_watermarks())
    assert ing.durable_watermark(RUN) == 2
    ing.mark_persisted({RUN: (1, 1)})  # a stale save never moves it back
    assert ing.durable_watermark(RUN) == 2
    assert ing.runs()[RUN].acked_seq == 2
