"""The performance stage's judges on recorded runs: acknowledged rates, the saturation search
judged from its recorded steps, the bot's hops; clean histories pass, each defect is named."""

from __future__ import annotations

import pytest
from _load_runs import RIG, THRESHOLDS, lagging, part, run

from wsrig.hdr import LatencyHistogram
from wsrig.judges import JUDGES, judge_probe
from wsrig.judges.performance import step_breaks
from wsrig.scenario_history import ProbeHistory, history_path, load_history
from wsrig.scenario_judge import judge_history

LIMITS = THRESHOLDS["performance"]
SLOW = [2.0] * 90 + [500.0] * 10  # P99 500 ms: past any step's bound


def _closed_loop(count: int, seconds: float = 1.0, **publisher) -> dict:
    """A closed-loop run without subscribers: ``count`` envelopes, all acked ``seconds`` after the first."""
    ns = int(seconds * 1e9)
    return run(phases=((float(count), 1.0),), publisher={"all_acked_ns": 1_700_000_000 * 10**9 + ns, **publisher})


def _step(rate: float, *parts: dict) -> dict:
    return run(*(parts or (part(0, 25), part(1, 25))), phases=((rate, 5.0),))


def _steps(prefix: str, rates: list[float], broke: dict | None = None) -> dict[str, dict]:
    """Steps at ``rates`` that held, then ``broke`` (a step past the saturation point) if given."""
    steps = {f"{prefix}_{r:g}": _step(r) for r in rates}
    if broke is not None:
        rate = 2 * rates[-1] if rates else 100.0
        steps[f"{prefix}_{rate:g}"] = broke
    return steps


def _broken(rate: float, healthy: bool = True) -> dict:
    second = part(1, 25, latencies_ms=SLOW) if healthy else lagging(1, 25, latencies_ms=SLOW)
    return _step(rate, part(0, 25, latencies_ms=SLOW), second)


def clean() -> dict[str, dict]:
    both = {**_steps("saturation", [100, 200, 400]), **_steps("reference_saturation", [100, 200, 400])}
    both["saturation_800"] = both["reference_saturation_800"] = _broken(800)
    hop = LatencyHistogram()
    hop.record_ms(4.0)
    return {
        "ingest": {"runs": {"ingest": _closed_loop(20_000, 10.0)}},
        "durable": {"runs": {"durable": _closed_loop(5000, 5.0)}},
        "saturation": {"runs": both},
        "bot_latency": {
            "end_to_end": hop.encode(),
            "bot_to_backend": hop.encode(),
            "backend_to_client": hop.encode(),
            "envelopes": 300,
            "critical_with_receive_time": 12,
            "negative_hops": 0,
        },
    }


def _row(name: str, **changed) -> dict:
    measured = {**clean()[name], **changed}
    return judge_probe(ProbeHistory(name=name, stage="performance", measured=measured), LIMITS, RIG)


def _errors(row: dict) -> list[str]:
    return [f["message"] for f in row["findings"] if f["severity"] == "error"]


def test_every_scenario_has_a_judge_and_a_clean_history_passes():
    assert set(JUDGES["performance"]) == set(clean())
    for name in clean():
        row = _row(name)
        assert row["status"] == "passed", (name, row["findings"])
        assert row["checks"] and all(c["passed"] for c in row["checks"]), (name, row["checks"])


def test_the_saturation_row_shows_the_search_and_each_step():
    row = _row("saturation")
    assert row["best_deliveries_per_s"] == 20_000.0 and row["lower_bound"] is False
    assert row["saturation"]["broke_at_rate"] == 800 and row["saturation"]["reason"].startswith("broke at 800 msg/s")
    assert row["ratio_to_reference"]["saturation"] == 1.0 and row["ratio_to_reference"]["verdict"] == "passed"
    steps = {r["name"]: r for r in row["runs"]}
    assert list(steps) == [*(f"saturation_{r}" for r in (100, 200, 400, 800)), *(f"reference_saturation_{r}" for r in (100, 200, 400, 800))]  # fmt: skip
    assert all(r["role"] == "step" and r["status"] == "passed" for r in steps.values())
    assert (
        steps["saturation_800"]["step_problem"].startswith("P99 500.")
        and steps["saturation_400"]["step_problem"] is None
    )


@pytest.mark.parametrize(
    ("name", "changed", "finding"),
    [
        ("ingest", {"runs": {"ingest": _closed_loop(20_000, 40.0)}}, "ingest acked msg/s = 500.0/s breaks the threshold >= 1000/s"),
        ("ingest", {"runs": {"ingest": _closed_loop(20_000, 10.0, acked_seq=15_000)}}, "only 15000 of 20000 acknowledged"),
        ("durable", {"runs": {"durable": _closed_loop(5000, 5.0, errors=3, first_error="bad seq")}}, "3 error frames, first: bad seq"),
        (
            "saturation",
            {"runs": {**_steps("saturation", [100], _broken(200)), **_steps("reference_saturation", [100, 200, 400], _broken(800))}},
            "saturation: best deliveries/s with P99 under threshold = 5000.0/s breaks the threshold >= 10000/s",
        ),
        (
            "saturation",
            {"runs": {**_steps("saturation", [100, 200], _broken(400)), **_steps("reference_saturation", [100, 200, 400, 800], _broken(1600))}},
            "saturation / reference saturation = 0.25x breaks the threshold >= 0.5x",
        ),
        ("bot_latency", {"envelopes": 0}, "no envelope of the bot's run arrived"),
        ("bot_latency", {"critical_with_receive_time": 0}, "no critical envelope had a backend receive time"),
        ("bot_latency", {"negative_hops": 2}, "2 hops had negative duration"),
    ],
)  # fmt: skip
def test_each_defect_is_a_named_finding(name, changed, finding):
    row = _row(name, **changed)
    assert row["status"] == "failed" and finding in _errors(row), row["findings"]


