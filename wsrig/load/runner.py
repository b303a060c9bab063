"""Run one load plan: subscriber processes, a publisher process, resources; merge.

Order: subscribers connect and say ready -> resources start -> the publisher starts at
an agreed instant and runs its schedule -> the rig waits until every subscriber has
every message sent (or the settle time ends) -> subscribers stop and report -> merge.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wsrig.config import RigConfig
from wsrig.hdr import LatencyHistogram
from wsrig.load.publisher import PublisherSpec, publisher_process
from wsrig.load.recorder import merge_encoded, per_second_rows
from wsrig.load.resources import ResourceSampler, mean_of
from wsrig.load.schedule import GeneratorHealth, Schedule
from wsrig.load.subscriber import SubscriberSpec, subscriber_process
from wsrig.righealth import ProcessHealth, RigHealth
from wsrig.stack import DockerStack

__all__ = ["LoadPlan", "LoadResult", "cool_down", "run_load"]

READY_TIMEOUT_S = 60.0
#: Time one subscriber process needs to start (spawn + imports), on a busy 2-core host.
SPAWN_S = 1.5
#: Longest wait for a quiet backend after the cooldown (then the scenario starts anyway,
#: and its row shows the CPU it started with).
QUIET_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class LoadPlan:
    """What to send, to how many subscribers, in how many rig processes."""

    name: str
    schedule: Schedule
    subscribers: int = 1
    processes: int = 1
    msg_type: str = "market_data"
    window: int | None = None
    settle_s: float = 10.0
    connect_rate: float | None = None
    #: Before the scenario: wait this long, then until the backend's CPU is below
    #: ``quiet_cpu_percent`` (one docker stats sample, ~1 s), at most QUIET_TIMEOUT_S more.
    cooldown_s: float = 0.0
    quiet_cpu_percent: float | None = None


@dataclass
class LoadResult:
    plan: LoadPlan
    publisher: dict[str, Any] = field(default_factory=dict)
    health: GeneratorHealth | None = None
    corrected: LatencyHistogram = field(default_factory=LatencyHistogram)
    uncorrected: LatencyHistogram = field(default_factory=LatencyHistogram)
    connect: LatencyHistogram = field(default_factory=LatencyHistogram)
    per_second: list[list[Any]] = field(default_factory=list)
    resources: list[list[Any]] = field(default_factory=list)
    connected: int = 0
    cooldown_waited_s: float = 0.0
    backend_cpu_at_start: float | None = None
    expected: int = 0
    delivered: int = 0
    out_of_order: int = 0
    closed: list[int] = field(default_factory=list)
    #: The instrument's own health: loop lag and CPU of every rig process, generator slip.
    rig: RigHealth = field(default_factory=RigHealth)
    #: Backend container CPU seconds over the sampled window (docker stats, cumulative counter).
    backend_cpu_s: float | None = None
    #: The rig failed to measure (a process died, never got ready, the publisher broke).
    rig_errors: list[str] = field(default_factory=list)
    #: Subscribers the backend refused or that could not connect: the system's doing.
    connect_failures: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return max(0, self.expected - self.delivered)

    @property
    def deliveries_per_s(self) -> float:
        return round(self.delivered / self.plan.schedule.duration_s, 1)

    @property
    def rig_loop_lag_max_ms(self) -> float:
        """The subscriber processes' longest loop stall (from ``rig``; kept as a row field)."""
        return self.rig.worst_stall_ms

    @property
    def backend_us_per_delivery(self) -> float | None:
        if self.backend_cpu_s is None or not self.delivered:
            return None
        return round(self.backend_cpu_s * 1e6 / self.delivered, 2)

    @property
    def acked_per_s(self) -> float:
        p = self.publisher
        if not p.get("all_acked_ns") or not p.get("first_sent_ns"):
            return 0.0
        return round(p["acked_seq"] / max(1e-9, (p["all_acked_ns"] - p["first_sent_ns"]) / 1e9), 1)

    def serialize(self) -> dict[str, Any]:
        health = self.health
        return {
            "rate": self.plan.schedule.phases[0].rate,
            "duration_s": self.plan.schedule.duration_s,
            "subscribers": self.plan.subscribers,
            "connected": self.connected,
            "planned": health.planned if health else 0,
            "sent": health.sent if health else 0,
            "generator_lag_p99_ms": health.lag_p99_ms if health else None,
            "generator_backpressure_s": health.backpressure_s if health else None,
            "expected_deliveries": self.expected,
            "delivered": self.delivered,
            "lost": self.lost,
            "out_of_order": self.out_of_order,
            "closed_codes": sorted(set(self.closed)),
            "deliveries_per_s": self.deliveries_per_s,
            "acked_per_s": self.acked_per_s,
            "latency_ms": self.corrected.summary().serialize(),
            "latency_uncorrected_ms": self.uncorrected.summary().serialize(),
            "connect_ms": self.connect.summary().serialize(),
            "rig_loop_lag_max_ms": self.rig_loop_lag_max_ms,
            "rig_health": self.rig.serialize(),
            "rig_us_per_delivery": self.rig.us_per_delivery,
            "backend_cpu_s": self.backend_cpu_s,
            "backend_us_per_delivery": self.backend_us_per_delivery,
            "cooldown_waited_s": self.cooldown_waited_s,
            "backend_cpu_at_start": self.backend_cpu_at_start,
            "cpu_percent_mean": {
                src: mean_of(self.resources, src) for src in sorted({str(r[1]) for r in self.resources})
            },
            "rig_errors": self.rig_errors,
            "connect_failures": self.connect_failures,
        }


