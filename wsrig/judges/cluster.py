"""The cluster stage's measurement probe: ``connections_10k`` (its fault scenarios are
``ScenarioHistory``s judged by ``wsrig.scenario_judge`` with ``wsrig.cluster_judge``'s promises).

Many clients through the balancer, held with live traffic: every client connected and
received every message; connect P99; each replica's memory per connection it held;
HAProxy's and Redis's CPU as figures. The count and the connect P99 are timing-like on a
host the rig shares: a rig whose own health broke its limits makes the row ``invalid``
(with the reasons), a healthy rig that could not hold the count makes it ``failed``;
loss, duplicates and closes fail whatever the rig did (``wsrig.judges.load.timed``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from wsrig.judges.base import Check, Rule, Verdict
from wsrig.judges.load import LoadRun, rig_limits, timed

__all__ = ["RULES", "memory_per_connection_kb", "service_cpu"]


def memory_per_connection_kb(
    idle_mb: Mapping[str, float], connected_mb: Mapping[str, float], sessions: Mapping[str, int]
) -> dict[str, float | None]:
    """Each replica's memory growth from idle to all connected, per client it held (KiB)."""
    out: dict[str, float | None] = {}
    for svc, idle in idle_mb.items():
        held, now = int(sessions.get(svc, 0)), connected_mb.get(svc)
        out[svc] = None if now is None or held <= 0 else round((float(now) - float(idle)) * 1024 / held, 1)
    return out


def service_cpu(rows: Sequence[Sequence[Any]], service: str) -> dict[str, float]:
    """Mean and peak CPU % of one container over the resource samples ``[t, source, cpu, mem]``."""
    cpu = [float(r[2]) for r in rows if r[1] == service]
    return {"mean": round(sum(cpu) / len(cpu), 1), "max": round(max(cpu), 1)} if cpu else {}


def _connections(m: Mapping[str, Any], limits: Mapping[str, Any]) -> Verdict:
    """``connections_target`` clients through the balancer, held ``connections_hold_s`` with live traffic."""
    run = LoadRun(m["runs"]["connections_10k"])
    per_conn = memory_per_connection_kb(m["memory_idle_mb"], m["memory_connected_mb"], m["sessions"])
    worst = max((v for v in per_conn.values() if v is not None), default=None)
    clients = Check("clients connected", run.merged.connected, limits["connections_target"], ">=", "")
    timing = [
        clients,
        Check("connect P99", run.merged.connect.summary().p99, limits["connect_p99_ms"], "<", "ms"),
        Check(
            "replica memory per 1000 connections",
            round(worst * 1000 / 1024, 1) if worst is not None else float("inf"),
            limits["memory_per_1000_connections_mb"],
            "<",
            "MB",
        ),
    ]
    verdict = timed(run, rig_limits(limits), timing)
    resources = m.get("resources", [])
    figures = verdict.figures(
        run,
        connections_target=limits["connections_target"],
        sessions_per_replica=dict(m["sessions"]),
        memory_per_connection_kb=per_conn,
        haproxy_cpu_percent=service_cpu(resources, m.get("balancer", "haproxy")),
        redis_cpu_percent=service_cpu(resources, m.get("redis", "redis")),
        replica_cpu_percent={svc: service_cpu(resources, svc) for svc in m["memory_idle_mb"]},
        open_files_limit=m.get("open_files_limit"),
    )
    return timing, verdict.findings, figures


RULES: dict[str, Rule] = {"connections_10k": _connections}