def test_the_bot_latency_bound():
    slow = LatencyHistogram()
    slow.record_ms(250.0)
    row = _row("bot_latency", end_to_end=slow.encode())
    assert row["status"] == "failed" and any(e.startswith("bot end-to-end P99 = 250.") for e in _errors(row))


def test_a_floor_only_a_void_step_kept_out_of_reach_is_invalid():
    """The system's search ended on the rig below the floor: a lower bound, judged neither way."""
    runs = {**_steps("saturation", [100], _broken(200, healthy=False)), **_steps("reference_saturation", [100, 200, 400], _broken(800))}  # fmt: skip
    row = _row("saturation", runs=runs)
    assert row["status"] == "invalid" and not _errors(row)
    assert row["invalid_reasons"][0].startswith("saturation: broke at 200 msg/s: run invalid: rig event-loop lag")
    assert "in subscriber process 1" in row["invalid_reasons"][0] and row["lower_bound"] is True
    void = next(r for r in row["runs"] if r["name"] == "saturation_200")
    assert void["status"] == "invalid" and void["role"] == "step"


def test_a_reference_search_that_ended_on_the_rig_judges_the_ratio_only_where_its_bound_decides():
    """The reference's breaking step was void: its best is a lower bound, so the ratio an upper bound."""
    runs = {**_steps("saturation", [100, 200, 400], _broken(800)), **_steps("reference_saturation", [100], _broken(200, healthy=False))}  # fmt: skip
    row = _row("saturation", runs=runs)
    assert row["status"] == "passed", row["findings"]  # ratio <= 4.0 met: undecided, not judged
    ratio = next(c for c in row["checks"] if c["name"].startswith("saturation / reference saturation"))
    assert ratio["name"].endswith("(not judged)") and ratio["threshold"] is None
    assert any(f["message"].startswith("ratio to reference not judged: reference saturation") for f in row["findings"])
    runs = {**_steps("saturation", [100, 200], _broken(400)), **_steps("reference_saturation", [100, 200, 400, 800], _broken(1600, healthy=False))}  # fmt: skip
    row = _row("saturation", runs=runs)  # ratio <= 0.25 missed: failed
    assert row[
        "status"
    ] == "failed" and "saturation / reference saturation = 0.25x breaks the threshold >= 0.5x" in _errors(row)


def test_the_probe_stops_stepping_where_the_judge_reads_a_break():
    assert not step_breaks(_step(100), LIMITS, RIG)
    assert step_breaks(_broken(800), LIMITS, RIG)
    assert step_breaks(_step(100, part(0, 25, received=10), part(1, 25)), LIMITS, RIG)  # loss breaks a step
    assert step_breaks(_broken(800, healthy=False), LIMITS, RIG)  # a void step ends the search too


def test_a_performance_history_round_trips_and_is_judged_again_the_same(tmp_path):
    thresholds = {"performance": LIMITS, "rig_health": THRESHOLDS["rig_health"]}
    for name, measured in clean().items():
        h = ProbeHistory(name=name, stage="performance", measured=measured)
        again = load_history(h.save(history_path(tmp_path, "performance", name)))
        assert judge_history(again, thresholds, "performance") == judge_probe(h, LIMITS, RIG), name


def test_a_recorded_stage_is_judged_again_to_the_same_verdict(tmp_path, monkeypatch):
    """record_load keeps the history, the row and its steps' rows; wsrig judge reads them back
    to the same rows and verdict. A void reference step's row is invalid, yet the stage passes:
    a measurement run's row says whether it measured, the scenario it serves decides."""
    import json

    from _load_runs import result

    from wsrig.load.report import record_load
    from wsrig.record import StageRecord
    from wsrig.rejudge import rejudge

    def step(rate: float, slow: bool = False, healthy: bool = True) -> object:
        lat = SLOW if slow else None
        second = part(1, 25, latencies_ms=lat) if healthy else lagging(1, 25, latencies_ms=lat)
        return result(part(0, 25, latencies_ms=lat), second, phases=((rate, 5.0),))

    monkeypatch.setenv("RIG__RESULTS_DIR", str(tmp_path))
    runs = {f"saturation_{r}": step(r) for r in (100, 200, 400)} | {"saturation_800": step(800, slow=True)}
    runs |= {"reference_saturation_100": step(100), "reference_saturation_200": step(200, True, healthy=False)}
    record = StageRecord("performance")
    record_load(record, LIMITS, RIG, "saturation", runs)  # type: ignore[arg-type]
    rows = {r["name"]: r for r in record.scenarios}
    assert rows["saturation"]["status"] == "passed" and rows["reference_saturation_200"]["status"] == "invalid"
    assert record.metrics["saturation"]["best_deliveries_per_s"] == 20_000.0
    assert (tmp_path / "performance.saturation_800_latency.csv").is_file()
    stage = {
        "name": "performance",
        "status": "passed",
        "reason": "",
        "tests": {"passed": 1, "failed": 0, "skipped": 0, "errors": 0},
        **{k: v for k, v in record.serialize().items() if k in ("metrics", "findings", "scenarios")},
    }
    thresholds = {"performance": LIMITS, "rig_health": THRESHOLDS["rig_health"]}
    summary = {"verdict": "pass", "profile": "quick", "thresholds": thresholds, "stages": [stage]}
    (tmp_path / "test_summary.json").write_text(json.dumps(summary))
    out = rejudge(tmp_path)
    assert out.summary["verdict"] == "pass" and not out.changes and not out.findings_differ
    again = {r["name"]: r for r in out.summary["stages"][0]["scenarios"]}
    assert json.loads(json.dumps(again)) == json.loads(json.dumps(rows))