def _split(total: int, parts: int) -> list[int]:
    parts = max(1, min(parts, total)) if total else 1
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def run_load(
    cfg: RigConfig,
    plan: LoadPlan,
    stack: DockerStack | None = None,
    on_progress: Callable[[str], None] | None = None,
    on_ready: Callable[[], None] | None = None,
) -> LoadResult:
    """Run ``plan`` against the backend at ``cfg.dashboard_ws_url``; never raises for SUT faults.

    ``on_ready`` runs once every subscriber is connected, before the first send (the
    connections scenario reads the backend's memory there).
    """
    result = LoadResult(plan)
    say = on_progress or (lambda _msg: None)
    if plan.cooldown_s or plan.quiet_cpu_percent is not None:
        result.cooldown_waited_s, result.backend_cpu_at_start = cool_down(plan, stack, cfg.dashboard_service)
        cpu = result.backend_cpu_at_start
        say(
            f"{plan.name}: cooled down {result.cooldown_waited_s:.1f} s (backend CPU {cpu if cpu is not None else '?'} %)"
        )
    ctx = mp.get_context("spawn")
    out: Any = ctx.Queue()
    stop = ctx.Event()
    run_id = f"load-{uuid.uuid4()}"
    symbol = f"L{run_id[5:13].upper()}"
    # No more subscriber processes than the rig has cores (wsrig.cpusets pins it): more
    # would only take turns on the same core, each one's loop waiting for the others'.
    processes = min(plan.processes, len(os.sched_getaffinity(0)))
    sizes = _split(plan.subscribers, processes) if plan.subscribers else []
    progress: Any = ctx.Array("q", max(1, len(sizes)))
    start_at = time.time() + SPAWN_S * max(1, len(sizes))
    subs = [
        ctx.Process(
            target=subscriber_process,
            args=(
                SubscriberSpec(
                    i,
                    cfg.dashboard_ws_url,
                    n,
                    run_id,
                    symbol,
                    connect_rate=plan.connect_rate / len(sizes) if plan.connect_rate else None,
                    start_at=start_at,
                    msg_type=plan.msg_type,
                ),
                stop,
                progress,
                out,
            ),
            daemon=True,
        )
        for i, n in enumerate(sizes)
    ]
    for p in subs:
        p.start()
    results: dict[int, dict[str, Any]] = {}
    try:
        ready = 0
        deadline = time.monotonic() + READY_TIMEOUT_S
        while ready < len(subs) and time.monotonic() < deadline:
            if not any(p.is_alive() for p in subs) and out.empty():
                break
            try:
                kind, index, payload = out.get(timeout=1)
            except queue.Empty:
                continue
            if kind == "ready":
                ready += 1
                result.connected += payload["connected"]
                result.connect_failures += [f"subscriber connect: {f}" for f in payload["failures"]]
            elif kind == "result":
                ready += 1
                results[index] = payload
        if ready < len(subs):
            result.rig_errors.append(
                f"only {ready} of {len(subs)} subscriber processes got ready in {READY_TIMEOUT_S} s"
            )
        if on_ready is not None:
            on_ready()
        say(f"{plan.name}: {result.connected} subscribers connected; sending {plan.schedule.count} messages")
        spec = PublisherSpec(
            ws_url=cfg.dashboard_ws_url,
            token=cfg.auth_token,
            run_id=run_id,
            phases=tuple((p.rate, p.duration_s) for p in plan.schedule.phases),
            start_at_ns=time.time_ns() + 500_000_000,
            msg_type=plan.msg_type,
            symbol=symbol,
            window=plan.window,
        )
        services = [cfg.dashboard_service] if stack is not None else []
        with ResourceSampler(stack, services) as sampler:
            pub = ctx.Process(target=publisher_process, args=(spec, out), daemon=True)
            pub.start()
            publisher = _await_publisher(out, results, plan, say, pub)
            pub.join(timeout=10)
            if "error" in publisher:
                result.rig_errors.append(f"publisher: {publisher['error']}")
            else:
                result.publisher = publisher
                result.health = publisher.pop("health")
                result.expected = publisher["sent"] * result.connected
                _await_deliveries(progress, result.expected, plan.settle_s, say, plan.name)
            stop.set()
            _collect(out, results, len(subs))
        result.resources = sampler.rows
        result.backend_cpu_s = sampler.cpu_s(cfg.dashboard_service)
    finally:
        stop.set()
        for p in subs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
    _merge(result, results)
    return result


