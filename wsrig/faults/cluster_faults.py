"""Faults of the cluster topology (docs/CLUSTER.md): a replica, Redis, the link between them.

Each names its target by compose service (``RigConfig.replica_services``,
``redis_service``), so the same faults reach a cluster of the user's own. The rolling
restart waits for each replica to be back UP in the balancer before the next goes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial

import requests

from wsrig.faults.base import FaultContext, register
from wsrig.haproxy import BalancerReady
from wsrig.wait import wait_until

__all__ = [
    "CLIENT_NETWORK",
    "REDIS_NETWORK",
    "REPLICA_PORT",
    "RedisKill",
    "RedisPause",
    "ReplicaKill",
    "ReplicaPartition",
    "RollingRestart",
]

#: The compose network only Redis and the replicas join (docker-compose.cluster.yml).
REDIS_NETWORK = "redis-net"
#: The network the balancer reaches the replicas on, and their port there.
CLIENT_NETWORK = "bridge-net"
REPLICA_PORT = 8000


def _replica(ctx: FaultContext, replica: str) -> str:
    """A replica by service name or by number (``2`` -> the second listed)."""
    services = ctx.config.replica_services
    if not services:
        raise ValueError("not a cluster: RigConfig.replica_services is empty (RIG__TOPOLOGY=cluster)")
    if replica.isdigit():
        return services[int(replica) - 1]
    if replica not in services:
        raise ValueError(f"{replica!r} is not a replica ({', '.join(services)})")
    return replica


def _start_if_down(ctx: FaultContext, service: str) -> None:
    state = ctx.stack.state(service)["status"]
    if state == "paused":
        ctx.stack.unpause(service)
    elif state != "running":
        ctx.stack.start(service)


@dataclass
class ReplicaKill:
    """SIGKILL one backend replica; heal starts it again."""

    ctx: FaultContext
    replica: str = "1"
    name: str = "replica_kill"
    description: str = "SIGKILL one backend replica, then start it"

    def inject(self) -> None:
        self.ctx.stack.kill(_replica(self.ctx, self.replica))

    def heal(self) -> None:
        _start_if_down(self.ctx, _replica(self.ctx, self.replica))


@dataclass
class RedisKill:
    """SIGKILL Redis (the shared log); heal starts it, and it replays its AOF."""

    ctx: FaultContext
    name: str = "redis_kill"
    description: str = "SIGKILL Redis, then start it (AOF replay)"

    def inject(self) -> None:
        self.ctx.stack.kill(self.ctx.config.redis_service)

    def heal(self) -> None:
        _start_if_down(self.ctx, self.ctx.config.redis_service)


@dataclass
class RedisPause:
    """``docker pause`` Redis: connections stay open, nothing is answered; heal unpauses."""

    ctx: FaultContext
    name: str = "redis_pause"
    description: str = "docker pause Redis; unpause on heal"

    def inject(self) -> None:
        self.ctx.stack.pause(self.ctx.config.redis_service)

    def heal(self) -> None:
        _start_if_down(self.ctx, self.ctx.config.redis_service)


@dataclass
class ReplicaPartition:
    """Cut one replica from Redis (``redis-net`` only), not from the balancer or its clients."""

    ctx: FaultContext
    replica: str = "1"
    network: str = REDIS_NETWORK
    name: str = "replica_partition"
    description: str = "disconnect one replica from Redis's network only; reconnect on heal"

    def inject(self) -> None:
        self.ctx.stack.partition(_replica(self.ctx, self.replica), (self.network,))

    def heal(self) -> None:
        self.ctx.stack.heal(_replica(self.ctx, self.replica))


@dataclass
class RollingRestart:
    """Restart every replica one at a time (graceful stop, start), each back UP in the
    balancer before the next; ``restarted`` records ``[service, stop_ns, up_ns]``."""

    ctx: FaultContext
    up_timeout_s: float = 30.0
    pause_s: float = 1.0
    name: str = "rolling_restart"
    description: str = "restart every replica in turn, each UP again before the next"
    restarted: list[list[object]] = field(default_factory=list)

    def _up(self, service: str) -> BalancerReady:
        cfg = self.ctx.config
        return BalancerReady(cfg.balancer_stats_url, [service], cfg.balancer_backend)

    def _answers_ready(self, service: str) -> bool:
        """The restarted process itself says ready (its own /ready, not the balancer's stale UP)."""
        ip = self.ctx.stack.address(service, CLIENT_NETWORK)
        return bool(ip) and requests.get(f"http://{ip}:{REPLICA_PORT}/ready", timeout=1).status_code == 200

    def inject(self) -> None:
        for service in self.ctx.config.replica_services:
            t0 = time.time_ns()
            self.ctx.stack.restart(service)
            wait_until(partial(self._answers_ready, service), self.up_timeout_s, 0.1, f"{service} /ready")
            ready = self._up(service)
            wait_until(ready.check, self.up_timeout_s, 0.1, ready.describe())
            self.restarted.append([service, t0, time.time_ns()])
            time.sleep(self.pause_s)

    def heal(self) -> None:
        for service in self.ctx.config.replica_services:
            _start_if_down(self.ctx, service)


register("replica_kill")(ReplicaKill)
register("redis_kill")(RedisKill)
register("redis_pause")(RedisPause)
register("replica_partition")(ReplicaPartition)
register("rolling_restart")(RollingRestart)
