"""Distributed load, the Docker glue: a single-node swarm, the worker service, cleanup.

Thin: every command is built in ``wsrig.load.workers``; this runs them with the docker
CLI. ``SwarmWorkers`` is held for one stage: it initialises a swarm when none is active
(``docker swarm init --advertise-addr 127.0.0.1``), removes what a killed run left (by
label), and on exit removes its services and leaves the swarm only if it created it. A
marker file keeps "we created it" across a killed run, so the next start still leaves
it when done. Seen on Debian's docker.io 20.10: a create without ``-d`` never returns
when tasks exit by design, so tasks are polled (``docker service ps``); finished tasks'
containers stay (task history), so they are removed here.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wsrig.load.workers import ROLE_LABEL, WORKER_ROLE, WorkerPlan, leftover_containers, leftover_services
from wsrig.load.workers import service_create_args as create_args

__all__ = ["SwarmError", "SwarmWorkers", "task_states"]

#: A task in one of these states will not run (``docker service ps`` CurrentState's first word).
FAILED_STATES = ("Failed", "Rejected", "Orphaned", "Remove", "Shutdown")


class SwarmError(RuntimeError):
    """Docker refused a swarm step; the message has its stderr."""


def _docker(*args: str, timeout: float = 60, check: bool = True) -> str:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise SwarmError(f"docker {' '.join(args[:3])} failed ({proc.returncode}): {proc.stderr.strip()[-1500:]}")
    return proc.stdout


def task_states(text: str) -> dict[int, tuple[str, str]]:
    """``docker service ps --format '{{.Slot}}|{{.CurrentState}}|{{.Error}}'`` -> slot ->
    (state's first word, error); the newest task per slot is listed first."""
    out: dict[int, tuple[str, str]] = {}
    for line in text.splitlines():
        slot, _, rest = line.partition("|")
        state, _, error = rest.partition("|")
        if slot.strip().isdigit() and int(slot) not in out:
            out[int(slot)] = ((state.split() or [""])[0], error.strip())
    return out


@dataclass
class SwarmWorkers:
    """The swarm side of ``--workers N`` for one stage (a context manager)."""

    workers: int
    image: str
    marker: Path
    say: Callable[[str], None] = print
    created_swarm: bool = False
    services: list[str] = field(default_factory=list)

    def __enter__(self) -> SwarmWorkers:
        state = _docker("info", "--format", "{{.Swarm.LocalNodeState}}").strip()
        if state == "inactive":
            _docker("swarm", "init", "--advertise-addr", "127.0.0.1")
            self.marker.parent.mkdir(parents=True, exist_ok=True)
            self.marker.write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            self.created_swarm = True
            self.say("workers: initialised a single-node swarm (docker swarm init --advertise-addr 127.0.0.1)")
        elif self.marker.exists():
            self.created_swarm = True  # a killed run of ours created it: still ours to leave
            self.say("workers: the swarm an earlier run of the rig initialised is still active; it will be left")
        else:
            self.say(f"workers: using the active swarm (state {state}); it stays as it was")
        for line in self.remove_leftovers(running_too=True):
            self.say(f"workers: removed leftover {line}")
        return self

    def __exit__(self, *exc: object) -> None:
        for name in list(self.services):
            self.remove(name)
        if self.created_swarm:
            _docker("swarm", "leave", "--force", check=False)
            self.marker.unlink(missing_ok=True)
            self.say("workers: left the swarm the rig had initialised (docker swarm leave --force)")

    # --- one scenario's service ---------------------------------------------------

    def create(self, plan: WorkerPlan) -> None:
        """Deploy ``plan`` detached; poll with ``states``."""
        _docker(*create_args(plan)[1:])
        self.services.append(plan.service)

    def states(self, service: str) -> dict[int, tuple[str, str]]:
        text = _docker(
            "service", "ps", service, "--no-trunc", "--format", "{{.Slot}}|{{.CurrentState}}|{{.Error}}", check=False
        )
        return task_states(text)

    def failed(self, service: str) -> dict[int, str]:
        """Slot -> why its task will not run (rejected, failed), with docker's error."""
        return {
            slot: f"worker {slot}: task {state}{': ' + error if error else ''}"
            for slot, (state, error) in sorted(self.states(service).items())
            if state in FAILED_STATES
        }

    def remove(self, service: str) -> None:
        """The service, then its tasks' containers (the engine keeps exited ones)."""
        _docker("service", "rm", service, check=False)
        if service in self.services:
            self.services.remove(service)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and self._worker_containers(running_too=True):
            time.sleep(0.5)
        self.remove_leftovers(running_too=False)

    # --- leftovers ----------------------------------------------------------------

    def _inspect(self, kind: str, ids: list[str]) -> list[dict[str, Any]]:
        if not ids:
            return []
        return list(json.loads(_docker(kind, "inspect", *ids, check=False) or "[]"))

    def _worker_containers(self, running_too: bool) -> list[str]:
        ids = _docker("ps", "-aq", "--filter", f"label={ROLE_LABEL}={WORKER_ROLE}", check=False).split()
        return leftover_containers(self._inspect("container", ids), running_too=running_too)

    def remove_leftovers(self, running_too: bool) -> list[str]:
        """Load-worker services (all but this stage's own) and containers, found by label."""
        removed = []
        if running_too:
            ids = _docker("service", "ls", "-q", check=False).split()
            for name in leftover_services(self._inspect("service", ids), keep=self.services):
                _docker("service", "rm", name, check=False)
                removed.append(f"service {name}")
        for cid in self._worker_containers(running_too):
            _docker("rm", "-f", cid, check=False)
            removed.append(f"container {cid[:12]}")
        return removed
