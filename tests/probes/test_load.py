"""Load stage: sustained, burst, 1,000 connections, fan-out, memory stable after load.

Each scenario is an open-loop constant-rate run of the rig's own load publisher
(``wsrig.load``); latency counts from each message's intended send time, recorded in
HDR histograms per subscriber process. The probes drive and record: each scenario's
raw runs (every process's histograms and counts, the publisher's report, resources,
the backend's memory) are kept in a history, and ``wsrig.judges.load`` decides under
[*.load] and [*.rig_health] in config/thresholds.toml (``wsrig judge`` again, offline).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest

from wsrig.load.distributed import load_workers
from wsrig.load.report import record_load, reference_config
from wsrig.load.runner import LoadPlan, run_load
from wsrig.load.schedule import Schedule
from wsrig.probe import progress, results_dir
from wsrig.stack import DockerStack

pytestmark = pytest.mark.load

ROUND_SETTLE_S = 3  # after a stability round's clients closed, before memory is read


def _backend_mb(stack: DockerStack, cfg: Any) -> float:
    """The backend container's memory now (docker stats, page cache excluded), MiB."""
    return float(stack.stats(cfg.dashboard_service)["mem_bytes"]) / 2**20


@pytest.fixture(scope="module")
def stack(cfg):
    return DockerStack(cfg)


@pytest.fixture(scope="module")
def workers(cfg):
    """The subscribers' swarm workers with ``--workers N`` (RIG__WORKERS); None: the rig's processes."""
    with load_workers(cfg, progress, results_dir() / "workers") as pool:
        yield pool


@pytest.fixture(scope="module")
def baseline_mb(stack, cfg) -> float:
    """Backend memory before any load scenario of this stage."""
    return _backend_mb(stack, cfg)


def _plan(name: str, limits: dict[str, Any], schedule: Schedule, subscribers: int, processes: int | None = None):
    return LoadPlan(
        name,
        schedule,
        subscribers=subscribers,
        processes=processes or limits["subscriber_processes"],
        settle_s=limits["settle_s"],
        cooldown_s=limits["cooldown_s"],
        quiet_cpu_percent=limits["quiet_cpu_percent"],
    )


def _connections_plan(name: str, limits: dict[str, Any]) -> LoadPlan:
    """``connections`` clients arriving at ``connect_rate``/s, then 3 s of light traffic to all."""
    plan = _plan(name, limits, Schedule.constant(20, 3), limits["connections"], limits["connections_processes"])
    return dataclasses.replace(plan, connect_rate=limits["connect_rate"])


def test_sustained_rate(cfg, stack, workers, record, limits, rig_limits):
    """Rate R for T seconds to N subscribers: P99 from intended time under the threshold, nothing lost."""
    rate, secs, subs = limits["sustained_rate"], limits["sustained_s"], limits["sustained_subscribers"]
    progress(f"sustained: {rate} msg/s for {secs} s to {subs} subscribers")
    result = run_load(
        cfg, _plan("sustained", limits, Schedule.constant(rate, secs), subs), stack, progress, workers=workers
    )
    record_load(record, limits, rig_limits, "sustained", {"sustained": result})


def test_burst_and_recovery(cfg, stack, workers, record, limits, rig_limits):
    """10x the rate for a few seconds: nothing lost, and latency comes back within the bound."""
    sched = Schedule.burst(
        limits["burst_rate"],
        limits["burst_factor"],
        limits["burst_before_s"],
        limits["burst_s"],
        limits["burst_after_s"],
    )
    progress(f"burst: {limits['burst_rate']} -> {limits['burst_rate'] * limits['burst_factor']} msg/s")
    result = run_load(cfg, _plan("burst", limits, sched, limits["burst_subscribers"]), stack, progress, workers=workers)
    record_load(record, limits, rig_limits, "burst", {"burst": result})


def test_thousand_connections(cfg, stack, workers, record, limits, rig_limits):
    """1,000 clients at once: connect times, backend memory idle and with all connected, live traffic to all."""
    n = limits["connections"]
    memory: dict[str, float] = {}

    def all_connected() -> None:
        memory["connected"] = _backend_mb(stack, cfg)

    memory["idle"] = _backend_mb(stack, cfg)
    progress(f"connections: opening {n} clients")
    result = run_load(
        cfg, _connections_plan("connections", limits), stack, progress, on_ready=all_connected, workers=workers
    )
    record_load(
        record,
        limits,
        rig_limits,
        "connections_1000",
        {"connections_1000": result},
        memory_idle_mb=memory["idle"],
        memory_connected_mb=memory.get("connected"),
    )


def test_fanout(cfg, stack, workers, record, limits, rig_limits):
    """100 subscribers at 500 msg/s, then the same plan against the reference broadcast server
    (same rig, same CPU sets): the judge reads P99, delivered msg/s and the ratio of the P99s."""
    rate, subs, secs = limits["fanout_rate"], limits["fanout_subscribers"], limits["fanout_s"]
    plan = _plan("fanout", limits, Schedule.constant(rate, secs), subs)
    progress(f"fan-out: {rate} msg/s to {subs} subscribers ({rate * subs} deliveries/s) for {secs} s")
    result = run_load(cfg, plan, stack, progress, workers=workers)
    progress("fan-out: the same plan against the reference server")
    ref = run_load(
        reference_config(cfg), dataclasses.replace(plan, name="fanout_reference"), stack, progress, workers=workers
    )
    record_load(record, limits, rig_limits, "fanout", {"fanout": result, "fanout_reference": ref})


def test_memory_back_to_baseline(cfg, stack, workers, record, limits, rig_limits, baseline_mb):
    """Backend memory after the load, then after each of two more rounds of the 1,000 clients.

    The first round fills whatever heap such clients need (it may be the first such round
    when this test runs alone); a leak shows as growth from the first to the second.
    """
    time.sleep(limits["stability_settle_s"])
    after = _backend_mb(stack, cfg)
    runs, rounds = {}, []
    for i in (1, 2):
        progress(f"stability: {limits['connections']}-client round {i} of 2 (backend {_backend_mb(stack, cfg):.1f} MB)")
        runs[f"stability_round_{i}"] = run_load(
            cfg, _connections_plan(f"stability_round_{i}", limits), stack, progress, workers=workers
        )
        time.sleep(ROUND_SETTLE_S)
        rounds.append(_backend_mb(stack, cfg))
    record_load(
        record, limits, rig_limits, "stability", runs, baseline_mb=baseline_mb, after_mb=after, after_rounds_mb=rounds
    )
