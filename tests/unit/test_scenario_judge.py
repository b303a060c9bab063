"""The fault stage's judge on synthetic histories: one clean, and one per defect it exists to catch."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from wsrig.righealth import RigLimits
from wsrig.scenario_history import (
    ClientLog,
    DurabilityHistory,
    ResumeHistory,
    ScenarioHistory,
    SlowClientHistory,
    history_path,
    load_history,
)
from wsrig.scenario_judge import judge_durability, judge_history, judge_resume, judge_scenario, judge_slow_client

LIMITS = {
    "recovery_bound_s": 15,
    "link_close_allowance_s": 2,
    "link_sample_s": 0.1,
    "overflow_rss_growth_max_mb": 30,
    "reconnect_fd_growth_max": 10,
    "reconnect_rss_growth_max_mb": 20,
}
S = 1_000_000_000  # ns
INJECT, HEAL = 100 * S, 105 * S


def _stats(last: int, ticks: int, trades: int, run: str = "run-a", **kw: Any) -> dict[str, Any]:
    return {"run_id": run, "last_seq": last, "acked_seq": last, "trading": {"ticks": ticks, "trades": trades}, **kw}


def _frames(seqs: list[int], run: str = "run-a", t0: int = 101 * S, step: int = S // 5) -> list[tuple[int, dict]]:
    """Envelopes received 200 ms apart from ``t0``; seq 11..60 spans the fault (heal at 105 s)."""
    return [
        (t0 + i * step, {"run_id": run, "seq": s, "type": "market_data", "ts_ns": t0 + i * step - 2_000_000})
        for i, s in enumerate(seqs)
    ]


def _late(delay_s: int) -> list[tuple[int, dict]]:
    """Every envelope seen once, but nothing between the heal and ``delay_s`` after it."""
    return [(t if t < HEAL else t + delay_s * S, f) for t, f in _frames(list(range(11, 61)))]


def clean() -> ScenarioHistory:
    """Run run-a: settled at seq 10, 50 more envelopes, all seen once, in order, across the fault."""
    return ScenarioHistory(
        name="dashboard_crash",
        fault="crash",
        injected_ns=INJECT,
        healed_ns=HEAL,
        run_id="run-a",
        new_run_id="run-a",
        stats={
            "start": _stats(10, 100, 5),
            "before": _stats(20, 120, 6, reconnects=0),
            "during": _stats(40, 160, 8),
            "after": _stats(60, 200, 10, reconnects=1),
            "final": _stats(60, 200, 10),
        },
        live=ClientLog.of(_frames(list(range(11, 61))), 2, [], [1006]),
        stored={"run-a": [15, 30]},
        books={
            "run_id": "run-a",
            "last_seq": 60,
            "produced_critical": 2,
            "acked": True,
            "timeout_s": 60,
            "stored_upto_last": 2,
        },
    )


def errors(h: ScenarioHistory) -> list[str]:
    return [f.message for f in judge_scenario(h, LIMITS).findings if f.severity == "error"]


def test_a_clean_history_passes():
    r = judge_scenario(clean(), LIMITS)
    assert r.passed, r.findings
    assert (r.lost, r.duplicated, r.reordered) == (0, 0, 0)
    assert r.trading_continued and r.recovery_s is not None and r.recovery_s < 1
    assert r.extra["bot_reconnects"] == 1 and r.extra["subscriber_reconnects"] == 1


def test_a_seq_never_seen_nor_stored_is_lost():
    h = clean()
    h.live = ClientLog.of(_frames([s for s in range(11, 61) if s != 33]), 1, [], [])
    r = judge_scenario(h, LIMITS)
    assert r.lost == 1 and any("LOST 1" in m and "33" in m for m in errors(h))


def test_a_seq_stored_but_never_delivered_is_an_undeclared_drop():
    h = clean()
    h.live = ClientLog.of(_frames([s for s in range(11, 61) if s != 30]), 1, [], [])
    r = judge_scenario(h, LIMITS)
    assert r.lost == 0 and r.undeclared_drops == 1
    assert any("stored by the backend but never delivered" in m for m in errors(h))


def test_duplicates_and_reorders_are_named():
    h = clean()
    h.live = ClientLog.of(_frames([*range(11, 40), 39, 41, 40, *range(42, 61)]), 1, [], [])
    found = " ".join(errors(h))
    assert "DUPLICATED" in found and "REORDERED" in found


def test_a_declared_gap_excuses_its_seqs_and_a_gap_declaring_critical_fails():
    h = clean()
    seqs = [s for s in range(11, 61) if s not in (20, 21, 22)]  # 22: the gap that declares 20-21
    h.live = ClientLog.of(_frames(seqs), 1, [], [])
    gap = {"ranges": [[20, 21]], "count": 2, "counts_by_type": {"market_data": 2}, "from_seq": 20, "to_seq": 21}
    h.live.frames.insert(9, (h.live.frames[8][0] + 1, {"run_id": "run-a", "seq": 22, "type": "gap", "data": gap}))
    r = judge_scenario(h, LIMITS)
    assert r.passed and r.declared_dropped == 2 and r.lost == 0
    gap["counts_by_type"] = {"market_data": 1, "trade": 1}
    assert any("critical" in m for m in errors(h))


def test_slow_recovery_and_no_recovery_are_findings():
    h = clean()
    h.live = ClientLog.of(_late(20), 1, [], [])
    r = judge_scenario(h, LIMITS)
    assert r.recovery_s is not None and r.recovery_s >= 20
    assert any("recovery" in m and "> bound 15s" in m for m in errors(h))
    h.live = ClientLog.of([f for f in _late(0) if f[0] < HEAL], 1, [], [])
    assert "no message observed after heal" in errors(h)


def test_trading_that_stopped_during_the_fault_fails():
    h = clean()
    h.stats["during"] = _stats(40, 120, 6)  # ticks did not advance since "before"
    assert any("during the fault: trading stalled" in m for m in errors(h))


def test_critical_books_that_do_not_balance_fail():
    h = clean()
    h.books = {**h.books, "stored_upto_last": 1}  # type: ignore[dict-item]
    assert any("LOST critical" in m for m in errors(h))
    h.books = {**h.books, "acked": False}  # type: ignore[dict-item]
    assert any("did not ack seq 60" in m for m in errors(h))


def test_a_scenario_that_never_settled_fails():
    h = clean()
    h.settle_error = "bot did not settle within 60s"
    assert "bot did not settle within 60s" in errors(h)


def test_a_refused_resume_excuses_the_missing_range_and_counts_it():
    h = clean()
    h.live = ClientLog.of(_frames([s for s in range(11, 61) if not 25 <= s <= 29]), 2, [("run-a", 24)], [])
    r = judge_scenario(h, LIMITS)
    assert r.passed and r.extra["missed_on_refused_resume"] == 5 and r.extra["resume_refused"] == 1


def test_a_bot_restart_judges_the_new_run_from_its_replay():
    h = clean()
    h.new_run_id = "run-b"
    h.stats["after"] = _stats(30, 40, 2, run="run-b")
    h.stats["final"] = _stats(30, 40, 2, run="run-b")
    h.live = ClientLog.of(_frames(list(range(11, 21))) + _frames(list(range(5, 31)), run="run-b", t0=HEAL), 2, [], [])
    h.replay = ClientLog.of(_frames([s for s in range(1, 31) if s != 7], run="run-b", t0=HEAL), 1, [], [])
    h.stored = {"run-a": [15], "run-b": []}
    h.books = None
    r = judge_scenario(h, LIMITS)
    assert r.extra["new_run_id"] == "run-b"
    assert any("run run-b" in m and "LOST 1" in m for m in errors(h)), errors(h)
    h.stats["after"] = _stats(30, 0, 0, run="run-b")  # the new process never ticked
    assert any("trading stalled" in m for m in errors(h))


def test_the_partition_promise_needs_a_bot_reconnect():
    h = clean()
    h.promises = ["notices_cut"]
    assert not errors(h)
    h.stats["after"] = _stats(60, 200, 10, reconnects=0)
    assert any("did not notice the dead link" in m for m in errors(h))


def test_the_overflow_promise_needs_declared_drops_and_bounded_memory():
    h = clean()
    h.promises = ["queue_overflow"]
    h.measured = {"rss_before": 100 * 2**20, "rss_after": 150 * 2**20}
    found = " ".join(errors(h))
    assert "the queue never overflowed" in found and "bot memory grew 50.0 MB" in found


def test_the_reconnect_cycles_promise_catches_leaks_and_extra_publishers():
    h = clean()
    h.promises = ["reconnect_cycles"]
    h.measured = {
        "cycles": 20,
        "publisher_connections": 2,
        "fds_before": 10,
        "fds_after": 40,
        "rss_before": 0,
        "rss_after": 0,
        "reconnects_before": 0,
        "reconnects_after": 12,
    }
    found = " ".join(errors(h))
    assert "2 publisher connections" in found and "only 12 reconnects for 20" in found and "+30" in found


@pytest.mark.parametrize("defect", [None, "lost"])
def test_a_stored_history_is_judged_the_same(tmp_path, defect):
    h = clean()
    if defect:
        h.live = ClientLog.of(_frames(list(range(11, 50))), 1, [], [])
    path = h.save(history_path(tmp_path, "fault_tolerance", h.name))
    again = load_history(path)
    assert judge_scenario(again, LIMITS).serialize() == judge_scenario(copy.deepcopy(h), LIMITS).serialize()


def test_the_judge_reads_its_bound_from_the_thresholds_it_is_given():
    h = clean()
    h.live = ClientLog.of(_late(5), 1, [], [])
    assert judge_scenario(h, LIMITS).passed
    assert not judge_scenario(h, {**LIMITS, "recovery_bound_s": 2}).passed


# --- the slow-subscriber scenario: one slow client harms no other ---------------------

RIG = RigLimits(loop_lag_p99_ms=10, loop_lag_max_ms=50, generator_lag_p99_ms=20, us_per_delivery=20)
SLOW = {
    "slow_client_p99_ms": 100,
    "slow_client_harm_p99_ms": 20,
    "slow_client_cut_max_s": 10,
    "backend_rss_growth_max_mb": 100,
}
MS = 1_000_000  # ns
BASELINE, HARM = [10 * S, 15 * S], [16 * S, 26 * S]


def _slow_frames(latency_ms=lambda ts: 3.0) -> list[tuple[int, dict]]:
    """The rig's run, one frame due every 10 ms from 9 s to 27 s, received ``latency_ms(due)`` later."""
    frames = []
    for seq in range(1, 1801):
        due = 9 * S + (seq - 1) * 10 * MS
        frames.append(
            (due + int(latency_ms(due) * MS), {"run_id": "pub", "seq": seq, "type": "market_data", "ts_ns": due})
        )
    return frames


