"""Once a second: each container's CPU and memory (docker SDK) and the rig's own (psutil).

The rig shares the two cores with the system under test; its CPU share is reported
beside the backend's so a reader can tell whose saturation a number shows.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import psutil

from wsrig.stack import DockerStack, StatsSampler

__all__ = ["ResourceSampler", "mean_of"]

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
            cpu = mem = 0.0
            for proc in self._rig_processes():
                with contextlib.suppress(psutil.Error):
                    proc = seen.setdefault(proc.pid, proc)
                    cpu += proc.cpu_percent(None)
                    mem += proc.memory_info().rss
            self.rig_rows.append([round(time.time(), 3), "rig", round(cpu, 1), round(mem / 2**20, 1)])
            self._stop.wait(self.interval)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if self.docker is not None:
            self.docker.__exit__(*exc)

    @property
    def rows(self) -> list[list[Any]]:
        docker_rows = [
            [round(s["t"], 3), s["service"], s["cpu_percent"], round(s["mem_bytes"] / 2**20, 1)]
            for s in (self.docker.samples if self.docker is not None else [])
        ]
        return sorted(docker_rows + self.rig_rows[1:], key=lambda r: r[0])  # first psutil reading is 0


def mean_of(rows: list[list[Any]], source: str, column: int = 2) -> float:
    values = [float(r[column]) for r in rows if r[1] == source]
    return round(sum(values) / len(values), 1) if values else 0.0
