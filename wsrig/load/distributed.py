"""Distributed load, the coordinator: one load plan run with its subscribers on swarm workers.

``--workers N`` (``RIG__WORKERS``) on the load and performance stages. The order is the
local runner's (``wsrig.load.runner``), with the subscriber processes replaced by N
swarm tasks (``wsrig.load.worker``): the workers connect at one start time given in
their environment and say ready in the results folder -> resources start -> the
publisher (a process of the rig on the host, as locally: the plans have one publisher)
runs its schedule -> the coordinator waits until the workers' progress files add up to
every delivery (or the settle time ends) -> it writes ``stop`` -> each worker writes
its part -> the service is removed. The parts go into the run as a local run's do; the
judge merges them exactly (``wsrig.load.merge``) and judges each worker's own health:
a part is named by its slot, so a reason names the worker.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import multiprocessing as mp
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from wsrig.config import RigConfig
from wsrig.cpusets import CpuPlan
from wsrig.load.runner import LoadPlan, LoadResult, cool_down, publish_and_sample
from wsrig.load.swarm import SwarmError, SwarmWorkers
from wsrig.load.workers import WorkerPlan
from wsrig.stack import DockerStack

__all__ = ["WORKER_IMAGE", "DistributedLoad", "load_workers", "workers_wanted"]

WORKER_IMAGE = "wsrig/load-worker:dev"
#: From the create to the agreed start: scheduling N tasks, starting their containers and
#: each one's subscriber processes (spawn + imports) on a busy 2-core host.
WORKER_START_S = 15.0
READY_TIMEOUT_S = 60.0
PART_TIMEOUT_S = 40.0


def workers_wanted(cfg: RigConfig) -> int:
    """``RIG__WORKERS`` (``--workers N``): 0 runs the load locally, as before."""
    text = cfg.setting("RIG__WORKERS", "0").strip() or "0"
    n = int(text)
    if n < 0:
        raise ValueError(f"RIG__WORKERS={n}: the worker count cannot be negative")
    return n


def _read(path: Path) -> Any:
    with contextlib.suppress(FileNotFoundError, ValueError):
        return json.loads(path.read_text())
    return None


def _progress(folder: Path, slots: range) -> int:
    total = 0
    for slot in slots:
        with contextlib.suppress(FileNotFoundError, ValueError):
            total += int((folder / f"progress-{slot}").read_text() or 0)
    return total


@dataclasses.dataclass
class DistributedLoad:
    """``run_load``'s ``workers``: runs a plan's subscribers on the swarm's workers."""

    swarm: SwarmWorkers
    root: Path
    image: str = WORKER_IMAGE
    processes: int = 1

    @property
    def workers(self) -> int:
        return self.swarm.workers

    def run(
        self,
        cfg: RigConfig,
        plan: LoadPlan,
        stack: DockerStack | None,
        say: Callable[[str], None],
        on_ready: Callable[[], None] | None,
    ) -> LoadResult:
        """``run_load``'s contract: never raises for SUT faults; a worker that did not
        measure is a rig error named by its slot (the run is then ``invalid``)."""
        result = LoadResult(plan, workers=self.workers)
        if plan.cooldown_s or plan.quiet_cpu_percent is not None:
            result.cooldown_waited_s, result.backend_cpu_at_start = cool_down(plan, stack, cfg.dashboard_service)
            say(
                f"{plan.name}: cooled down {result.cooldown_waited_s:.1f} s (backend CPU {result.backend_cpu_at_start} %)"
            )
        run_id = f"load-{uuid.uuid4()}"
        symbol = f"L{run_id[5:13].upper()}"
        folder = self.root / f"{plan.name}-{run_id[5:13]}"
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o777)  # the tasks run as the image's user
        slots = range(1, self.workers + 1)
        wplan = WorkerPlan(
            service=f"wsrig-load-{run_id[5:13]}",
            image=self.image,
            workers=self.workers,
            ws_url=cfg.dashboard_ws_url,
            run_id=run_id,
            symbol=symbol,
            msg_type=plan.msg_type,
            subscribers=plan.subscribers,
            start_at=time.time() + WORKER_START_S,
            results_dir=str(folder.resolve()),
            suite_run_id=os.environ.get("WSRIG_RUN_ID", ""),
            connect_rate=plan.connect_rate,
            processes=self.processes,
            cpus=CpuPlan.text(frozenset(os.sched_getaffinity(0))),
        )
        ready: dict[int, dict[str, Any]] = {}
        parts: dict[int, list[dict[str, Any]]] = {}
        try:
            self.swarm.create(wplan)
            say(f"{plan.name}: {self.workers} workers deployed ({wplan.service}); they connect at the agreed start")
            failed = self._await(folder, "ready", slots, ready, wplan.service, wplan.start_at + READY_TIMEOUT_S)
            for slot in slots:
                r = ready.get(slot)
                if r is None:
                    result.rig_errors.append(failed.get(slot) or f"worker {slot}: not ready in {READY_TIMEOUT_S:g} s")
                elif r["ready"] < r["processes"]:
                    result.rig_errors.append(
                        f"worker {slot}: only {r['ready']} of {r['processes']} subscriber processes got ready"
                    )
            if on_ready is not None:
                on_ready()
            connected = sum(int(r["connected"]) for r in ready.values())
            say(
                f"{plan.name}: {connected} subscribers connected on {len(ready)} workers; sending {plan.schedule.count}"
            )
            self._publish(cfg, plan, stack, result, run_id, symbol, connected, folder, slots, say)
            (folder / "stop").touch()
            self._await(folder, "part", slots, parts, wplan.service, time.time() + PART_TIMEOUT_S)
        except SwarmError as exc:
            result.rig_errors.append(f"workers: {exc}")
        finally:
            (folder / "stop").touch()
            self.swarm.remove(wplan.service)
        for slot in slots:
            if slot in parts:
                result.parts += parts[slot]
            elif slot in ready:  # connected, then broke: its connections were sent to
                r = ready[slot]
                result.parts.append(
                    {
                        "name": f"worker {slot}",
                        "error": "no part written",
                        "connected": r["connected"],
                        "connect_failures": r["failures"],
                    }
                )
        return result

    def _await(
        self,
        folder: Path,
        kind: str,
        slots: range,
        into: dict[int, Any],
        service: str,
        deadline: float,
    ) -> dict[int, str]:
        """Read each slot's ``<kind>-<slot>.json`` as it appears, until all are there, the
        deadline passes or every missing slot's task failed; returns the failed tasks."""
        failed: dict[int, str] = {}
        next_poll = 0.0
        while time.time() < deadline:
            for slot in slots:
                if slot not in into and (data := _read(folder / f"{kind}-{slot}.json")) is not None:
                    into[slot] = data
            missing = [s for s in slots if s not in into]
            if not missing:
                break
            if time.monotonic() > next_poll:  # docker service ps costs ~0.1 s: once a second
                next_poll = time.monotonic() + 1.0
                failed = self.swarm.failed(service)
                if all(s in failed for s in missing):
                    break
            time.sleep(0.1)
        return failed

    def _publish(
        self,
        cfg: RigConfig,
        plan: LoadPlan,
        stack: DockerStack | None,
        result: LoadResult,
        run_id: str,
        symbol: str,
        connected: int,
        folder: Path,
        slots: range,
        say: Callable[[str], None],
    ) -> None:
        """The publisher and the resource sampler, as ``run_load`` runs them; deliveries are
        read from the workers' progress files."""
        ctx = mp.get_context("spawn")
        out: Any = ctx.Queue()

        def settle(sent: int) -> None:
            expected = sent * connected
            deadline = time.monotonic() + plan.settle_s
            while time.monotonic() < deadline and _progress(folder, slots) < expected:
                time.sleep(0.05)
            say(f"{plan.name}: {_progress(folder, slots)}/{expected} deliveries seen")

        publish_and_sample(cfg, plan, stack, result, run_id, symbol, ctx, out, {}, say, settle)


@contextlib.contextmanager
def load_workers(cfg: RigConfig, say: Callable[[str], None], folder: Path) -> Iterator[DistributedLoad | None]:
    """For one stage: None when ``RIG__WORKERS`` is 0 (local mode, as before), else the
    swarm's workers (swarm initialised if needed, left when done if the rig created it,
    leftovers of a killed run removed first)."""
    n = workers_wanted(cfg)
    if n == 0:
        yield None
        return
    image = cfg.setting("RIG__LOAD_WORKER_IMAGE", WORKER_IMAGE) or WORKER_IMAGE
    marker = cfg.root / ".cache" / "wsrig-swarm-initialised"
    with SwarmWorkers(n, image, marker, say) as swarm:
        yield DistributedLoad(swarm, folder, image)
