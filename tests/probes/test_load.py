"""Load stage: sustained, burst, 1,000 connections, fan-out, memory stable after load.

Each scenario is an open-loop constant-rate run of the rig's own load publisher
(``wsrig.load``); latency counts from each message's intended send time and comes from
HDR histograms merged over subscriber processes. Thresholds: [*.load] in
config/thresholds.toml; every value is recorded next to its threshold.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest

from wsrig.load.recorder import latency_recovery_s
from wsrig.load.report import (
    data_problems,
    invalid_reasons,
    ratio,
    ratio_check,
    record_run,
    reference_config,
    reference_problems,
    scenario_findings,
)
from wsrig.load.runner import LoadPlan, run_load
from wsrig.load.schedule import Schedule
from wsrig.probe import conclude, progress
from wsrig.righealth import INVALID_PREFIX, scenario_status
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


def test_sustained_rate(cfg, stack, record, limits, rig_limits, results_dir, baseline_mb):
    """Rate R for T seconds to N subscribers: P99 from intended time under the threshold, nothing lost."""
    rate, secs, subs = limits["sustained_rate"], limits["sustained_s"], limits["sustained_subscribers"]
    progress(f"sustained: {rate} msg/s for {secs} s to {subs} subscribers")
    result = run_load(cfg, _plan("sustained", limits, Schedule.constant(rate, secs), subs), stack, progress)
    p99 = record.measure("sustained P99", result.corrected.summary().p99, limits["sustained_p99_ms"], "<", "ms")
    conclude(record_run(record, results_dir, "sustained", result, rig_limits, [p99]))


def test_burst_and_recovery(cfg, stack, record, limits, rig_limits, results_dir):
    """10x the rate for a few seconds: nothing lost, and latency comes back within the bound."""
    sched = Schedule.burst(
        limits["burst_rate"],
        limits["burst_factor"],
        limits["burst_before_s"],
        limits["burst_s"],
        limits["burst_after_s"],
    )
    progress(f"burst: {limits['burst_rate']} -> {limits['burst_rate'] * limits['burst_factor']} msg/s")
    result = run_load(cfg, _plan("burst", limits, sched, limits["burst_subscribers"]), stack, progress)
    t0 = result.publisher.get("t0_ns", 0) / 1e9
    burst_end = int(t0 + sched.phase_bounds_s()[1][1])
    recovery = latency_recovery_s(result.per_second, burst_end, limits["sustained_p99_ms"])
    rec = record.measure(
        "burst recovery", recovery if recovery is not None else float("inf"), limits["burst_recovery_s"], "<=", "s"
    )
    row = record_run(
        record,
        results_dir,
        "burst",
        result,
        rig_limits,
        [rec],
        recovery_s=recovery,
        burst_rate=limits["burst_rate"] * limits["burst_factor"],
    )
    conclude(row)


def test_thousand_connections(cfg, stack, record, limits, rig_limits, results_dir):
    """1,000 clients at once: connect P99, backend memory per connection, all get live traffic.

    The delivery latency to the 1,000 is recorded (``latency_ms``) but not judged: the rig's
    own fan-in of 1,000 frames per message on one core adds about as much as the backend's
    fan-out (docs/BENCHMARKS.md, session 6); a judged bound needs the reference as control.
    """
    n = limits["connections"]
    memory: dict[str, float] = {}

    def all_connected() -> None:
        memory["connected"] = _backend_mb(stack, cfg)

    memory["idle"] = _backend_mb(stack, cfg)
    progress(f"connections: opening {n} clients")
    result = run_load(cfg, _connections_plan("connections", limits), stack, progress, on_ready=all_connected)
    per_1000 = (memory.get("connected", memory["idle"]) - memory["idle"]) * 1000 / max(1, result.connected)
    connect = result.connect.summary()
    connected = record.measure("clients connected", result.connected, n, ">=", "")
    checks = [
        record.measure("connect P99", connect.p99, limits["connect_p99_ms"], "<", "ms"),
        record.measure(
            "backend memory per 1000 connections",
            round(per_1000, 1),
            limits["memory_per_1000_connections_mb"],
            "<",
            "MB",
        ),
    ]
    row = record_run(
        record,
        results_dir,
        "connections_1000",
        result,
        rig_limits,
        checks,
        problems=[] if connected.passed else [connected.breach()],
        backend_mem_idle_mb=round(memory["idle"], 1),
        backend_mem_connected_mb=round(memory.get("connected", 0.0), 1),
        memory_per_connection_kb=round(per_1000 * 1024 / 1000, 1),
    )
    conclude(row)


def test_fanout(cfg, stack, record, limits, rig_limits, results_dir):
    """100 subscribers at 500 msg/s: P99 and delivered msg/s, and P99 against the reference server's.

    The same plan runs against the reference broadcast server (same rig, same CPU sets);
    the ratio of the two P99s survives a change of host, an absolute figure does not.
    """
    rate, subs, secs = limits["fanout_rate"], limits["fanout_subscribers"], limits["fanout_s"]
    plan = _plan("fanout", limits, Schedule.constant(rate, secs), subs)
    progress(f"fan-out: {rate} msg/s to {subs} subscribers ({rate * subs} deliveries/s) for {secs} s")
    result = run_load(cfg, plan, stack, progress)
    progress("fan-out: the same plan against the reference server")
    ref = run_load(reference_config(cfg), dataclasses.replace(plan, name="fanout_reference"), stack, progress)
    # The yardstick's row: invalid when its own rig lagged (then it measures nothing).
    record_run(
        record,
        results_dir,
        "fanout_reference",
        ref,
        rig_limits,
        judge_data=False,
        also_invalid=ref.rig.lagging(rig_limits),
        role="reference",
    )
    sut_p99, ref_p99 = result.corrected.summary().p99, ref.corrected.summary().p99
    p99_ratio = ratio(sut_p99, ref_p99)
    checks = [
        record.measure("fan-out P99", sut_p99, limits["fanout_p99_ms"], "<", "ms"),
        record.measure(
            "fan-out deliveries/s", result.deliveries_per_s, limits["fanout_min_deliveries_per_s"], ">=", "/s"
        ),
    ]
    # The ratio is judged only when the reference run measured cleanly (reference_problems).
    not_judged = reference_problems(ref, rig_limits)
    ratio_vs_ref = ratio_check(
        record, "fan-out P99 / reference P99", p99_ratio, limits["fanout_p99_ratio_max"], "<=", not_judged, "fanout"
    )
    checks += [ratio_vs_ref] if ratio_vs_ref is not None else []
    # The reference run is also the control: when it met the fan-out bound under the same
    # plan, rig and cores, the rig could measure this plan, and a breach is the system's.
    control_ok = not not_judged and ref_p99 < limits["fanout_p99_ms"]
    row = record_run(
        record,
        results_dir,
        "fanout",
        result,
        rig_limits,
        checks,
        rig_vouched_by="the reference server" if control_ok else "",
        reference={
            "p99_ms": ref_p99,
            "deliveries_per_s": ref.deliveries_per_s,
            "us_per_delivery": ref.backend_us_per_delivery,
        },
        ratio_to_reference={"p99": p99_ratio, "judged": not not_judged, "not_judged_because": not_judged},
    )
    conclude(row)


def test_memory_back_to_baseline(cfg, stack, record, limits, rig_limits, baseline_mb):
    """Memory after the load stays within bounds, and a second round of clients does not raise it.

    CPython keeps freed heap for reuse rather than giving it back, and the resume ring
    keeps the last envelopes by design, so memory after load is checked against a
    bound (``stability_memory_growth_mb``). A leak shows as growth from one round to
    the next: the 1,000-client round runs twice more, and the second must not add more
    than ``stability_repeat_growth_mb`` to what the first left. Memory is not timing: a
    round whose rig ran late still loaded the backend, so rig notes are info here.
    """
    time.sleep(limits["stability_settle_s"])
    after = _backend_mb(stack, cfg)
    growth = record.measure(
        "backend memory growth after load",
        round(after - baseline_mb, 1),
        limits["stability_memory_growth_mb"],
        "<=",
        "MB",
    )
    # Two more rounds of the same clients: the first fills whatever heap they need (it
    # may be the first such round when this test runs alone), the second must reuse it.
    rounds: list[float] = []
    problems: list[str] = []
    rig_notes: list[str] = []
    for i in (1, 2):
        progress(f"stability: {limits['connections']}-client round {i} of 2 (backend {_backend_mb(stack, cfg):.1f} MB)")
        result = run_load(cfg, _connections_plan(f"stability_round_{i}", limits), stack, progress)
        problems += data_problems(result)
        rig_notes += [f"round {i}: {r}" for r in invalid_reasons(result, rig_limits)]
        time.sleep(ROUND_SETTLE_S)
        rounds.append(_backend_mb(stack, cfg))
    repeat = record.measure(
        "backend memory growth on a repeated round",
        round(rounds[1] - rounds[0], 1),
        limits["stability_repeat_growth_mb"],
        "<=",
        "MB",
    )
    findings = scenario_findings(record, "stability", problems, [growth, repeat])
    findings += [
        {"severity": "info", "message": f"{INVALID_PREFIX} (timing only, not judged here): {n}"} for n in rig_notes
    ]
    status = scenario_status(problems, [c.breach() for c in (growth, repeat) if not c.passed], [])
    row = record.scenario(
        "stability",
        status == "passed",
        status=status,
        findings=findings,
        baseline_mb=round(baseline_mb, 1),
        after_mb=round(after, 1),
        after_round_1_mb=round(rounds[0], 1),
        after_round_2_mb=round(rounds[1], 1),
        problems=problems,
    )
    conclude(row)
