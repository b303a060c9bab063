"""The load stage's judges on recorded runs: clean histories pass, each defect is named, a
rig that could not measure makes the row invalid; parts merge exactly; histories round-trip."""

from __future__ import annotations

import random

import pytest
from _load_runs import RIG, T0_S, THRESHOLDS, lagging, part, run

from wsrig.hdr import LatencyHistogram
from wsrig.judges import JUDGES, judge_probe
from wsrig.load.merge import merge
from wsrig.load.recorder import StreamRecorder
from wsrig.scenario_history import ProbeHistory, history_path, load_history
from wsrig.scenario_judge import judge_history

LIMITS = THRESHOLDS["load"]
SUSTAINED = ((200.0, 20.0),)
FANOUT = ((500.0, 10.0),)
CONNECTIONS = ((20.0, 3.0),)
BURST = ((100.0, 3.0), (1000.0, 3.0), (100.0, 10.0))


def _thousand() -> dict:
    return run(*(part(i, 250) for i in range(4)), phases=CONNECTIONS)


def _fanout(*parts: dict) -> dict:
    return run(*(parts or (part(0, 50), part(1, 50))), phases=FANOUT)


def clean() -> dict[str, dict]:
    """A clean history of every scenario: what each probe records, nothing wrong in it."""
    return {
        "sustained": {"runs": {"sustained": run(part(0), part(1), phases=SUSTAINED)}},
        "burst": {"runs": {"burst": run(part(0, latencies_ms=[5.0] * 160, duration_s=16), phases=BURST)}},
        "connections_1000": {
            "runs": {"connections_1000": _thousand()},
            "memory_idle_mb": 50.0,
            "memory_connected_mb": 70.0,
        },
        "fanout": {"runs": {"fanout": _fanout(), "fanout_reference": _fanout()}},
        "stability": {
            "runs": {"stability_round_1": _thousand(), "stability_round_2": _thousand()},
            "baseline_mb": 50.0,
            "after_mb": 70.0,
            "after_rounds_mb": [71.0, 72.0],
        },
    }


def _row(name: str, **changed) -> dict:
    measured = {**clean()[name], **changed}
    return judge_probe(ProbeHistory(name=name, stage="load", measured=measured), LIMITS, RIG)


def _errors(row: dict) -> str:
    return " | ".join(f["message"] for f in row["findings"] if f["severity"] == "error")


def test_every_scenario_has_a_judge_and_a_clean_history_passes():
    assert set(JUDGES["load"]) == set(clean())
    for name in clean():
        row = _row(name)
        assert row["status"] == "passed", (name, row["findings"])
        assert row["checks"] and all(c["passed"] for c in row["checks"]), (name, row["checks"])
        assert not [f for f in row["findings"] if f["severity"] != "info"], (name, row["findings"])


def test_the_clean_rows_show_the_figures_the_report_reads():
    fanout = _row("fanout")
    assert fanout["latency_ms"]["p99"] == pytest.approx(2.0, rel=0.01) and fanout["deliveries_per_s"] == 50_000.0
    assert fanout["ratio_to_reference"] == {"p99": 1.0, "judged": True, "not_judged_because": []}
    assert [r["name"] for r in fanout["runs"]] == ["fanout_reference"] and fanout["runs"][0]["role"] == "reference"
    assert fanout["rig_health"]["processes"][0]["name"] == "subscriber process 0"
    assert _row("burst")["recovery_s"] == 0.0 and _row("burst")["burst_rate"] == 1000.0
    assert _row("connections_1000")["memory_per_connection_kb"] == pytest.approx(20.5, abs=0.1)
    assert {c["name"] for c in _row("connections_1000")["checks"]} == {
        "clients connected",
        "connect P99",
        "backend memory per 1000 connections",
    }


