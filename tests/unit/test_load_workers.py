"""Distributed load (``--workers N``, issue 18): the pure parts and the judge on workers' parts.

Per-worker histograms merged give exactly one histogram's percentiles; one stalled
worker makes a slow row invalid naming its slot, a worker that never got ready makes
it invalid too; the service-create command follows from N and the start time (detached,
never restarted, labelled); leftovers are found by label; each slot's share adds up.
"""

from __future__ import annotations

import json
import random

import pytest
from _load_runs import RIG, T0_S, THRESHOLDS, lagging, part, result, run

from wsrig.hdr import LatencyHistogram
from wsrig.judges import judge_probe
from wsrig.load.merge import merge
from wsrig.load.recorder import StreamRecorder
from wsrig.load.swarm import task_states
from wsrig.load.worker import run_worker
from wsrig.load.workers import (
    WorkerPlan,
    leftover_containers,
    leftover_services,
    part_name,
    service_create_args,
    share,
)
from wsrig.scenario_history import ProbeHistory

LIMITS = THRESHOLDS["load"]
SUSTAINED = ((200.0, 20.0),)


def _worker(slot: int, p: dict) -> dict:
    """A part as a worker writes it: named by its slot (``wsrig.load.worker``)."""
    return {**p, "name": part_name(slot, p["name"])}


def _row(runs: dict) -> dict:
    return judge_probe(ProbeHistory(name="sustained", stage="load", measured={"runs": runs}), LIMITS, RIG)


# ---- the merge ---------------------------------------------------------------------------


def test_per_worker_parts_merged_give_exactly_one_histogram_fed_every_sample():
    """Three workers of two processes each, every sample recorded by one of the six and by
    one whole histogram: the merge of the workers' parts is the whole, percentile by
    percentile, per second and for connect times (averaging per-worker P99s is not)."""
    rng = random.Random(18)
    workers, procs = 3, 2
    whole = StreamRecorder()
    recs = {(w, p): StreamRecorder() for w in range(1, workers + 1) for p in range(procs)}
    connect_whole, connects = LatencyHistogram(), {key: LatencyHistogram() for key in recs}
    keys = list(recs)
    for i in range(40_000):
        second, ms = rng.randrange(0, 6), rng.lognormvariate(1.2 + (i % 3) * 0.4, 1.1)
        intended = (T0_S + second) * 10**9
        key = keys[rng.randrange(len(keys))]
        for rec in (whole, recs[key]):
            rec.record(intended, intended - 1000, intended + int(ms * 1e6))
        if i % 40 == 0:
            connect_ms = rng.uniform(1, 80)
            connect_whole.record_ms(connect_ms)
            connects[key].record_ms(connect_ms)
    empty = LatencyHistogram().encode()
    parts = [
        {
            "name": part_name(w, f"subscriber process {p}"),
            "connected": 10,
            "connect_hist": connects[(w, p)].encode(),
            "loop_lag_hist": empty,
            "received": 1,
            **rec.encode(),
        }
        for (w, p), rec in recs.items()
    ]
    rng.shuffle(parts)  # the order the workers' files were read in does not matter
    merged = merge(parts)
    one = LatencyHistogram.decode(whole.encode()["corrected"])
    assert merged.corrected.count == one.count == 40_000
    for pct in (0, 1, 25, 50, 90, 99, 99.9, 99.99, 100):
        assert merged.corrected.percentile_ms(pct) == one.percentile_ms(pct), pct
    assert merged.corrected.summary() == one.summary()
    assert merged.uncorrected.summary() == LatencyHistogram.decode(whole.encode()["uncorrected"]).summary()
    assert merged.connect.summary() == connect_whole.summary()
    alone = merge([{"name": "all", "connect_hist": empty, "loop_lag_hist": empty, "received": 0, **whole.encode()}])
    assert {s: h.summary() for s, h in merged.per_second.items()} == {
        s: h.summary() for s, h in alone.per_second.items()
    }
    assert (merged.connected, merged.received) == (60, 6)
    # what merging must not be replaced by: the mean of the workers' P99s differs here
    per_worker = [
        merge([p for p in parts if p["name"].startswith(f"worker {w} ")]).corrected.percentile_ms(99)
        for w in range(1, workers + 1)
    ]
    assert sum(per_worker) / workers != one.percentile_ms(99)


