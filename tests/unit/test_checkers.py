"""Every checker fed a history with the defect must report it (and a clean one must pass)."""

from wsrig.checkers import (
    check_counts_agree,
    check_delivery,
    check_gap_declarations,
    check_stream,
    check_trading_continued,
    judge_other_clients,
    recovery_seconds,
)
from wsrig.history import Observed, Produced, SeqSet

RUN = "run-aaaaaaaa"


def obs(*seqs: int, run: str = RUN, kind: str = "market_data") -> list[Observed]:
    return [Observed(run, s, kind, recv_ns=i * 1_000_000) for i, s in enumerate(seqs)]


def gap_env(seq: int, ranges: list[list[int]], count: int | None = None) -> Observed:
    n = sum(b - a + 1 for a, b in ranges)
    data = {
        "from_seq": ranges[0][0],
        "to_seq": ranges[-1][1],
        "count": n if count is None else count,
        "ranges": ranges,
        "counts_by_type": {"market_data": n},
        "reason": "queue_overflow",
    }
    return Observed(RUN, seq, "gap", data=data)


# --- check_stream ---------------------------------------------------------------


def test_stream_clean_passes():
    """A strictly increasing stream with no hole is ok."""
    rep = check_stream(obs(1, 2, 3, 4, 5))[RUN]
    assert rep.ok and rep.received == 5 and rep.findings() == []


def test_stream_reports_duplicate():
    """A seq delivered twice is reported as duplicated."""
    rep = check_stream(obs(1, 2, 3, 3, 4))[RUN]
    assert rep.duplicated == [3] and not rep.ok
    assert "DUPLICATED" in rep.findings()[0].message and rep.findings()[0].check == "duplicated"


def test_stream_reports_reorder():
    """A seq arriving after a higher one is reported as reordered."""
    rep = check_stream(obs(1, 2, 4, 3, 5))[RUN]
    assert rep.reordered == [3] and not rep.ok


def test_stream_reports_undeclared_hole():
    """A missing seq with no gap declaration is an undeclared gap."""
    rep = check_stream(obs(1, 2, 5, 6))[RUN]
    assert rep.undeclared_gaps == [3, 4]
    assert "never declared" in rep.findings()[0].message


def test_stream_accepts_hole_declared_in_stream():
    """A hole covered by a gap envelope in the stream is declared, not a defect."""
    stream = obs(1, 2, 5) + [gap_env(6, [[3, 4]])]
    rep = check_stream(stream)[RUN]
    assert rep.ok and rep.declared_missing == 2


def test_stream_runs_are_independent():
    """Seqs of two runs interleaved are judged per run."""
    stream = obs(1, 2, run="run-1xxxxxxx") + obs(1, 2, run="run-2xxxxxxx")
    reps = check_stream(stream)
    assert all(r.ok for r in reps.values()) and len(reps) == 2


# --- check_delivery -------------------------------------------------------------


def test_delivery_clean_passes():
    """Everything produced was observed once, in order."""
    rep = check_delivery([Produced(RUN, last_seq=5)], obs(1, 2, 3, 4, 5))[RUN]
    assert rep.ok and rep.observed == 5 and rep.findings() == []


def test_delivery_reports_lost():
    """Produced, undeclared, neither stored nor observed: lost."""
    rep = check_delivery([Produced(RUN, last_seq=5)], obs(1, 2, 4, 5))[RUN]
    assert rep.lost == [3] and not rep.ok
    assert "LOST" in rep.findings()[0].message


def test_delivery_stored_but_not_delivered_is_undeclared_not_lost():
    """In the store but never delivered: an undeclared drop on the fan-out side, not lost."""
    rep = check_delivery([Produced(RUN, last_seq=5)], obs(1, 2, 4, 5), stored={RUN: {3}})[RUN]
    assert rep.lost == [] and rep.undeclared_drops == [3] and not rep.ok
    assert "never delivered" in rep.findings()[0].message


def test_delivery_declared_drop_is_allowed():
    """A drop the publisher declared is counted, not a defect."""
    prod = Produced(RUN, last_seq=5, dropped_total=1, declared=SeqSet([(3, 3)]))
    rep = check_delivery([prod], obs(1, 2, 4, 5))[RUN]
    assert rep.ok and rep.declared_dropped == 1