@pytest.mark.parametrize(
    ("name", "changed", "finding"),
    [
        (
            "sustained",
            {"runs": {"sustained": run(part(0, latencies_ms=[2.0] * 90 + [250.0] * 10), phases=SUSTAINED)}},
            ("sustained P99 = 250.", "ms breaks the threshold < 100ms"),
        ),
        (
            "sustained",
            {"runs": {"sustained": run(part(0), part(1, received=19_990), phases=SUSTAINED)}},
            "10 of 40000 deliveries never arrived",
        ),
        ("sustained", {"runs": {"sustained": run(part(0, duplicated=3), phases=SUSTAINED)}}, "3 deliveries duplicated"),
        (
            "sustained",
            {"runs": {"sustained": run(part(0, reordered=2), phases=SUSTAINED)}},
            "2 deliveries out of seq order",
        ),
        (
            "sustained",
            {"runs": {"sustained": run(part(0, closed=(1013, 1013)), phases=SUSTAINED)}},
            "subscribers closed by the backend with codes [1013]",
        ),
        (
            "burst",
            {"runs": {"burst": run(part(0, latencies_ms=[5.0] * 60 + [400.0] * 70 + [5.0] * 30, duration_s=16), phases=BURST)}},
            "burst recovery = 7s breaks the threshold <= 5s",
        ),
        (
            "burst",
            {"runs": {"burst": run(part(0, latencies_ms=[5.0] * 60 + [400.0] * 100, duration_s=16), phases=BURST)}},
            "burst recovery = infs breaks the threshold <= 5s",
        ),
        (
            "connections_1000",
            {"runs": {"connections_1000": run(*(part(i, 240) for i in range(4)), phases=CONNECTIONS)}},
            "clients connected = 960 breaks the threshold >= 1000",
        ),
        (
            "connections_1000",
            {"runs": {"connections_1000": run(*(part(i, 250, connect_ms=(80.0,)) for i in range(4)), phases=CONNECTIONS)}},
            ("connect P99 = 80.", "ms breaks the threshold < 50ms"),
        ),
        ("connections_1000", {"memory_connected_mb": 130.0}, "backend memory per 1000 connections = 80.0MB breaks"),
        (
            "fanout",
            {"runs": {"fanout": _fanout(part(0, 50, latencies_ms=[30.0] * 100), part(1, 50, latencies_ms=[30.0] * 100)), "fanout_reference": _fanout(part(0, 50, latencies_ms=[5.0] * 100), part(1, 50, latencies_ms=[5.0] * 100))}},
            "fan-out P99 / reference P99 = 6.0x breaks the threshold <= 2x",
        ),
        (
            "fanout",
            {"runs": {"fanout": _fanout(part(0, 50), part(1, 50, received=10_000)), "fanout_reference": _fanout()}},
            "fan-out deliveries/s = 26000.0/s breaks the threshold >= 45000/s",
        ),
        ("stability", {"after_mb": 100.0}, "backend memory growth after load = 50.0MB breaks the threshold <= 40MB"),
        ("stability", {"after_rounds_mb": [71.0, 80.0]}, "backend memory growth on a repeated round = 9.0MB breaks"),
        (
            "stability",
            {"runs": {"stability_round_1": _thousand(), "stability_round_2": run(part(0, 250, received=10), phases=CONNECTIONS)}},
            "deliveries never arrived",
        ),
    ],
)  # fmt: skip
def test_each_defect_is_a_named_finding(name, changed, finding):
    row = _row(name, **changed)
    errors = [f["message"] for f in row["findings"] if f["severity"] == "error"]
    fragments = finding if isinstance(finding, tuple) else (finding,)
    assert row["status"] == "failed" and any(all(x in e for x in fragments) for e in errors), errors


def test_a_broken_threshold_names_its_check_and_evidence():
    slow = run(part(0, latencies_ms=[2.0] * 90 + [250.0] * 10), phases=SUSTAINED)
    [finding] = [f for f in _row("sustained", runs={"sustained": slow})["findings"] if f["severity"] == "error"]
    assert finding["check"] == "sustained P99"
    assert finding["evidence"] == {"value": pytest.approx(250, abs=1), "threshold": 100, "op": "<"}
    lost = _row("sustained", runs={"sustained": run(part(0, received=19_990), phases=SUSTAINED)})
    [finding] = [f for f in lost["findings"] if f.get("check") == "lost"]
    assert finding["evidence"] == {"lost": 10, "expected": 20_000, "delivered": 19_990}


def test_one_lagging_subscriber_process_makes_a_slow_row_invalid_naming_it():
    """Its latencies are partly its own: the breach is not the system's, nor is it a pass."""
    slow = [2.0] * 90 + [250.0] * 10
    row = _row(
        "sustained",
        runs={"sustained": run(part(0, latencies_ms=slow), lagging(1, latencies_ms=slow), phases=SUSTAINED)},
    )
    assert row["status"] == "invalid" and not _errors(row)
    p99, stall = row["invalid_reasons"]
    assert p99.startswith("rig event-loop lag P99 180.") and p99.endswith(" ms in subscriber process 1 > 10 ms")
    assert stall.startswith("rig event-loop lag max 54") and stall.endswith(" ms in subscriber process 1 > 50 ms")
    assert [c["passed"] for c in row["checks"]] == [False]  # the figure stays in the table, judged neither way


def test_a_lagging_process_does_not_excuse_lost_messages():
    row = _row("sustained", runs={"sustained": run(part(0, received=3000), lagging(1), phases=SUSTAINED)})
    assert row["status"] == "failed" and "deliveries never arrived" in _errors(row)


