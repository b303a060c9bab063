"""Distributed load, the pure part: what a swarm of load workers is told and what it leaves.

A load run's subscribers can run as a replicated Docker Swarm service (``--workers N``,
DESIGN.md section 11) instead of processes of the rig: each task reads its slot
(``{{.Task.Slot}}``, 1..N for ``--mode replicated``) and the worker count from its
environment, takes its share of the subscribers (``share``), connects at the start
time it was given, and writes its part files into a bind-mounted folder that the
coordinator (the probe on the host) reads (``FILES``). Nothing here runs Docker:
``service_create_args`` builds the command, ``leftover_services`` reads ``docker
service inspect``; ``wsrig.load.swarm`` runs them, ``wsrig.load.worker`` is the task.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ROLE_LABEL",
    "WORKER_ROLE",
    "WorkerPlan",
    "leftover_containers",
    "leftover_services",
    "part_name",
    "service_create_args",
    "share",
    "split",
]

#: Every service, task container and image of the rig carries ``wsrig.project=wsrig``;
#: load workers also carry this role, which is what a later start looks for.
PROJECT_LABEL = "wsrig.project"
ROLE_LABEL = "wsrig.role"
WORKER_ROLE = "load-worker"
RUN_LABEL = "wsrig.run_id"
#: Where the task sees the coordinator's folder for this run.
RESULTS_MOUNT = "/results"


def split(total: int, parts: int) -> list[int]:
    """``total`` as ``parts`` near-equal shares, the larger ones first (no empty share
    unless ``total`` is 0)."""
    parts = max(1, min(parts, total)) if total else 1
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def share(total: int, workers: int, slot: int) -> int:
    """Slot ``slot``'s (1..workers) share of ``total`` subscribers; 0 when there are more
    workers than subscribers."""
    if not 1 <= slot <= workers:
        raise ValueError(f"slot {slot} outside 1..{workers}")
    shares = split(total, workers) if total >= workers else [1] * total + [0] * (workers - total)
    return shares[slot - 1]


def part_name(slot: int, name: str) -> str:
    """A worker's part is named by its slot, so a rig-health reason names the worker."""
    return f"worker {slot} {name}"


@dataclass(frozen=True)
class WorkerPlan:
    """One scenario's run on ``workers`` swarm tasks: where they connect, what they read."""

    service: str
    image: str
    workers: int
    ws_url: str
    run_id: str
    symbol: str
    msg_type: str
    subscribers: int
    #: Unix time (s) at which every worker starts connecting: one schedule for all.
    start_at: float
    results_dir: str
    suite_run_id: str = ""
    connect_rate: float | None = None
    processes: int = 1
    #: The rig's cores (``wsrig.cpusets``): a worker pins itself there, off the system's.
    cpus: str = ""
    max_s: float = 600.0
    network: str = "host"

    def env(self) -> dict[str, str]:
        """The task's environment; ``WORKER_SLOT`` is rendered per task by swarm."""
        out = {
            "WORKER_SLOT": "{{.Task.Slot}}",
            "WORKERS": str(self.workers),
            "LOAD_WS_URL": self.ws_url,
            "LOAD_RUN_ID": self.run_id,
            "LOAD_SYMBOL": self.symbol,
            "LOAD_MSG_TYPE": self.msg_type,
            "LOAD_SUBSCRIBERS": str(self.subscribers),
            "LOAD_PROCESSES": str(self.processes),
            "LOAD_START_AT": f"{self.start_at:.3f}",
            "LOAD_MAX_S": f"{self.max_s:g}",
            "LOAD_RESULTS": RESULTS_MOUNT,
        }
        if self.connect_rate:
            # the plan's arrival rate is the whole run's: each worker opens its share of it
            out["LOAD_CONNECT_RATE"] = f"{self.connect_rate / self.workers:g}"
        if self.cpus:
            out["WORKER_CPUS"] = self.cpus
        return out


def service_create_args(plan: WorkerPlan) -> list[str]:
    """``docker service create`` for ``plan``: detached (a create that waits never returns
    when tasks exit by design), replicated with one task per slot, never restarted (a
    worker that died is a rig error, not something to hide), labelled for cleanup, its
    results folder bind-mounted. ``--no-resolve-image``: the image is local, no registry.

    ``network`` ``host``: this kernel has no IPVS, so swarm's VIPs and ingress do not
    connect; on the host's network a task reaches the system where the rig does.
    """
    labels = {PROJECT_LABEL: "wsrig", ROLE_LABEL: WORKER_ROLE, RUN_LABEL: plan.suite_run_id or plan.run_id}
    args = [
        "docker",
        "service",
        "create",
        "-d",
        "--no-resolve-image",
        "--name",
        plan.service,
        "--mode",
        "replicated",
        "--replicas",
        str(plan.workers),
        "--restart-condition",
        "none",
        "--stop-grace-period",
        "5s",
        "--network",
        plan.network,
        "--mount",
        f"type=bind,source={plan.results_dir},target={RESULTS_MOUNT}",
    ]
    for key, value in labels.items():
        args += ["--label", f"{key}={value}", "--container-label", f"{key}={value}"]
    for key, value in plan.env().items():
        args += ["--env", f"{key}={value}"]
    return [*args, plan.image]


def _is_worker(labels: Mapping[str, Any] | None) -> bool:
    labels = labels or {}
    return labels.get(PROJECT_LABEL) == "wsrig" and labels.get(ROLE_LABEL) == WORKER_ROLE


def leftover_services(inspected: Iterable[Mapping[str, Any]], keep: Iterable[str] = ()) -> list[str]:
    """The load-worker services in ``docker service inspect`` output (by label, not by
    name), but ``keep``: what a killed run left, for the next start to remove. Other
    services on the swarm (someone else's, or the system's stack) are never touched."""
    kept = set(keep)
    out = []
    for svc in inspected:
        spec = svc.get("Spec") or {}
        name = str(spec.get("Name", ""))
        if _is_worker(spec.get("Labels")) and name not in kept:
            out.append(name)
    return sorted(out)


def leftover_containers(inspected: Iterable[Mapping[str, Any]], running_too: bool = False) -> list[str]:
    """Load-worker task containers in ``docker container inspect`` output: the exited
    ones (the engine keeps finished tasks' containers), or all with ``running_too`` (at
    the next start after a killed run)."""
    out = []
    for c in inspected:
        labels = (c.get("Config") or {}).get("Labels")
        running = bool((c.get("State") or {}).get("Running"))
        if _is_worker(labels) and (running_too or not running):
            out.append(str(c.get("Id", "")))
    return out