# ---- the judge on workers' parts ---------------------------------------------------------


def test_one_stalled_worker_makes_a_slow_row_invalid_naming_its_slot():
    slow = [2.0] * 90 + [250.0] * 10
    runs = {
        "sustained": run(
            _worker(1, part(0, latencies_ms=slow)),
            _worker(2, lagging(0, latencies_ms=slow)),
            _worker(3, part(0, latencies_ms=slow)),
            phases=SUSTAINED,
        )
    }
    row = _row(runs)
    assert row["status"] == "invalid", row["findings"]
    assert row["invalid_reasons"] and all("in worker 2 subscriber process 0 >" in r for r in row["invalid_reasons"])
    assert [p["name"] for p in row["rig_health"]["processes"][:3]] == [
        "worker 1 subscriber process 0",
        "worker 2 subscriber process 0",
        "worker 3 subscriber process 0",
    ]


def test_healthy_workers_pass_and_their_parts_add_up():
    row = _row({"sustained": run(*(_worker(s, part(0, 4)) for s in (1, 2, 3)), phases=SUSTAINED)})
    assert row["status"] == "passed", row["findings"]
    assert row["connected"] == 12 and row["delivered"] == row["expected_deliveries"] == 4000 * 12


def test_a_worker_that_never_got_ready_makes_the_row_invalid_naming_its_slot():
    """No connections, so no loss to fail on: the planned load was not applied (blocking)."""
    res = result(_worker(1, part(0, 4)), _worker(3, part(0, 4)), phases=SUSTAINED)
    res.rig_errors.append("worker 2: task Rejected: No such image: wsrig/load-worker:dev")
    row = _row({"sustained": res.serialize()})
    assert row["status"] == "invalid"
    assert row["invalid_reasons"] == ["worker 2: task Rejected: No such image: wsrig/load-worker:dev"]


def test_a_worker_that_connected_and_wrote_no_part_fails_on_the_loss_and_is_named():
    broken = {"name": "worker 2", "error": "no part written", "connected": 4, "connect_failures": []}
    row = _row({"sustained": run(_worker(1, part(0, 4)), broken, phases=SUSTAINED)})
    assert row["status"] == "failed" and "worker 2: no part written" in row["rig_errors"]


# ---- the service, the shares, the leftovers ----------------------------------------------


def _plan(**kw) -> WorkerPlan:
    base = {
        "service": "wsrig-load-abcd1234",
        "image": "wsrig/load-worker:dev",
        "workers": 3,
        "ws_url": "ws://127.0.0.1:8000",
        "run_id": "load-abcd1234",
        "symbol": "LABCD1234",
        "msg_type": "market_data",
        "subscribers": 100,
        "start_at": 1_700_000_123.25,
        "results_dir": "/tmp/r/workers/fanout-abcd1234",
        "suite_run_id": "20261205_130000",
    }
    return WorkerPlan(**{**base, **kw})


def _pairs(args: list[str], flag: str) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == flag]


