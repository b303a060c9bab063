"""A load worker: one swarm task holding its slot's share of a run's subscribers.

``python -m wsrig.load.worker`` in the load-worker image (services/load_worker). It reads
its plan from the environment (``wsrig.load.workers.WorkerPlan.env``), runs its share in
subscriber processes exactly as the rig does locally (``wsrig.load.subscriber``), and
talks to the coordinator only through files in the bind-mounted results folder: it
writes ``ready-<slot>.json`` once connected and ``progress-<slot>`` (deliveries seen)
while the run goes, waits for the coordinator's ``stop``, then writes
``part-<slot>.json``: its parts as a local run records them (encoded HDR histograms,
counts, each process's own loop lag and CPU), named by slot. The coordinator merges
them with every other worker's in the judge (``wsrig.load.merge``).
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import queue
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wsrig.load.subscriber import SubscriberSpec, spawn_subscribers
from wsrig.load.workers import part_name, share, split

__all__ = ["main", "run_worker"]

READY_TIMEOUT_S = 60.0
PROGRESS_EVERY_S = 0.1


def write_json(path: Path, data: Any) -> None:
    """Atomically: the coordinator never reads half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def _cpus(spec: str) -> set[int]:
    out: set[int] = set()
    for part in spec.split(","):
        a, _, b = part.strip().partition("-")
        out.update(range(int(a), int(b or a) + 1))
    return out


def run_worker(env: Mapping[str, str]) -> int:
    """Run this task's share; returns the exit code (0 once the part is written)."""
    slot, workers = int(env["WORKER_SLOT"]), int(env["WORKERS"])
    folder = Path(env.get("LOAD_RESULTS", "/results"))
    if env.get("WORKER_CPUS"):
        with contextlib.suppress(OSError, ValueError):  # cores the container does not have: run unpinned
            os.sched_setaffinity(0, _cpus(env["WORKER_CPUS"]))
    mine = share(int(env["LOAD_SUBSCRIBERS"]), workers, slot)
    sizes = [n for n in split(mine, int(env.get("LOAD_PROCESSES", "1"))) if n]
    rate = float(env["LOAD_CONNECT_RATE"]) if env.get("LOAD_CONNECT_RATE") else None
    ctx = mp.get_context("spawn")
    out: Any = ctx.Queue()
    stop = ctx.Event()
    progress: Any = ctx.Array("q", max(1, len(sizes)))
    specs = [
        SubscriberSpec(
            i,
            env["LOAD_WS_URL"],
            n,
            env["LOAD_RUN_ID"],
            env["LOAD_SYMBOL"],
            max_s=float(env.get("LOAD_MAX_S", "600")),
            connect_rate=rate / len(sizes) if rate else None,
            start_at=float(env["LOAD_START_AT"]),
            msg_type=env.get("LOAD_MSG_TYPE", "market_data"),
        )
        for i, n in enumerate(sizes)
    ]
    subs = spawn_subscribers(ctx, specs, stop, progress, out)
    ready_of: dict[int, dict[str, Any]] = {}
    results: dict[int, dict[str, Any]] = {}
    deadline = time.time() + max(0.0, float(env["LOAD_START_AT"]) - time.time()) + READY_TIMEOUT_S
    while len(ready_of) + len(results) < len(subs) and time.time() < deadline:
        _take(out, ready_of, results, timeout=0.5)
    write_json(
        folder / f"ready-{slot}.json",
        {
            "slot": slot,
            "processes": len(subs),
            "ready": len(ready_of),
            "connected": sum(r["connected"] for r in ready_of.values()),
            "failures": [f for r in ready_of.values() for f in r["failures"]][:5],
            "cpus": sorted(os.sched_getaffinity(0)),  # where it ran: the rig's cores, if pinned
        },
    )
    end = time.time() + float(env.get("LOAD_MAX_S", "600"))
    while not (folder / "stop").exists() and time.time() < end:
        (folder / f".progress-{slot}").write_text(str(sum(progress[:])))
        os.replace(folder / f".progress-{slot}", folder / f"progress-{slot}")
        time.sleep(PROGRESS_EVERY_S)
    stop.set()
    collect_until = time.time() + 30
    while len(results) < len(subs) and time.time() < collect_until:
        _take(out, ready_of, results, timeout=1.0)
    for p in subs:
        p.join(timeout=10)
        if p.is_alive():
            p.kill()
    parts = []
    for index in range(len(subs)):
        part = results.get(index) or {"name": f"subscriber process {index}", "error": "no result reported"}
        if "error" in part and index in ready_of:
            part = {**part, "connected": ready_of[index]["connected"], "connect_failures": ready_of[index]["failures"]}
        parts.append({**part, "name": part_name(slot, str(part["name"]))})
    write_json(folder / f"part-{slot}.json", parts)
    return 0


def _take(out: Any, ready_of: dict[int, Any], results: dict[int, Any], timeout: float) -> None:
    try:
        kind, index, payload = out.get(timeout=timeout)
    except queue.Empty:
        return
    (ready_of if kind == "ready" else results)[index] = payload


def main() -> None:
    sys.exit(run_worker(os.environ))


if __name__ == "__main__":
    main()
