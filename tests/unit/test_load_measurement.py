"""Load measurement logic: schedules, HDR merging, coordinated omission, saturation."""

from __future__ import annotations

import pytest

from wsrig.hdr import LatencyHistogram
from wsrig.load.merge import merge
from wsrig.load.recorder import HopRecorder, SeqTracker, StreamRecorder, per_second_rows
from wsrig.load.saturation import Step, search
from wsrig.load.schedule import GeneratorHealth, Phase, Schedule

MS = 1_000_000
S = 1_000_000_000


def test_constant_schedule_spaces_messages_evenly():
    offsets = list(Schedule.constant(1000, 2).offsets_ns())
    assert len(offsets) == 2000
    assert offsets[0] == 0 and offsets[1] == MS and offsets[-1] == 1999 * MS


def test_burst_schedule_has_ten_times_the_rate_in_its_middle_phase():
    sched = Schedule.burst(100, 10, before_s=1, burst_s=1, after_s=2)
    offsets = list(sched.offsets_ns())
    assert sched.count == len(offsets) == 100 + 1000 + 200
    in_burst = [o for o in offsets if S <= o < 2 * S]
    assert len(in_burst) == 1000
    assert sched.phase_bounds_s() == [(0.0, 1.0, 100), (1.0, 2.0, 1000), (2.0, 4.0, 100)]


@pytest.mark.parametrize("rate,duration", [(0, 1), (10, 0), (-1, 5)])
def test_phase_rejects_nonsense(rate, duration):
    with pytest.raises(ValueError):
        Phase(rate, duration)


def test_generator_that_fell_behind_or_skipped_is_invalid():
    ok = GeneratorHealth(planned=100, sent=100, lag_p99_ms=1.0, lag_max_ms=3.0)
    assert ok.problems(max_lag_p99_ms=10) == []
    late = GeneratorHealth(planned=100, sent=100, lag_p99_ms=25.0, lag_max_ms=40.0)
    assert "fell behind" in late.problems(10)[0]
    skipped = GeneratorHealth(planned=100, sent=90, lag_p99_ms=1.0, lag_max_ms=3.0)
    assert skipped.skipped == 10 and "skipped 10 of 100" in skipped.problems(10)[0]


def test_hdr_merge_is_lossless_across_encoding():
    a, b = LatencyHistogram(), LatencyHistogram()
    for v in range(1, 1001):
        a.record_ms(v / 10)
    for v in range(1001, 2001):
        b.record_ms(v / 10)
    whole = LatencyHistogram()
    for v in range(1, 2001):
        whole.record_ms(v / 10)
    merged = LatencyHistogram.decode(a.encode()).merge(LatencyHistogram.decode(b.encode()))
    assert merged.summary() == whole.summary()
    assert merged.count == 2000
    assert merged.summary().p50 == pytest.approx(100.0, rel=0.01)
    assert merged.summary().max == pytest.approx(200.0, rel=0.01)


def _stalled_run(stall_from_s: float, stall_s: float) -> StreamRecorder:
    """1,000 msg/s for 10 s, 1 ms delivery, and a server that stalls for ``stall_s``.

    The generator's send blocks during the stall (it is coordinated with the server,
    as a closed-loop client is): messages due in the stall leave when it ends.
    """
    rec = StreamRecorder()
    stall_start, stall_end = int(stall_from_s * S), int((stall_from_s + stall_s) * S)
    for offset in Schedule.constant(1000, 10).offsets_ns():
        intended = offset
        sent = intended if not stall_start < intended < stall_end else stall_end
        received = sent + MS if not stall_start <= sent < stall_end else stall_end + MS
        rec.record(intended, sent, received)
    return rec


def test_coordinated_omission_stall_shows_from_intended_time_and_hides_in_uncorrected():
    rec = _stalled_run(stall_from_s=5, stall_s=1)
    corrected, uncorrected = rec.corrected.summary(), rec.uncorrected.summary()
    assert corrected.count == uncorrected.count == 10_000
    # ~10% of the messages were due during the 1 s stall: p99 and max show it.
    assert corrected.p99 > 800 and corrected.max >= 990
    assert corrected.p90 < 5  # the other 90% were fast
    # From the actual send time only the one message in flight at the stall looks slow.
    assert uncorrected.p99 < 5 and uncorrected.p999 < 5
    assert uncorrected.max >= 990


def test_no_stall_means_both_series_agree():
    rec = _stalled_run(stall_from_s=5, stall_s=0)
    assert rec.corrected.summary() == rec.uncorrected.summary()
    assert rec.corrected.summary().p99 < 2


def test_per_second_rows_locate_the_stall_in_time():
    rec = _stalled_run(stall_from_s=5, stall_s=1)
    rows = per_second_rows(merge([{**_part(), **rec.encode()}]).per_second)
    assert [r[0] for r in rows] == list(range(10))
    worst = max(rows, key=lambda r: r[3])
    assert worst[0] == 5 and worst[3] > 900
    assert all(r[3] < 5 for r in rows if r[0] != 5)