def test_an_unhealthy_reference_run_is_invalid_and_its_ratio_not_judged():
    """The reference is part of the instrument: its own lag voids its row and the ratio to it,
    never the system's row (whose own figures still decide)."""
    sut = _fanout(part(0, 50, latencies_ms=[30.0] * 100), part(1, 50, latencies_ms=[30.0] * 100))
    ref = _fanout(part(0, 50, latencies_ms=[5.0] * 100), lagging(1, 50, latencies_ms=[5.0] * 100))
    row = _row("fanout", runs={"fanout": sut, "fanout_reference": ref})
    [ref_row] = row["runs"]
    assert ref_row["status"] == "invalid" and "in subscriber process 1" in ref_row["invalid_reasons"][0]
    assert row["status"] == "passed", row["findings"]
    ratio = next(c for c in row["checks"] if c["name"].startswith("fan-out P99 / reference P99"))
    assert ratio["name"] == "fan-out P99 / reference P99 (not judged)" and ratio["threshold"] is None
    assert any(
        f["severity"] == "warning" and f["message"].startswith("ratio to reference not judged: reference run: rig")
        for f in row["findings"]
    )
    assert row["ratio_to_reference"]["judged"] is False


def test_a_clean_reference_vouches_for_a_lagging_rig():
    """The reference met the bound under the same plan, rig and cores: the system's breach is failed."""
    slow = [2.0] * 90 + [150.0] * 10
    sut = _fanout(part(0, 50, latencies_ms=slow), lagging(1, 50, latencies_ms=slow))
    row = _row("fanout", runs={"fanout": sut, "fanout_reference": _fanout()})
    assert row["status"] == "failed" and "fan-out P99 = 150." in _errors(row)


def test_memory_is_judged_whatever_the_rig_did():
    """A round whose rig ran late still loaded the backend: its lag is a note, never invalid."""
    slow_round = run(part(0, 250), lagging(1, 250), phases=CONNECTIONS)
    row = _row("stability", runs={"stability_round_1": slow_round, "stability_round_2": _thousand()}, after_mb=100.0)
    assert row["status"] == "failed"
    assert any(f["severity"] == "info" and "round 1: rig event-loop lag" in f["message"] for f in row["findings"])


def test_parts_merged_give_exactly_the_percentiles_of_one_histogram_fed_every_sample():
    """Per-process (later per-worker) histograms merged in the judge lose nothing."""
    rng = random.Random(11)
    samples = [(rng.randrange(0, 5), rng.lognormvariate(1.5, 1.2)) for _ in range(30_000)]
    whole, parts = StreamRecorder(), [StreamRecorder() for _ in range(3)]
    for i, (second, ms) in enumerate(samples):
        intended = (T0_S + second) * 10**9
        for rec in (whole, parts[i % 3]):
            rec.record(intended, intended, intended + int(ms * 1e6))
    empty = LatencyHistogram().encode()
    merged = merge(
        [{"name": f"p{i}", "connect_hist": empty, "loop_lag_hist": empty, "received": 1, **rec.encode()} for i, rec in enumerate(parts)]
    )  # fmt: skip
    one = LatencyHistogram.decode(whole.encode()["corrected"])
    assert merged.corrected.count == one.count == len(samples)
    for pct in (0, 1, 10, 50, 90, 99, 99.9, 99.99, 100):
        assert merged.corrected.percentile_ms(pct) == one.percentile_ms(pct), pct
    assert merged.corrected.summary() == one.summary()
    assert merged.uncorrected.summary() == whole.uncorrected.summary()
    alone = merge([{"name": "p", "connect_hist": empty, "loop_lag_hist": empty, "received": 0, **whole.encode()}])
    assert {s: h.summary() for s, h in merged.per_second.items()} == {
        s: h.summary() for s, h in alone.per_second.items()
    }
    assert (merged.received, merged.connected) == (3, 0)


def test_a_broken_subscriber_process_is_the_rigs_failure():
    row = _row("sustained", runs={"sustained": run(part(0), part(1, error="MemoryError: boom"), phases=SUSTAINED)})
    # its subscribers were sent to and got nothing: loss fails the row (failed beats invalid)
    assert row["status"] == "failed" and "subscriber process 1: MemoryError: boom" in row["rig_errors"]


def test_a_load_history_round_trips_and_is_judged_again_the_same(tmp_path):
    thresholds = {"load": LIMITS, "rig_health": THRESHOLDS["rig_health"]}
    for name, measured in clean().items():
        h = ProbeHistory(name=name, stage="load", measured=measured)
        again = load_history(h.save(history_path(tmp_path, "load", name)))
        assert judge_history(again, thresholds, "load") == judge_probe(h, LIMITS, RIG), name
