"""Performance stage: ingest and durable rates, step-load saturation, bot latency per hop.

Throughput runs are closed loop on purpose (at most ``ingest_window`` unacked: the highest
rate the backend acknowledges); latency runs are open loop at a constant rate, measured
from intended send time. The probes drive and record each scenario's raw runs in a
history; ``wsrig.judges.performance`` decides under [*.performance] and [*.rig_health]
in config/thresholds.toml (``wsrig judge`` again, offline).
"""

from __future__ import annotations

import pytest

from wsrig.judges.performance import step_breaks
from wsrig.load.bot_latency import measure_bot_latency
from wsrig.load.distributed import load_workers
from wsrig.load.report import record_load, reference_config
from wsrig.load.runner import LoadPlan, LoadResult, run_load
from wsrig.load.schedule import Schedule
from wsrig.probe import progress, record_probe, results_dir
from wsrig.stack import DockerStack

pytestmark = pytest.mark.performance


@pytest.fixture(scope="module")
def stack(cfg):
    return DockerStack(cfg)


@pytest.fixture(scope="module")
def workers(cfg):
    """The subscribers' swarm workers with ``--workers N`` (RIG__WORKERS); None: the rig's processes."""
    with load_workers(cfg, progress, results_dir() / "workers") as pool:
        yield pool


def _closed_loop(name: str, msg_type: str, count: int, window: int) -> LoadPlan:
    # One phase whose count is the number of messages; the window paces the sends.
    return LoadPlan(name, Schedule.constant(count, 1), subscribers=0, msg_type=msg_type, window=window)


@pytest.mark.parametrize(
    "name,msg_type,count_key",
    [("ingest", "market_data", "ingest_messages"), ("durable", "trade", "durable_messages")],
)
def test_acknowledged_rate(cfg, stack, record, limits, rig_limits, name, msg_type, count_key):
    """The highest rate one publisher gets acknowledged: validated (ingest) and stored (durable)."""
    count, window = limits[count_key], limits["ingest_window"]
    progress(f"{name}: {count} {msg_type} envelopes, at most {window} unacked")
    result = run_load(cfg, _closed_loop(name, msg_type, count, window), stack, progress)
    record_load(record, limits, rig_limits, name, {name: result})


def _steps(cfg, stack, workers, limits, rig_limits, prefix: str) -> dict[str, LoadResult]:
    """Step the rate up to a fixed set of subscribers against ``cfg``'s server, up to the
    first step that breaks (``step_breaks``: the judge's reading of that step, which only
    tells the search where to stop; the judge decides again from every recorded step)."""
    subs, secs = limits["saturation_subscribers"], limits["saturation_step_s"]
    runs: dict[str, LoadResult] = {}
    for rate in sorted(limits["saturation_rates"]):
        progress(f"{prefix}: {rate:g} msg/s x {subs} subscribers for {secs} s")
        plan = LoadPlan(
            f"step_{rate:g}",
            Schedule.constant(rate, secs),
            subscribers=subs,
            processes=limits["subscriber_processes"],
            settle_s=limits["settle_s"],
        )
        result = runs[f"{prefix}_{rate:g}"] = run_load(cfg, plan, stack, progress, workers=workers)
        if step_breaks(result.serialize(), limits, rig_limits):
            progress(f"{prefix}: stepped up to {rate:g} msg/s, where it broke")
            break
    return runs


def test_saturation_point(cfg, stack, workers, record, limits, rig_limits):
    """Step the rate up until P99 breaks; the same steps against the reference server give the ratio."""
    runs = _steps(cfg, stack, workers, limits, rig_limits, "saturation")
    runs |= _steps(reference_config(cfg), stack, workers, limits, rig_limits, "reference_saturation")
    record_load(record, limits, rig_limits, "saturation", runs)


def test_bot_latency_per_hop(cfg, record, limits, bot_run_id):
    """The bot's own stream: production -> backend -> client, each hop's latency recorded."""
    progress(f"bot latency: following run {bot_run_id} for {limits['bot_latency_s']} s")
    measured = measure_bot_latency(cfg, bot_run_id, limits["bot_latency_s"])
    record_probe(record, limits, "bot_latency", **measured.recorded())