def _part() -> dict:
    """A subscriber process's part with nothing recorded (``wsrig.load.merge``)."""
    empty = LatencyHistogram().encode()
    return {"name": "subscriber process 0", "connect_hist": empty, "loop_lag_hist": empty, "received": 0}


def test_seq_tracker_tells_a_late_seq_from_a_duplicate():
    """A seq that fills a hole arrived out of order; one seen before is a duplicate."""
    t = SeqTracker()
    for seq in (1, 2, 5, 4, 6, 6, 4, 1, 9):
        t.see(seq)
    assert (t.received, t.last) == (9, 9)
    assert (t.reordered, t.duplicated) == (1, 3)  # 4 late; then 6, 4 and 1 again
    assert t.missing == 3  # 3, 7 and 8 never came


def test_hop_recorder_splits_latency_and_rejects_impossible_stamps():
    hops = HopRecorder()
    hops.record_hops(produced_ns=0, backend_ns=2 * MS, client_ns=5 * MS)
    hops.record_hops(produced_ns=10 * MS, backend_ns=9 * MS, client_ns=12 * MS)  # backend before bot
    assert hops.negative_hops == 1
    assert hops.bot_to_backend.summary().p50 == pytest.approx(2.0, rel=0.01)
    assert hops.backend_to_client.summary().p50 == pytest.approx(3.0, rel=0.01)


def _fake_system(capacity_per_s: float):
    def measure(rate: float) -> Step:
        deliveries = rate * 100
        p99 = 2.0 if deliveries <= capacity_per_s else 500.0
        return Step(rate=rate, deliveries_per_s=min(deliveries, capacity_per_s), p99_ms=p99, lost=0)

    return measure


def test_saturation_search_keeps_the_last_good_step_and_names_the_break():
    result = search([100, 200, 400, 800], _fake_system(capacity_per_s=50_000), p99_limit_ms=100)
    assert result.best is not None and result.best.rate == 400
    assert result.best_deliveries_per_s == 40_000
    assert result.broke_at is not None and result.broke_at.rate == 800
    assert "P99 500.0 ms" in result.reason


def test_saturation_step_with_loss_or_invalid_generator_is_not_good():
    assert "lost" in Step(100, 1000, 1.0, lost=3).problem(100)
    assert "invalid" in Step(100, 1000, 1.0, lost=0, valid=False, note="lag").problem(100)
    result = search([10], lambda r: Step(r, 0, 1.0, lost=1), p99_limit_ms=100)
    assert result.best is None and result.best_deliveries_per_s == 0


def test_saturation_search_that_never_breaks_says_so():
    result = search([1, 2], _fake_system(capacity_per_s=1e9), p99_limit_ms=100)
    assert result.broke_at is None and result.best is not None and result.best.rate == 2
    assert "did not break" in result.reason


def test_latency_recovery_after_a_burst():
    from wsrig.load.recorder import latency_recovery_s

    # t, delivered, p50, p99, max: the burst ends at t=10; P99 is back under 100 ms at t=12.
    rows = [[t, 100, 1.0, p99, p99] for t, p99 in [(8, 5), (9, 300), (10, 400), (11, 150), (12, 20), (13, 10)]]
    assert latency_recovery_s(rows, since_s=10, limit_ms=100) == 2
    assert latency_recovery_s(rows[:1] + [[9, 100, 1.0, 5, 5], [10, 100, 1.0, 5, 5]], 10, 100) == 0.0
    # Never back under the limit (a backend that stays slow after the burst): None.
    assert latency_recovery_s(rows[:4], since_s=10, limit_ms=100) is None


def test_load_subscribers_take_only_the_load_publishers_stream() -> None:
    from dashboard_backend.fanout import Subscription
    from wscontract import validate_control

    from wsrig.load.subscriber import subscribe_frame

    sub = Subscription.from_frame(validate_control(subscribe_frame("LOADUSD")))
    assert sub.matches("market_data", "LOADUSD")
    for msg_type, symbol in (("portfolio", None), ("heartbeat", None), ("market_data", "BTCUSD"), ("trade", "LOADUSD")):
        assert not sub.matches(msg_type, symbol), (msg_type, symbol)
    # A plan of another message type is followed by its subscribers' filter.
    assert Subscription.from_frame(validate_control(subscribe_frame("LOADUSD", "trade"))).matches("trade", "LOADUSD")


class _BusyThenQuietStack:
    """Stands in for DockerStack.stats: the backend's CPU over successive samples."""

    def __init__(self, cpu: list[float]) -> None:
        self.cpu = list(cpu)
        self.samples = 0

    def stats(self, service: str) -> dict[str, float]:
        self.samples += 1
        return {"cpu_percent": self.cpu.pop(0) if len(self.cpu) > 1 else self.cpu[0]}


def _cooldown_plan(quiet: float | None):
    from wsrig.load.runner import LoadPlan

    return LoadPlan("x", Schedule.constant(1, 1), cooldown_s=0.0, quiet_cpu_percent=quiet)