def test_the_service_create_command_follows_from_n_and_the_start_time():
    args = service_create_args(_plan(connect_rate=250.0, cpus="0"))
    assert args[:4] == ["docker", "service", "create", "-d"]  # detached: a waiting create never returns here
    assert args[-1] == "wsrig/load-worker:dev"
    assert _pairs(args, "--replicas") == ["3"] and _pairs(args, "--mode") == ["replicated"]
    assert _pairs(args, "--restart-condition") == ["none"]
    assert "--no-resolve-image" in args  # a local image: no registry
    assert _pairs(args, "--name") == ["wsrig-load-abcd1234"]
    env = dict(e.split("=", 1) for e in _pairs(args, "--env"))
    assert env["WORKER_SLOT"] == "{{.Task.Slot}}" and env["WORKERS"] == "3"
    assert env["LOAD_START_AT"] == "1700000123.250"  # one schedule for every worker
    assert env["LOAD_SUBSCRIBERS"] == "100" and env["LOAD_RUN_ID"] == "load-abcd1234"
    assert env["LOAD_CONNECT_RATE"] == "83.3333"  # the run's arrival rate, a third per worker
    assert env["WORKER_CPUS"] == "0"
    for flag in ("--label", "--container-label"):
        labels = _pairs(args, flag)
        assert {"wsrig.project=wsrig", "wsrig.role=load-worker", "wsrig.run_id=20261205_130000"} <= set(labels)
    assert _pairs(args, "--mount") == ["type=bind,source=/tmp/r/workers/fanout-abcd1234,target=/results"]
    assert _pairs(args, "--network") == ["host"]
    five = service_create_args(_plan(workers=5, start_at=1_700_000_200.0))
    assert _pairs(five, "--replicas") == ["5"]
    assert "WORKERS=5" in _pairs(five, "--env") and "LOAD_START_AT=1700000200.000" in _pairs(five, "--env")
    assert not any(e.startswith("LOAD_CONNECT_RATE=") for e in _pairs(five, "--env"))


@pytest.mark.parametrize("total,workers", [(100, 3), (1000, 3), (7, 7), (2, 3), (0, 2), (1, 1)])
def test_the_slots_shares_add_up_to_the_plan(total, workers):
    shares = [share(total, workers, slot) for slot in range(1, workers + 1)]
    assert sum(shares) == total and max(shares) - min(shares) <= 1
    with pytest.raises(ValueError):
        share(total, workers, 0)  # slots are 1..N (replicated mode)


def test_leftovers_are_found_by_label_not_by_name():
    worker = {"wsrig.project": "wsrig", "wsrig.role": "load-worker", "wsrig.run_id": "old"}
    services = [
        {"Spec": {"Name": "wsrig-load-old", "Labels": worker}},
        {"Spec": {"Name": "renamed-by-hand", "Labels": worker}},
        {"Spec": {"Name": "wsrig-load-imposter", "Labels": {"wsrig.project": "wsrig"}}},  # not a worker
        {"Spec": {"Name": "someone-elses", "Labels": {}}},
        {"Spec": {"Name": "wsrig-load-current", "Labels": worker}},
    ]
    assert leftover_services(services, keep=["wsrig-load-current"]) == ["renamed-by-hand", "wsrig-load-old"]
    containers = [
        {"Id": "exited", "Config": {"Labels": worker}, "State": {"Running": False}},
        {"Id": "running", "Config": {"Labels": worker}, "State": {"Running": True}},
        {"Id": "foreign", "Config": {"Labels": {"com.docker.compose.project": "wsrig"}}, "State": {"Running": False}},
    ]
    assert leftover_containers(containers) == ["exited"]
    assert leftover_containers(containers, running_too=True) == ["exited", "running"]


def test_task_states_take_each_slots_newest_task():
    text = "1|Running 3 seconds ago|\n2|Rejected 2 seconds ago|No such image: x\n2|Failed 9 seconds ago|old\n3|Complete 1 second ago|\n"
    assert task_states(text) == {
        1: ("Running", ""),
        2: ("Rejected", "No such image: x"),
        3: ("Complete", ""),
    }


def test_a_worker_without_subscribers_still_says_ready_and_writes_its_part(tmp_path):
    """The file protocol with the coordinator: ready, then the part once ``stop`` is there."""
    (tmp_path / "stop").touch()
    env = {
        "WORKER_SLOT": "3",
        "WORKERS": "3",
        "LOAD_SUBSCRIBERS": "2",
        "LOAD_WS_URL": "ws://127.0.0.1:9",
        "LOAD_RUN_ID": "load-x",
        "LOAD_SYMBOL": "LX",
        "LOAD_START_AT": "0",
        "LOAD_RESULTS": str(tmp_path),
    }
    assert run_worker(env) == 0
    ready = json.loads((tmp_path / "ready-3.json").read_text())
    assert {**ready, "cpus": None} == {
        "slot": 3,
        "processes": 0,
        "ready": 0,
        "connected": 0,
        "failures": [],
        "cpus": None,
    }
    assert json.loads((tmp_path / "part-3.json").read_text()) == []