def _rig_health(result: LoadResult, results: dict[int, dict[str, Any]]) -> RigHealth:
    """The rig's processes (subscribers and publisher) and its generator, for ``righealth``."""
    procs = [
        ProcessHealth(f"subscriber process {i}", r["loop_lag_p99_ms"], r["loop_lag_max_ms"], r.get("cpu_s", 0.0))
        for i, r in sorted(results.items())
        if "error" not in r
    ]
    pub = result.publisher
    health = result.health
    if pub:
        procs.append(ProcessHealth("publisher", None, None, pub.get("cpu_s", 0.0)))
    return RigHealth(
        processes=tuple(procs),
        generator_lag_p99_ms=health.lag_p99_ms if health else None,
        generator_skipped=health.skipped if health else 0,
        deliveries=result.delivered,
        duration_s=result.plan.schedule.duration_s,
        errors=tuple(result.rig_errors),
    )


def cool_down(plan: LoadPlan, stack: DockerStack | None, service: str) -> tuple[float, float | None]:
    """Let the backend finish the previous scenario's aftermath; returns (waited s, its CPU %).

    A scenario that starts inside that aftermath measures the previous one. Seen here:
    the backend's one full collection after 1,000 clients left (127 ms, 2 s after the
    last close) fell a second before the fan-out scenario began, whose first three
    seconds then had P99 137-177 ms. The CPU check is black-box: it holds for any
    implementation.
    """
    t0 = time.monotonic()
    time.sleep(plan.cooldown_s)
    cpu: float | None = None
    if stack is not None and plan.quiet_cpu_percent is not None:
        while time.monotonic() - t0 < plan.cooldown_s + QUIET_TIMEOUT_S:
            with contextlib.suppress(Exception):  # no sample this time: try again
                cpu = round(float(stack.stats(service)["cpu_percent"]), 1)
            if cpu is not None and cpu < plan.quiet_cpu_percent:
                break
    return round(time.monotonic() - t0, 1), cpu


def _await_publisher(
    out: Any, results: dict[int, dict[str, Any]], plan: LoadPlan, say: Callable[[str], None], proc: Any
) -> Any:
    limit = time.monotonic() + plan.schedule.duration_s + 180
    started = time.monotonic()
    next_note = started + 10
    while time.monotonic() < limit:
        if not proc.is_alive() and out.empty():
            return {"error": f"the publisher process died (exit code {proc.exitcode}) without a result"}
        try:
            item = out.get(timeout=1)
        except queue.Empty:
            if time.monotonic() > next_note:
                say(f"{plan.name}: sending, {time.monotonic() - started:.0f}/{plan.schedule.duration_s:.0f} s")
                next_note += 10
            continue
        if item[0] == "publisher":
            return item[1]
        if item[0] == "result":
            results[item[1]] = item[2]
    return {"error": "the publisher process did not finish in time"}


def _await_deliveries(progress: Any, expected: int, settle_s: float, say: Callable[[str], None], name: str) -> None:
    deadline = time.monotonic() + settle_s
    while time.monotonic() < deadline and sum(progress[:]) < expected:
        time.sleep(0.05)
    say(f"{name}: {sum(progress[:])}/{expected} deliveries seen")


def _collect(out: Any, results: dict[int, dict[str, Any]], n: int) -> None:
    deadline = time.monotonic() + 30
    while len(results) < n and time.monotonic() < deadline:
        try:
            item = out.get(timeout=1)
        except queue.Empty:
            continue
        if item[0] == "result":
            results[item[1]] = item[2]


def _merge(result: LoadResult, results: dict[int, dict[str, Any]]) -> None:
    parts = []
    for index in sorted(results):
        r = results[index]
        if "error" in r:
            result.rig_errors.append(f"subscriber process {index}: {r['error']}")
            continue
        parts.append(r["recorder"])
        result.connect.merge(LatencyHistogram.decode(r["connect_hist"]))
        result.delivered += sum(r["received"])
        result.out_of_order += r["out_of_order"]
        result.closed += r["closed"]
    result.rig = _rig_health(result, results)
    merged = merge_encoded(parts)
    result.corrected, result.uncorrected = merged.corrected, merged.uncorrected
    result.per_second = per_second_rows(merged)
