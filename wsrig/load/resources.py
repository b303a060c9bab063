"""Once a second: each container's CPU and memory (docker SDK), the rig's own and
Docker's userland port proxies' (psutil).

The rig shares the two cores with the system under test; its CPU share is reported
beside the backend's so a reader can tell whose saturation a number shows. The port
proxy copies every byte between the rig and a published port, so its share is the
price of that path (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from wsrig.stack import DockerStack, StatsSampler

__all__ = ["COLUMNS", "ResourceSampler", "port_path"]

COLUMNS = ["t", "source", "cpu_percent", "mem_mb"]


class ResourceSampler:
    """Context manager; ``rows`` holds ``[t, source, cpu_percent, mem_mb]``."""

    def __init__(self, stack: DockerStack | None, services: list[str], interval: float = 1.0) -> None:
        self.docker = StatsSampler(stack, services, interval) if stack is not None else None
        self.interval = interval
        self.rig_rows: list[list[Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run_rig, daemon=True)

    def __enter__(self) -> ResourceSampler:
        if self.docker is not None:
            self.docker.__enter__()
        self._thread.start()
        return self

    def _rig_processes(self) -> list[psutil.Process]:
        me = psutil.Process()
        return [me, *me.children(recursive=True)]

    def _run_rig(self) -> None:
        seen: dict[int, psutil.Process] = {}
        while not self._stop.is_set():
            now = round(time.time(), 3)
            for source, procs in (("rig", self._rig_processes()), ("docker-proxy", _docker_proxies())):
                cpu = mem = 0.0
                for proc in procs:
                    with contextlib.suppress(psutil.Error):
                        proc = seen.setdefault(proc.pid, proc)
                        cpu += proc.cpu_percent(None)
                        mem += proc.memory_info().rss
                if procs:
                    self.rig_rows.append([now, source, round(cpu, 1), round(mem / 2**20, 1)])
            self._stop.wait(self.interval)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if self.docker is not None:
            self.docker.__exit__(*exc)

    def cpu_s(self, service: str) -> float | None:
        """CPU seconds ``service`` used between the first and the last sample (cumulative counter)."""
        if self.docker is None:
            return None
        ticks = [s["cpu_total_ns"] for s in self.docker.samples if s["service"] == service and "cpu_total_ns" in s]
        return round((ticks[-1] - ticks[0]) / 1e9, 3) if len(ticks) >= 2 else None

    @property
    def rows(self) -> list[list[Any]]:
        """Docker samples and psutil samples by time (each source's first psutil reading is 0)."""
        docker_rows = [
            [round(s["t"], 3), s["service"], s["cpu_percent"], round(s["mem_bytes"] / 2**20, 1)]
            for s in (self.docker.samples if self.docker is not None else [])
        ]
        first: dict[str, int] = {}
        for i, row in enumerate(self.rig_rows):
            first.setdefault(row[1], i)
        rig_rows = [r for i, r in enumerate(self.rig_rows) if i not in first.values()]
        return sorted(docker_rows + rig_rows, key=lambda r: r[0])


def port_path() -> str:
    """How the rig's connections reach published ports: Docker's userland proxy or kernel NAT.

    Read from the local dockerd's command line and ``/etc/docker/daemon.json``;
    ``unknown`` when no dockerd runs on this host (a remote engine).
    """
    for proc in psutil.process_iter(["name", "cmdline"]):
        if proc.info["name"] != "dockerd":
            continue
        args = " ".join(proc.info["cmdline"] or [])
        off = "--userland-proxy=false" in args
        with contextlib.suppress(OSError, ValueError, AttributeError):
            off = off or json.loads(Path("/etc/docker/daemon.json").read_text()).get("userland-proxy") is False
        return "kernel NAT (dockerd --userland-proxy=false)" if off else "docker-proxy (Docker's userland proxy)"
    return "unknown (no local dockerd)"


def _docker_proxies() -> list[psutil.Process]:
    """Docker's userland port proxies: in the path of every rig connection to a published port."""
    return [p for p in psutil.process_iter(["name"]) if p.info["name"] == "docker-proxy"]