def test_delivery_reports_duplicate_and_reorder():
    """Duplicates and reorders to a subscriber are both reported."""
    rep = check_delivery([Produced(RUN, last_seq=4)], obs(1, 3, 2, 3, 4))[RUN]
    assert rep.duplicated == [3] and rep.reordered == [2]


def test_delivery_reports_unexpected():
    """Seqs beyond what was produced, or of an unknown run, are unexpected."""
    reps = check_delivery([Produced(RUN, last_seq=2)], obs(1, 2, 3) + obs(1, run="ghost-run-xx"))
    assert reps[RUN].unexpected == [3]
    assert reps["ghost-run-xx"].unexpected == [1]


def test_delivery_reports_publisher_undeclared_drop():
    """A publisher that dropped more than it declared is caught by its own counts."""
    prod = Produced(RUN, last_seq=4, dropped_total=2, declared=SeqSet([(3, 3)]))
    rep = check_delivery([prod], obs(1, 2, 4))[RUN]
    assert rep.publisher_undeclared == 1 and not rep.ok


# --- gap self-consistency -------------------------------------------------------


def test_gap_declaration_consistent_passes():
    """A gap whose count, ranges and by-type counts agree is fine."""
    g = gap_env(10, [[3, 4], [6, 6]])
    assert check_gap_declarations([{"seq": g.seq, "data": g.data}]) == []


def test_gap_declaration_count_mismatch():
    """A gap that claims more drops than its ranges cover is reported."""
    g = gap_env(10, [[3, 4]], count=5)
    findings = check_gap_declarations([{"seq": g.seq, "data": g.data}])
    assert findings and "must agree" in findings[0].message


def test_gap_declaring_the_future_is_reported():
    """A gap may only declare seqs produced before it."""
    g = gap_env(4, [[3, 5]])
    assert any("after itself" in f.message for f in check_gap_declarations([{"seq": g.seq, "data": g.data}]))


# --- trading continuity ----------------------------------------------------------


def test_trading_continued_passes():
    """Ticks and trades advanced."""
    ok, finding = check_trading_continued(
        {"trading": {"ticks": 10, "trades": 1}}, {"trading": {"ticks": 50, "trades": 3}}
    )
    assert ok and finding is None


def test_trading_stalled_ticks():
    """No tick during the fault: trading stalled."""
    ok, finding = check_trading_continued(
        {"trading": {"ticks": 10, "trades": 1}}, {"trading": {"ticks": 10, "trades": 1}}
    )
    assert not ok and finding and "stalled" in finding.message


def test_trading_stalled_trades():
    """Ticks but no trades: trading stalled (when trades are required)."""
    ok, finding = check_trading_continued(
        {"trading": {"ticks": 1, "trades": 1}}, {"trading": {"ticks": 9, "trades": 1}}
    )
    assert not ok and finding and "no trade" in finding.message


# --- counts across services -------------------------------------------------------


def _bot(acked: int, last: int, dropped: int = 0, declared: int = 0) -> dict:
    return {
        "run_id": RUN,
        "acked_seq": acked,
        "last_seq": last,
        "produced_by_type": {"market_data": last},
        "dropped_total": dropped,
        "declared_dropped_total": declared,
    }


def test_counts_agree_passes():
    """Backend acked seq inside the bot's window, books balanced."""
    assert check_counts_agree(_bot(90, 100), {"runs": {RUN: {"acked_seq": 95}}}, _bot(99, 110)) == []


def test_counts_backend_ahead_of_bot():
    """A backend that acks seqs the bot never produced is reported."""
    findings = check_counts_agree(_bot(90, 100), {"runs": {RUN: {"acked_seq": 500}}}, _bot(99, 110))
    assert findings and "outside" in findings[0].message


def test_counts_unknown_run():
    """A backend that does not know the bot's run is reported."""
    assert "knows no run" in check_counts_agree(_bot(1, 2), {"runs": {}}, _bot(1, 2))[0].message


def test_counts_undeclared_drops_in_bot_books():
    """Bot dropped more than it declared: reported."""
    findings = check_counts_agree(
        _bot(90, 100), {"runs": {RUN: {"acked_seq": 95}}}, _bot(99, 110, dropped=5, declared=2)
    )
    assert any("declared only" in f.message for f in findings)


