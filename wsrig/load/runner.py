"""Run one load plan: subscriber processes, a publisher process, resources; merge.

Order: subscribers connect and say ready -> resources start -> the publisher starts at
an agreed instant and runs its schedule -> the rig waits until every subscriber has
every message sent (or the settle time ends) -> subscribers stop and report their
parts. The run is returned raw; the judge merges the parts (``wsrig.load.merge``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing as mp
import os
import queue
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from wsrig.config import RigConfig
from wsrig.load.publisher import PublisherSpec, publisher_process
from wsrig.load.resources import ResourceSampler
from wsrig.load.schedule import Schedule
from wsrig.load.subscriber import SubscriberSpec, spawn_subscribers
from wsrig.load.workers import split
from wsrig.stack import DockerStack

__all__ = ["LoadPlan", "LoadResult", "Workers", "cool_down", "run_load"]

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
    """What one run recorded, raw: each subscriber process's part (``wsrig.load.merge``),
    the publisher's report, resource samples. ``serialize`` is its form in a history;
    every figure and verdict is read from that by the judge (``wsrig.judges.load``)."""

    plan: LoadPlan
    publisher: dict[str, Any] = field(default_factory=dict)
    parts: list[dict[str, Any]] = field(default_factory=list)
    resources: list[list[Any]] = field(default_factory=list)
    cooldown_waited_s: float = 0.0
    backend_cpu_at_start: float | None = None
    #: Backend container CPU seconds over the sampled window (docker stats, cumulative counter).
    backend_cpu_s: float | None = None
    #: The rig failed to measure (a process never got ready, the publisher broke).
    rig_errors: list[str] = field(default_factory=list)
    #: Swarm workers that held the subscribers (0: the rig's own processes).
    workers: int = 0

    def serialize(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "plan": {
                "name": plan.name,
                "phases": [[p.rate, p.duration_s] for p in plan.schedule.phases],
                "subscribers": plan.subscribers,
                "processes": plan.processes,
                "msg_type": plan.msg_type,
                "window": plan.window,
                "workers": self.workers,
            },
            "publisher": self.publisher,
            "parts": self.parts,
            "resources": self.resources,
            "cooldown_waited_s": self.cooldown_waited_s,
            "backend_cpu_at_start": self.backend_cpu_at_start,
            "backend_cpu_s": self.backend_cpu_s,
            "rig_errors": self.rig_errors,
        }


class Workers(Protocol):
    """Where a plan's subscribers run instead of the rig's processes (``wsrig.load.distributed``)."""

    def run(
        self,
        cfg: RigConfig,
        plan: LoadPlan,
        stack: DockerStack | None,
        say: Callable[[str], None],
        on_ready: Callable[[], None] | None,
    ) -> LoadResult: ...


def run_load(
    cfg: RigConfig,
    plan: LoadPlan,
    stack: DockerStack | None = None,
    on_progress: Callable[[str], None] | None = None,
    on_ready: Callable[[], None] | None = None,
    workers: Workers | None = None,
) -> LoadResult:
    """Run ``plan`` against the backend at ``cfg.dashboard_ws_url``; never raises for SUT faults.

    ``on_ready`` runs once every subscriber is connected, before the first send (the
    connections scenario reads the backend's memory there). ``workers``: the subscribers
    run there (swarm tasks, ``--workers N``) instead of in the rig's processes; a plan
    without subscribers runs locally either way.
    """
    say = on_progress or (lambda _msg: None)
    if workers is not None and plan.subscribers:
        return workers.run(cfg, plan, stack, say, on_ready)
    result = LoadResult(plan)
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
    sizes = split(plan.subscribers, processes) if plan.subscribers else []
    progress: Any = ctx.Array("q", max(1, len(sizes)))
    start_at = time.time() + SPAWN_S * max(1, len(sizes))
    specs = [
        SubscriberSpec(
            i,
            cfg.dashboard_ws_url,
            n,
            run_id,
            symbol,
            connect_rate=plan.connect_rate / len(sizes) if plan.connect_rate else None,
            start_at=start_at,
            msg_type=plan.msg_type,
        )
        for i, n in enumerate(sizes)
    ]
    subs = spawn_subscribers(ctx, specs, stop, progress, out)
    results: dict[int, dict[str, Any]] = {}
    ready_of: dict[int, dict[str, Any]] = {}
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
                ready_of[index] = payload
            elif kind == "result":
                ready += 1
                results[index] = payload
        if ready < len(subs):
            result.rig_errors.append(
                f"only {ready} of {len(subs)} subscriber processes got ready in {READY_TIMEOUT_S} s"
            )
        if on_ready is not None:
            on_ready()
        connected = sum(r["connected"] for r in ready_of.values())
        say(f"{plan.name}: {connected} subscribers connected; sending {plan.schedule.count} messages")

        def settle(sent: int) -> None:
            _await_deliveries(progress, sent * connected, plan.settle_s, say, plan.name)

        def collect() -> None:
            stop.set()
            _collect(out, results, len(subs))

        publish_and_sample(cfg, plan, stack, result, run_id, symbol, ctx, out, results, say, settle, then=collect)
    finally:
        stop.set()
        for p in subs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
    result.parts = _parts(results, ready_of)
    return result


def publish_and_sample(
    cfg: RigConfig,
    plan: LoadPlan,
    stack: DockerStack | None,
    result: LoadResult,
    run_id: str,
    symbol: str,
    ctx: Any,
    out: Any,
    results: dict[int, dict[str, Any]],
    say: Callable[[str], None],
    settle: Callable[[int], None],
    then: Callable[[], None] | None = None,
) -> None:
    """The publisher's schedule, sent while the backend's resources are sampled; ``settle``
    waits for the deliveries of the ``sent`` messages (local processes or swarm workers)
    and ``then`` runs before the sampler stops. One path for the local and the distributed rig."""
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
            result.publisher = {**publisher, "health": dataclasses.asdict(publisher["health"])}
            settle(int(publisher["sent"]))
        if then is not None:
            then()
    result.resources = sampler.rows
    result.backend_cpu_s = sampler.cpu_s(cfg.dashboard_service)


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


def _parts(results: dict[int, dict[str, Any]], ready_of: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each process's part as it reported it. A process that got ready and then broke or
    never reported keeps the connections it had: they were sent to, so their deliveries
    count as expected."""
    parts = []
    for index in sorted(set(results) | set(ready_of)):
        part = results.get(index) or {"name": f"subscriber process {index}", "error": "no result reported"}
        if "error" in part and index in ready_of:
            ready = ready_of[index]
            part = {**part, "connected": ready["connected"], "connect_failures": ready["failures"]}
        parts.append(part)
    return parts