def _polls(cut_at_ns: int | None = 21 * S) -> list[list]:
    """The status every 0.2 s: the non-reader listed from 16 s until ``cut_at_ns``, the counter 3 -> 4 then."""
    rows = []
    for i in range(int(9 * S // (S // 5)), int(28 * S // (S // 5))):
        t = i * (S // 5)
        cut = cut_at_ns is not None and t >= cut_at_ns
        listed = t >= 16 * S and not cut
        rows.append([t, True, 1500 if listed else None, 40 if t >= 16 * S else None, 4 if cut else 3])
    return rows


def slow_clean() -> SlowClientHistory:
    """Two others got seqs 1..1800 within 3 ms; the non-reader was cut 5 s after it stopped reading."""
    return SlowClientHistory(
        name="slow_subscriber",
        produced={"run_id": "pub", "first_seq": 1, "last_seq": 1800},
        rate=100,
        reader_rate=50,
        baseline=list(BASELINE),
        harm=list(HARM),
        others=[ClientLog.of(_slow_frames(), 1, [], [None]) for _ in range(2)],
        polls=_polls(),
        slow_reader={"frames": 300, "close_code": None},
        status_before={"rss_bytes": 50 * 2**20, "counters": {"slow_client_disconnects": 3}},
        status_after={"rss_bytes": 60 * 2**20, "counters": {"slow_client_disconnects": 4}},
        bot_before={"trading": {"ticks": 10, "trades": 1}},
        bot_after={"trading": {"ticks": 30, "trades": 1}},
        rig=[{"name": "others and slow clients", "loop_lag_p99_ms": 1.0, "loop_lag_max_ms": 5.0, "cpu_s": 0.5}],
        schedule_start_ns=9 * S,
        read_until_ns=28 * S,
    )


def _found(h: SlowClientHistory) -> str:
    return " | ".join(f["message"] for f in judge_slow_client(h, SLOW, RIG)["findings"])


def test_a_clean_slow_client_history_passes():
    row = judge_slow_client(slow_clean(), SLOW, RIG)
    assert row["status"] == "passed", row["findings"]
    assert (row["lost"], row["duplicated"], row["reordered"], row["trading_continued"]) == (0, 0, 0, True)
    assert row["non_reader_cut_s"] == 5.0 and row["harm_added_p99_ms"] == 0.0
    assert row["baseline_latency_ms"]["count"] == 1000 and row["latency_ms"]["count"] == 2000


def test_an_other_client_losing_or_reordering_fails():
    h = slow_clean()
    frames = [f for f in h.others[1].frames if f[1]["seq"] != 50]
    frames[10], frames[11] = frames[11], frames[10]
    h.others[1] = ClientLog.of(frames, 1, [], [None])
    row = judge_slow_client(h, SLOW, RIG)
    assert row["status"] == "failed" and row["lost"] == 1 and row["reordered"] == 1
    assert "other client 2:" in _found(h)


def test_one_write_lock_stalling_everyone_behind_the_slow_client_fails_on_the_difference():
    # A backend that writes every client under one lock: while the non-reader's socket is
    # full, every other client waits; their latency during the harm window is seconds.
    h = slow_clean()
    stalled = lambda due: 3.0 if not 18 * S <= due < 21 * S else (21 * S - due) / MS  # noqa: E731
    h.others = [ClientLog.of(_slow_frames(stalled), 1, [], [None]) for _ in range(2)]
    row = judge_slow_client(h, SLOW, RIG)
    assert row["status"] == "failed"
    assert "SLOW CLIENT HARMED THE OTHERS: their P99 went from 3.0 ms without slow clients to" in _found(h)


def test_others_cut_off_behind_the_slow_client_fail_on_their_close_and_their_latency():
    # Seen live with that defect: the others' queues filled behind the lock and the backend
    # closed them (1013) too; what they never received counts as late as the reading went on.
    h = slow_clean()
    stopped = [f for f in _slow_frames() if f[1]["seq"] <= 800]  # due until 17 s
    h.others = [ClientLog.of(stopped, 1, [], [1013]) for _ in range(2)]
    row = judge_slow_client(h, SLOW, RIG)
    found = _found(h)
    assert row["status"] == "failed" and row["lost"] == 2000
    assert (
        "SLOW CLIENT HARMED THE OTHERS: other client 2, which read all it was sent, was closed by the backend (code 1013)"
        in found
    )
    assert row["latency_ms"]["p99"] > 10_000 and "their P99 went from 3.0 ms" in found


def test_the_gate_is_the_difference_against_the_same_runs_baseline():
    h = slow_clean()
    # Slow all along (a busy host): 60 -> 65 ms is no harm, under the absolute bound too.
    h.others = [ClientLog.of(_slow_frames(lambda due: 60.0 if due < HARM[0] else 65.0), 1, [], [None])] * 2
    assert judge_slow_client(h, SLOW, RIG)["status"] == "passed"
    # Fast alone, 30 ms more with the slow clients: harm, though under the absolute bound.
    h.others = [ClientLog.of(_slow_frames(lambda due: 3.0 if due < HARM[0] else 33.0), 1, [], [None])] * 2
    assert "SLOW CLIENT HARMED THE OTHERS" in _found(h)


def test_the_others_latency_is_invalid_with_a_late_rig():
    h = slow_clean()
    h.others = [ClientLog.of(_slow_frames(lambda due: 3.0 if due < HARM[0] else 400.0), 1, [], [None])] * 2
    h.rig = [{"name": "others and slow clients", "loop_lag_p99_ms": 30.0, "loop_lag_max_ms": 120.0, "cpu_s": 0.5}]
    row = judge_slow_client(h, SLOW, RIG)
    assert row["status"] == "invalid" and row["invalid_reasons"] and not row["findings"]


def test_a_non_reader_never_cut_or_cut_late_fails():
    h = slow_clean()
    h.polls = _polls(cut_at_ns=None)
    h.status_after = h.status_before
    found = _found(h)
    assert "SLOW CLIENT NOT CUT: the client that read nothing was still connected 11.8s after" in found
    assert "never cut (slow_client_disconnects did not rise" in found
    h = slow_clean()
    h.polls = _polls(cut_at_ns=27 * S)
    assert "SLOW CLIENT CUT LATE: the client that read nothing was cut 11.0s after it stopped reading" in _found(h)


def test_an_unanswered_status_is_not_a_cut():
    h = slow_clean()
    h.polls = [[t, False, None, None, None] if 17 * S <= t < 18 * S else row for row in h.polls for t in [row[0]]]
    assert judge_slow_client(h, SLOW, RIG)["non_reader_cut_s"] == 5.0


def test_a_scenario_that_tested_nothing_fails():
    h = slow_clean()
    h.polls = [[t, True, None, None, 3] for t, *_ in h.polls]
    h.status_after = h.status_before
    assert "never appeared in the backend's client list: nothing was tested" in _found(h)
    h = slow_clean()
    h.harm = [26 * S, 26 * S + S // 2]
    assert "nothing to compare" in _found(h)


def test_a_growing_backend_and_a_stopped_bot_fail():
    h = slow_clean()
    h.status_after = {**h.status_after, "rss_bytes": 300 * 2**20}
    h.bot_after = h.bot_before
    row = judge_slow_client(h, SLOW, RIG)
    assert "backend memory grew 250.0 MB" in _found(h) and not row["trading_continued"]


def test_a_slow_client_history_round_trips(tmp_path):
    h = slow_clean()
    again = load_history(h.save(history_path(tmp_path, "fault_tolerance", h.name)))
    assert judge_slow_client(again, SLOW, RIG) == judge_slow_client(h, SLOW, RIG)


def test_a_history_of_another_version_is_refused_with_a_reason(tmp_path):
    path = history_path(tmp_path, "fault_tolerance", "slow_subscriber")
    path.write_text('{"kind": "slow_client", "version": 1, "name": "slow_subscriber"}')
    with pytest.raises(ValueError, match="a version 1 slow_client history; this rig reads version 2"):
        load_history(path)


# --- acked means durable -------------------------------------------------------------


def durable_clean() -> DurabilityHistory:
    """3 kills with envelopes in flight; the backend remembered every ack; all 900 stored once."""
    kills = [
        {"at_ns": 1, "acked_before": 200, "sent_before": 260, "welcome_acked": 230},
        {"at_ns": 2, "acked_before": 500, "sent_before": 540, "welcome_acked": 500},
        {"at_ns": 3, "acked_before": 800, "sent_before": 850, "welcome_acked": 820},
    ]
    return DurabilityHistory(
        name="acked_durable", run_id="durable-x", seed=7, window=100, kills=kills, sent=900, final_acked=900,
        stored=list(range(1, 901)),
    )  # fmt: skip


def test_a_clean_durability_history_passes():
    row = judge_durability(durable_clean())
    assert row["status"] == "passed", row["findings"]
    assert row["acked_lost"] == 0 and [k["in_flight"] for k in row["kills"]] == [60, 40, 50]


def test_an_ack_before_commit_loses_acked_seqs_and_is_named():
    """The planted defect's signature: acked seqs missing after the restart, and a welcome below the ack."""
    h = durable_clean()
    h.stored = [s for s in h.stored if not 491 <= s <= 500]  # acked, in the commit window, gone
    h.kills[1]["welcome_acked"] = 490
    h.final_acked = 900
    row = judge_durability(h)
    messages = [f["message"] for f in row["findings"]]
    assert row["status"] == "failed" and row["acked_lost"] == 10
    assert any(m.startswith("ACKED BUT LOST at kill 2: 10 seq(s)") and "491" in m for m in messages)
    assert any("welcome said acked_seq 490" in m and "acked seq 500" in m for m in messages)


def test_a_loss_is_counted_once_at_the_first_kill_that_covers_it():
    h = durable_clean()
    h.stored = [s for s in h.stored if s != 150]
    row = judge_durability(h)
    assert row["acked_lost"] == 1 and [k["acked_lost"] for k in row["kills"]] == [1, 0, 0]


def test_kills_that_land_with_nothing_in_flight_test_nothing():
    h = durable_clean()
    for k in h.kills:
        k["sent_before"] = k["acked_before"]
    assert any("durability was not tested" in f["message"] for f in judge_durability(h)["findings"])


def test_stored_twice_unexpected_and_unacked_at_the_end_fail():
    h = durable_clean()
    h.stored = [*h.stored, 42, 950]
    h.final_acked = 880
    h.settle_error = "not every envelope was acked within 30s"
    found = " ".join(f["message"] for f in judge_durability(h)["findings"])
    assert "STORED TWICE: 1 seq(s): 42" in found and "never sent: 950" in found
    assert "only seq 880 of 900 sent was acked in the end (not every envelope" in found


def test_acked_at_the_end_but_not_stored_fails_without_any_kill():
    h = durable_clean()
    h.stored = [s for s in h.stored if s != 870]
    assert any(
        f["message"].startswith("ACKED BUT LOST: 1 seq(s) acked at the end") for f in judge_durability(h)["findings"]
    )


def test_a_durability_history_round_trips_and_rejudges(tmp_path):
    h = durable_clean()
    again = load_history(h.save(history_path(tmp_path, "fault_tolerance", h.name)))
    assert judge_history(again, {}, "fault_tolerance") == judge_durability(h)


def test_an_acked_seq_missing_from_the_store_right_after_its_ack_fails():
    h = durable_clean()
    h.read_after_ack = [[100, 100], [180, 180], [420, 0], [610, 611]]
    row = judge_durability(h)
    assert row["acked_not_stored_reads"] == 2 and row["reads_after_ack"] == 4
    assert any(f["message"].startswith("ACKED BUT NOT STORED: 2 of 4 reads") for f in row["findings"])


# --- resume is honest ------------------------------------------------------------------


def _resume(received: list[int], resumed: bool | None, hole: str = "restart") -> ResumeHistory:
    """Run of 1..500 (every 10th critical), resume after 200, 400 sent before the resume, live from 401."""
    frames = [
        (s, {"run_id": "resume-x", "seq": s, "type": "alert" if s % 10 == 0 else "market_data"}) for s in received
    ]
    return ResumeHistory(
        name=f"resume_after_{hole}", hole=hole, run_id="resume-x", resume_after=200, last_before_resume=400,
        live_from=401, final_seq=500, critical_every=10, resumed=resumed, client=ClientLog.of(frames, 1, [], []),
        stored=list(range(10, 501, 10)),
    )  # fmt: skip


HONEST = [s for s in range(201, 501) if s % 10 == 0 or s >= 401]  # stored ones replayed, ephemeral gone, live all


def test_an_honest_incomplete_resume_passes():
    row = judge_resume(_resume(HONEST, resumed=False))
    assert row["status"] == "passed", row["findings"]
    assert row["missing_declared_incomplete"] == 180 and row["lost"] == 0


def test_a_complete_resume_passes_and_says_no_hole_was_made():
    row = judge_resume(_resume(list(range(201, 501)), resumed=True))
    assert row["status"] == "passed" and any("no hole" in f["message"] for f in row["findings"])


def test_a_resume_that_claims_complete_across_a_hole_lied():
    row = judge_resume(_resume(HONEST, resumed=True))
    assert row["status"] == "failed"
    assert any(
        f["message"].startswith("RESUME LIED after the restart") and "180 seq(s)" in f["message"]
        for f in row["findings"]
    )


def test_stored_critical_not_replayed_after_a_restart_fails_but_not_after_an_overflow():
    received = [s for s in HONEST if s != 250]
    assert any("stored critical seq(s)" in f["message"] for f in judge_resume(_resume(received, False))["findings"])
    assert judge_resume(_resume(received, False, hole="overflow"))["status"] == "passed"


def test_live_loss_duplicates_and_reorders_after_a_resume_fail():
    received = [s for s in HONEST if s != 450]
    received.insert(received.index(460), 460)
    received[-2], received[-1] = received[-1], received[-2]
    found = " ".join(f["message"] for f in judge_resume(_resume(received, False))["findings"])
    assert "LOST after the resume: 1 live seq(s) never arrived: 450" in found
    assert "DUPLICATED on resume: seqs 460" in found and "REORDERED on resume" in found


def test_a_resume_without_a_snapshot_fails():
    assert judge_resume(_resume(HONEST, resumed=None))["status"] == "failed"


def test_a_resume_history_round_trips(tmp_path):
    h = _resume(HONEST, resumed=True)
    again = load_history(h.save(history_path(tmp_path, "fault_tolerance", h.name)))
    assert judge_history(again, {}, "fault_tolerance") == judge_resume(h)


# --- a cut link is noticed ----------------------------------------------------------------

PING = {"bot_ping_interval_s": 1, "bot_ping_timeout_s": 2, "backend_ping_interval_s": 1, "backend_ping_timeout_s": 2}


def _cut(bot_dead_s: float | None, backend_dead_s: float | None, state: str = "reconnecting") -> ScenarioHistory:
    """A partition from 100 s to 108 s, both ends sampled every 100 ms; bound 1 + 2 + 2 = 5 s."""
    h = clean()
    h.promises, h.measured = ["notices_cut"], dict(PING)
    h.healed_ns = INJECT + 8 * S
    for i in range(-5, 100):
        t = INJECT + i * S // 10
        after = (t - INJECT) / S
        bot = state if bot_dead_s is not None and bot_dead_s <= after < 8 else "connected"
        backend = not (backend_dead_s is not None and backend_dead_s <= after < 8)
        h.link.append([t, bot, backend])
    return h


def test_both_ends_noticing_within_their_bound_pass_and_are_timed():
    r = judge_scenario(_cut(4.4, 4.6), LIMITS)
    assert r.passed, r.findings
    assert (r.extra["bot_noticed_cut_s"], r.extra["backend_noticed_cut_s"], r.extra["bot_notice_bound_s"]) == (
        4.4,
        4.6,
        5,
    )
    assert r.extra["bot_link_back_s"] == 0.0


def test_an_end_that_never_notices_the_cut_is_named():
    found = [f.message for f in judge_scenario(_cut(None, 4.5), LIMITS).findings if f.severity == "error"]
    assert any(m.startswith("CUT NOT NOTICED: the bot still held the link 8.0s after the cut") for m in found), found
    found = [f.message for f in judge_scenario(_cut(4.5, None), LIMITS).findings if f.severity == "error"]
    assert any(m.startswith("CUT NOT NOTICED: the backend") for m in found), found


def test_an_end_that_notices_late_fails_and_open_circuit_counts_as_noticed():
    found = [f.message for f in judge_scenario(_cut(4.4, 6.5), LIMITS).findings if f.severity == "error"]
    assert found == [
        "the backend still held the link 6.4s after the cut > 5s (ping interval + ping timeout + close allowance)"
    ]
    assert judge_scenario(_cut(3.9, 4.0, state="open_circuit"), LIMITS).passed


def test_a_bot_without_a_link_state_is_a_finding():
    h = _cut(4.0, 4.0)
    for x in h.link:
        x[1] = ""
    assert any("has no link.state" in f.message for f in judge_scenario(h, LIMITS).findings)


# --- a restarted publisher never reuses a run id with colliding seqs ------------------


def _restarted(new_run: str, new_last: int) -> ScenarioHistory:
    h = clean()
    h.name, h.promises = "bot_crash", ["fresh_run_after_restart"]
    h.stats["before"] = _stats(20, 120, 6, started_at="2026-12-05T05:00:00Z", reconnects=0)
    h.new_run_id = new_run
    after = _stats(new_last, 10, 1, run=new_run, started_at="2026-12-05T05:10:00Z")
    h.stats["after"] = h.stats["final"] = after
    return h


def test_a_restart_under_a_new_run_id_keeps_its_promise():
    r = judge_scenario(_restarted("run-b", 5), LIMITS)
    assert not [f for f in r.findings if "RUN ID" in f.message or "not restarted" in f.message]
    assert r.extra["bot_restarted"] is True


def test_a_restart_that_reuses_the_run_id_from_seq_1_is_loss():
    found = [f.message for f in judge_scenario(_restarted("run-a", 5), LIMITS).findings]
    assert any(
        m.startswith("RUN ID REUSED: the restarted bot publishes run run-a again, its last seq 5") for m in found
    )


def test_a_restart_that_keeps_its_run_id_and_numbers_on_is_allowed():
    found = [f.message for f in judge_scenario(_restarted("run-a", 80), LIMITS).findings]
    assert not any("RUN ID REUSED" in m for m in found)


def test_a_bot_that_was_not_restarted_tested_nothing():
    h = _restarted("run-b", 5)
    h.stats["after"]["started_at"] = h.stats["before"]["started_at"]
    assert any("was not restarted" in f.message for f in judge_scenario(h, LIMITS).findings)
    h.stats["before"].pop("started_at"), h.stats["after"].pop("started_at")
    h.stats["before"]["uptime_s"], h.stats["after"]["uptime_s"] = 300.0, 4.0
    assert judge_scenario(h, LIMITS).extra["bot_restarted"] is True


def test_a_notice_is_judged_on_what_the_samples_prove():
    """First read dead at 5.1 s, but the last read that saw it alive started at 5.0 s: it may
    have died within its 5 s bound, so no finding; read alive at 5.3 s it could not have."""
    assert judge_scenario(_cut(5.05, 4.0), LIMITS).passed
    h = _cut(5.35, 4.0)
    assert any("the bot still held the link 5.3s" in f.message for f in judge_scenario(h, LIMITS).findings)