def test_recovery_seconds():
    """Recovery is heal to the first envelope observed after it; None if never."""
    stream = [Observed(RUN, 1, "x", recv_ns=1_000_000_000), Observed(RUN, 2, "x", recv_ns=3_500_000_000)]
    assert recovery_seconds(stream, heal_ns=2_000_000_000) == 1.5
    assert recovery_seconds(stream, heal_ns=4_000_000_000) is None


def test_delivery_judge_upto_limits_loss_not_unexpected():
    """Seqs above judge_upto are not lost (in flight), but above last_seq still unexpected."""
    prod = Produced(RUN, last_seq=10, judge_upto=5)
    rep = check_delivery([prod], obs(1, 2, 3, 4, 5, 7, 11))[RUN]
    assert rep.lost == [] and rep.unexpected == [11]


def test_delivery_excused_by_refused_resume_is_counted_not_failed():
    """Seqs the backend declared unresumable are counted apart, not as undeclared or lost."""
    rep = check_delivery([Produced(RUN, last_seq=6)], obs(1, 2, 5, 6), excused={RUN: SeqSet([(3, 4)])})[RUN]
    assert rep.ok and rep.missed_on_refused_resume == 2 and rep.lost == []


def test_trading_with_failing_ticks_is_not_continued():
    """Ticks that raise (counted by the bot as tick_errors) mean trading did not continue."""
    ok, finding = check_trading_continued(
        {"trading": {"ticks": 1, "trades": 1}, "tick_errors": 0},
        {"trading": {"ticks": 9, "trades": 2}, "tick_errors": 8},
    )
    assert not ok and finding and "failing" in finding.message


def test_gap_declaring_a_critical_drop_is_reported():
    """A gap that declares a trade dropped is a defect: critical messages are never dropped."""
    g = gap_env(10, [[3, 3]])
    g.data["counts_by_type"] = {"trade": 1}
    findings = check_gap_declarations([{"seq": g.seq, "data": g.data}])
    assert any("critical" in f.message for f in findings)


# --- judge_other_clients: one slow client harms no other ---------------------------------


def _other(seqs, run="pub-run"):
    return [Observed(run, s, "market_data") for s in seqs]


def _bot_ticks(ticks):
    return {"trading": {"ticks": ticks, "trades": 0}}


def test_other_clients_clean():
    fields, findings = judge_other_clients(
        Produced("pub-run", last_seq=5), [_other([1, 2, 3, 4, 5])] * 2, _bot_ticks(1), _bot_ticks(9)
    )
    assert findings == []
    assert fields == {
        "produced": 5,
        "others_received": [5, 5],
        "lost": 0,
        "duplicated": 0,
        "reordered": 0,
        "trading_continued": True,
    }


def test_an_other_client_starved_by_the_slow_one_is_loss_named_by_client():
    # A backend that stops serving everyone behind a stuck client: seqs 4-5 never reach client 2.
    fields, findings = judge_other_clients(
        Produced("pub-run", last_seq=5), [_other([1, 2, 3, 4, 5]), _other([1, 2, 3])], _bot_ticks(1), _bot_ticks(9)
    )
    assert fields["lost"] == 2
    assert any(f.message.startswith("other client 2:") and "LOST 2" in f.message for f in findings)


def test_other_client_duplicates_and_reorders_are_found():
    fields, findings = judge_other_clients(
        Produced("pub-run", last_seq=4), [_other([1, 3, 2, 3, 4])], _bot_ticks(1), _bot_ticks(9)
    )
    assert (fields["duplicated"], fields["reordered"]) == (1, 1)
    text = " ".join(f.message for f in findings)
    assert "DUPLICATED" in text and "REORDERED" in text


def test_other_client_ignores_other_runs_and_flags_stalled_trading_once():
    observed = _other([1, 2]) + _other([7, 8], run="bot-run")
    fields, findings = judge_other_clients(
        Produced("pub-run", last_seq=2), [observed, observed], _bot_ticks(4), _bot_ticks(4)
    )
    assert fields["lost"] == 0 and fields["trading_continued"] is False
    assert len([f.message for f in findings if "trading stalled" in f.message]) == 1


def test_scan_order_names_repeats_and_late_arrivals():
    from wsrig.checkers import scan_order

    seen, duplicated, reordered = scan_order([1, 2, 4, 3, 4, 5, 2])
    assert seen == {1, 2, 3, 4, 5} and duplicated == [4, 2] and reordered == [3]
