"""Stack control behind one small interface; Docker (compose + SDK) is the first one.

Probes ask a ``Stack`` to kill, pause or partition a service and never care how.
Compose brings the system up and down (through ``scripts/compose.sh``, which picks
``docker compose`` v2 or ``docker-compose`` v1); the docker SDK does the faults,
because it is fast and gives typed answers.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from wsrig.config import RigConfig

__all__ = ["DockerStack", "Stack", "StackError", "StatsSampler", "docker_client", "remove_leftovers"]

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
RIG_LABEL = "wsrig.project"


class StackError(RuntimeError):
    """The stack could not do what was asked; the message says what and why."""


class Stack(Protocol):
    """What probes and faults may do to the system under test."""

    def up(self) -> None: ...
    def down(self) -> None: ...
    def containers(self) -> list[Any]: ...
    def limit_cpus(self, service: str, cpus: float) -> None: ...
    def kill(self, service: str) -> None: ...
    def start(self, service: str) -> None: ...
    def restart(self, service: str) -> None: ...
    def pause(self, service: str) -> None: ...
    def unpause(self, service: str) -> None: ...
    def partition(self, service: str, networks: tuple[str, ...] = ()) -> list[str]: ...
    def heal(self, service: str) -> None: ...
    def stats(self, service: str) -> dict[str, Any]: ...
    def logs(self, service: str, tail: int | None = None) -> str: ...


def docker_client() -> Any:
    """A docker SDK client, or StackError saying why there is none."""
    import docker

    try:
        # (mypy sees the repo's docker/ folder as a namespace package, hence the ignore)
        client = docker.from_env(timeout=30)  # type: ignore[attr-defined]
        client.ping()
        return client
    except Exception as exc:  # docker raises several unrelated types here
        raise StackError(f"no Docker engine reachable ({exc}); run scripts/setup_docker.sh as root") from exc


def remove_leftovers(project: str) -> list[str]:
    """Remove containers, networks and volumes of ``project`` left by an earlier run.

    Volumes too: every suite run starts from empty data, so state written by an older
    image (or a crashed run) cannot leak into this run's verdicts.
    """
    client = docker_client()
    removed = []
    for c in client.containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={project}"}):
        c.remove(force=True)
        removed.append(f"container {c.name}")
    for n in client.networks.list(filters={"label": f"{PROJECT_LABEL}={project}"}):
        try:
            n.remove()
            removed.append(f"network {n.name}")
        except Exception as exc:  # still in use by a foreign container: say so
            removed.append(f"network {n.name} NOT removed: {exc}")
    for v in client.volumes.list(filters={"label": f"{PROJECT_LABEL}={project}"}):
        try:
            v.remove(force=True)
            removed.append(f"volume {v.name}")
        except Exception as exc:  # in use by a foreign container: say so
            removed.append(f"volume {v.name} NOT removed: {exc}")
    return removed


@dataclass
class DockerStack:
    """The compose project of this repository, driven through compose and the SDK."""

    config: RigConfig
    #: service -> the networks ``partition`` took it off, for ``heal``
    _partitioned: dict[str, list[str]] = field(default_factory=dict, init=False, repr=False)

    # --- compose ---------------------------------------------------------------

    def _compose(self, *args: str, timeout: float = 600) -> str:
        script = self.config.root / "scripts" / "compose.sh"
        # The topology picks the compose files (scripts/compose.sh reads it from here).
        env = {**os.environ, "COMPOSE_PROJECT_NAME": self.config.compose_project, "RIG__TOPOLOGY": self.config.topology}
        proc = subprocess.run(
            [str(script), *args], cwd=self.config.root, env=env, capture_output=True, text=True, timeout=timeout
        )
        if proc.returncode != 0:
            raise StackError(f"compose {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        return proc.stdout

    def up(self, services: tuple[str, ...] = ()) -> None:
        self._compose("up", "-d", "--no-build", *services)

    def down(self) -> None:
        self._compose("down", "-v", "--remove-orphans", "--timeout", "5")

    # --- containers --------------------------------------------------------------

    def container(self, service: str) -> Any:
        client = docker_client()
        found = client.containers.list(
            all=True,
            filters={"label": [f"{PROJECT_LABEL}={self.config.compose_project}", f"{SERVICE_LABEL}={service}"]},
        )
        if not found:
            raise StackError(f"no container for service {service!r} in project {self.config.compose_project!r}")
        return found[0]

    def containers(self) -> list[Any]:
        """Every running container of this compose project (the whole system under test)."""
        return list(
            docker_client().containers.list(filters={"label": f"{PROJECT_LABEL}={self.config.compose_project}"})
        )

    def limit_cpus(self, service: str, cpus: float) -> None:
        """Cap ``service`` at ``cpus`` cores (CFS quota); 0 lifts the cap. Self-tests slow a backend with it."""
        quota = int(cpus * 100_000) if cpus > 0 else -1
        self.container(service).update(cpu_period=100_000, cpu_quota=quota)

    def kill(self, service: str) -> None:
        """SIGKILL: no graceful shutdown, as in a crash."""
        self.container(service).kill(signal="SIGKILL")

    def start(self, service: str) -> None:
        self.container(service).start()

    def restart(self, service: str) -> None:
        self.container(service).restart(timeout=5)

    def stop(self, service: str) -> None:
        self.container(service).stop(timeout=5)

    def pause(self, service: str) -> None:
        self.container(service).pause()

    def unpause(self, service: str) -> None:
        self.container(service).unpause()

    def _networks(self, service: str) -> list[str]:
        c = self.container(service)
        c.reload()
        return list(c.attrs["NetworkSettings"]["Networks"].keys())

    def partition(self, service: str, networks: tuple[str, ...] = ()) -> list[str]:
        """Disconnect ``service`` from every network, or only from ``networks`` (compose
        names, e.g. ``redis-net``: the cluster's Redis link alone): no RST, packets just vanish."""
        client = docker_client()
        c = self.container(service)
        names = self._networks(service)
        if networks:
            names = [n for n in names if n in networks or any(n.endswith(f"_{want}") for want in networks)]
            if not names:
                raise StackError(f"{service} is on none of the networks {', '.join(networks)}")
        self._partitioned[service] = self._partitioned.get(service, []) + names
        for name in names:
            client.networks.get(name).disconnect(c)
        return names

    def heal(self, service: str) -> None:
        """Reconnect ``service`` to the networks ``partition`` took, with its DNS alias."""
        client = docker_client()
        c = self.container(service)
        for name in self._partitioned.pop(service, []):
            client.networks.get(name).connect(c, aliases=[service])

    def address(self, service: str, network: str) -> str | None:
        """``service``'s IP address on the compose network ``network`` (None: not on it, or gone).
        The rig reads a cluster replica's own HTTP API there, beside the balancer."""
        c = self.container(service)
        c.reload()
        for name, net in (c.attrs["NetworkSettings"]["Networks"] or {}).items():
            if name == network or name.endswith(f"_{network}"):
                return str(net.get("IPAddress") or "") or None
        return None

    def state(self, service: str) -> dict[str, Any]:
        c = self.container(service)
        c.reload()
        st = c.attrs["State"]
        return {
            "status": st.get("Status"),
            "health": (st.get("Health") or {}).get("Status"),
            "restarts": c.attrs.get("RestartCount", 0),
        }

    def last_lines(self, tail: int = 30) -> str:
        """The last lines of every service's log, for a readiness-timeout message."""
        parts = []
        for service in self.config.services:
            try:
                parts.append(f"--- {service} (last {tail} lines) ---\n{self.logs(service, tail=tail)}")
            except StackError as exc:
                parts.append(f"--- {service}: {exc}")
        return "\n".join(parts)

    def logs(self, service: str, tail: int | None = None) -> str:
        raw = self.container(service).logs(tail=tail if tail is not None else "all", timestamps=True)
        return raw.decode("utf-8", "replace")

    def stats(self, service: str) -> dict[str, Any]:
        """One CPU/memory sample (blocks about 1 s: call it off the hot path)."""
        s = self.container(service).stats(stream=False)
        cpu = s["cpu_stats"]
        pre = s["precpu_stats"]
        cpu_delta = cpu["cpu_usage"]["total_usage"] - pre.get("cpu_usage", {}).get("total_usage", 0)
        sys_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
        ncpu = cpu.get("online_cpus") or len(cpu["cpu_usage"].get("percpu_usage") or [1])
        mem = s.get("memory_stats", {})
        cache = mem.get("stats", {}).get("cache", 0)
        return {
            "cpu_percent": round(100.0 * cpu_delta / sys_delta * ncpu, 2) if sys_delta > 0 else 0.0,
            "mem_bytes": int(mem.get("usage", 0) - cache),
            "pids": s.get("pids_stats", {}).get("current"),
            "cpu_total_ns": int(cpu["cpu_usage"]["total_usage"]),
        }

    def image_ids(self) -> dict[str, str]:
        out = {}
        for service in self.config.services:
            try:
                c = self.container(service)
                out[service] = f"{c.image.tags[0] if c.image.tags else ''} {c.image.id[:19]}".strip()
            except StackError:
                continue
        return out


class StatsSampler:
    """Samples container stats every ``interval`` s in a thread (stats() blocks ~1 s)."""

    def __init__(self, stack: DockerStack, services: list[str], interval: float = 1.0) -> None:
        self.stack, self.services, self.interval = stack, services, interval
        self.samples: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> StatsSampler:
        for service in self.services:
            t = threading.Thread(target=self._run, args=(service,), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _run(self, service: str) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):  # container gone mid-fault: skip this sample
                self.samples.append({"t": time.time(), "service": service, **self.stack.stats(service)})
            self._stop.wait(self.interval)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)
