"""HAProxy's stats CSV (``<stats url>;csv``): which replica is UP and how many sessions it holds.

The cluster topology's balancer is HAProxy (docs/CLUSTER.md); its stats page is the
rig's window on it: ``wsrig up`` waits until every replica is UP there, and the cluster
stage reads sessions per replica and the time a dead one is marked DOWN. Parsing is pure;
``fetch_servers`` and ``BalancerReady`` are the thin HTTP glue.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass

import requests

__all__ = ["BalancerReady", "ServerRow", "csv_url", "fetch_servers", "parse_servers"]


@dataclass(frozen=True)
class ServerRow:
    """One server line of a backend in the stats CSV."""

    name: str
    #: UP, DOWN, MAINT, "UP 1/2" (going down), "DOWN 1/2" (coming up), "no check" ...
    status: str
    #: open sessions now, and since start
    current_sessions: int
    total_sessions: int
    #: seconds since the last UP/DOWN change
    last_change_s: int
    #: the last health check's result, e.g. L7OK, L4CON, L4TOUT, L7STS
    check_status: str

    @property
    def up(self) -> bool:
        return self.status == "UP"


def _int(value: str) -> int:
    return int(value) if value.strip().lstrip("-").isdigit() else 0


def parse_servers(text: str, backend: str) -> dict[str, ServerRow]:
    """The server rows of ``backend`` in a stats CSV (its header line starts with ``# ``)."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("# "):
        raise ValueError("not an HAProxy stats CSV (no '# pxname,...' header)")
    reader = csv.DictReader(io.StringIO("\n".join([lines[0][2:], *lines[1:]])))
    rows = {}
    for row in reader:
        if row.get("pxname") != backend or row.get("svname") in ("FRONTEND", "BACKEND"):
            continue
        rows[row["svname"]] = ServerRow(
            name=row["svname"],
            status=row.get("status", ""),
            current_sessions=_int(row.get("scur", "")),
            total_sessions=_int(row.get("stot", "")),
            last_change_s=_int(row.get("lastchg", "")),
            check_status=row.get("check_status", ""),
        )
    return rows


def csv_url(stats_url: str) -> str:
    """HAProxy serves the CSV form of a stats page at the page's URL plus ``;csv``."""
    return stats_url.rstrip("/") + ";csv"


def fetch_servers(stats_url: str, backend: str, timeout: float = 2.0) -> dict[str, ServerRow]:
    resp = requests.get(csv_url(stats_url), timeout=timeout)
    resp.raise_for_status()
    return parse_servers(resp.text, backend)


@dataclass
class BalancerReady:
    """Every listed replica is UP in the balancer's stats (a ``wsrig.wait`` readiness strategy)."""

    stats_url: str
    servers: Sequence[str]
    backend: str

    def describe(self) -> str:
        return f"{', '.join(self.servers)} UP in {csv_url(self.stats_url)} (backend {self.backend})"

    def check(self) -> bool:
        rows = fetch_servers(self.stats_url, self.backend)
        return all(name in rows and rows[name].up for name in self.servers)