def test_scenario_waits_until_the_backend_is_quiet() -> None:
    from wsrig.load.runner import cool_down

    stack = _BusyThenQuietStack([95.0, 60.0, 12.0, 80.0])
    waited, cpu = cool_down(_cooldown_plan(30.0), stack, "dashboard-backend")  # type: ignore[arg-type]
    assert cpu == 12.0 and stack.samples == 3  # stopped at the first quiet sample


def test_a_backend_that_never_quiets_down_does_not_hold_the_stage_forever(monkeypatch) -> None:
    from wsrig.load import runner

    monkeypatch.setattr(runner, "QUIET_TIMEOUT_S", 0.05)
    stack = _BusyThenQuietStack([99.0])
    waited, cpu = runner.cool_down(_cooldown_plan(30.0), stack, "dashboard-backend")  # type: ignore[arg-type]
    assert cpu == 99.0 and waited < 5  # the row shows the CPU it started with


def test_counting_by_bucket_gives_the_same_histogram_as_recording_every_value() -> None:
    import random

    from wsrig.load.recorder import bucketed

    rng = random.Random(7)
    values_us = [int(rng.lognormvariate(9, 1.5)) for _ in range(20_000)] + [0, 1, 2047, 2048, 2049, 4095, 10**9]
    rec = StreamRecorder()
    direct = LatencyHistogram()
    for v in values_us:
        rec.record(0, 0, v * 1000)
        direct.record_ns(v * 1000)
    got = rec.corrected
    assert got.count == direct.count == len(values_us)
    for pct in (0, 1, 10, 50, 90, 99, 99.9, 99.99, 100):
        assert got.percentile_ms(pct) == direct.percentile_ms(pct), pct
    assert got.max_ms() == direct.max_ms()
    assert len(set(bucketed(values_us))) < len(values_us) / 2  # fewer keys to count: what makes flush cheap


# --- saturation.judge: what the steps prove ------------------------------------------------


def _found(best: float | None, broke: float | None, broke_valid: bool = True):
    from wsrig.load.saturation import SaturationResult

    steps = []
    b = Step(best, best * 50, 10.0, 0) if best is not None else None
    if b is not None:
        steps.append(b)
    k = Step(broke, broke * 50, 150.0, 0, valid=broke_valid, note="" if broke_valid else "rig lag") if broke else None
    if k is not None:
        steps.append(k)
    reason = "did not break" if k is None else f"broke at {broke:g} msg/s"
    return SaturationResult(tuple(steps), b, k, reason)


def test_judge_exact_searches_decide_floor_and_ratio():
    from wsrig.load.saturation import judge

    v = judge(_found(400, 800), _found(800, 1600), floor=10_000, ratio_min=0.5)
    assert (v.floor, v.ratio, v.ratio_value) == ("passed", "passed", 0.5)
    v = judge(_found(200, 400), _found(800, 1600), floor=10_000, ratio_min=0.5)
    assert (v.floor, v.ratio) == ("passed", "failed")  # a slow system: a quarter of the reference
    v = judge(_found(100, 200), _found(800, 1600), floor=10_000, ratio_min=0.5)
    assert v.floor == "failed"


def test_judge_system_ended_on_rig_is_a_lower_bound():
    from wsrig.load.saturation import judge

    # The floor met below the void step stands; a ratio met by the lower bound stands.
    v = judge(_found(800, 1600, broke_valid=False), _found(800, 1600), floor=10_000, ratio_min=0.5)
    assert (v.floor, v.ratio) == ("passed", "passed")
    # A floor the rig kept out of reach is undecided, never failed.
    v = judge(_found(100, 200, broke_valid=False), _found(800, 1600), floor=10_000, ratio_min=0.5)
    assert v.floor == "undecided" and v.ratio == "undecided" and v.reasons


def test_judge_reference_ended_on_rig_is_an_upper_bound_of_the_ratio():
    from wsrig.load.saturation import judge

    # The system broke for real at a quarter of what the reference held: failed, even
    # though the reference's own search ended on the rig (its true figure is higher still).
    v = judge(_found(200, 400), _found(800, 1600, broke_valid=False), floor=10_000, ratio_min=0.5)
    assert v.ratio == "failed"
    # Met by an upper bound: not decided.
    v = judge(_found(800, 1600), _found(800, 1600, broke_valid=False), floor=10_000, ratio_min=0.5)
    assert v.ratio == "undecided" and "lower bound" in v.reasons[0]


def test_judge_both_on_rig_and_neither_broke():
    from wsrig.load.saturation import judge

    v = judge(_found(800, 1600, False), _found(800, 1600, False), floor=10_000, ratio_min=0.5)
    assert v.ratio == "undecided" and "both" in v.reasons[0]
    v = judge(_found(1600, None), _found(1600, None), floor=10_000, ratio_min=0.5)
    assert (v.floor, v.ratio, v.ratio_value) == ("passed", "passed", 1.0)
