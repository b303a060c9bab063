"""One cluster fault scenario: a fleet of clients through the balancer, the cluster watched,
``wsrig.scenario.run_scenario`` around the fault, the shared log read back from Redis.

Thin glue that only drives and records (into ``ScenarioHistory.measured``, described in
``wsrig.cluster_judge``); ``wsrig.scenario_judge`` decides. Each replica is also read on
its own HTTP API at its address on the compose network (the host reaches it; the rig
never goes into a container), because the balancer only shows the replicas as a whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

from wsrig.config import RigConfig
from wsrig.faults.base import Fault
from wsrig.faults.cluster_faults import CLIENT_NETWORK, REPLICA_PORT
from wsrig.haproxy import fetch_servers
from wsrig.probe import bot_stats, progress
from wsrig.scenario import ResumingSubscriber, _wait_settled, run_scenario
from wsrig.scenario_history import ScenarioHistory
from wsrig.stack import DockerStack

__all__ = ["LOG_KEY", "ClusterWatch", "read_log", "run_cluster_scenario"]

#: The Redis Stream the replicas append accepted envelopes to (the backend's Redis mode).
LOG_KEY = "wsrig:log"


class ClusterWatch:
    """Samples the bot, each replica's own API and the balancer every ``every_s`` (see
    ``wsrig.cluster_judge`` for the sample's shape)."""

    def __init__(self, cfg: RigConfig, stack: DockerStack, run_id: str, every_s: float) -> None:
        self.cfg, self.stack, self.run_id, self.every_s = cfg, stack, run_id, every_s
        self.samples: list[list[Any]] = []
        self._ips: dict[str, str | None] = {}
        self._http = requests.Session()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            self.samples.append(await asyncio.to_thread(self.sample))
            await asyncio.sleep(self.every_s)

    def _ip(self, service: str, refresh: bool = False) -> str | None:
        if refresh or service not in self._ips:
            try:
                self._ips[service] = self.stack.address(service, CLIENT_NETWORK)
            except Exception:  # container gone mid-fault
                self._ips[service] = None
        return self._ips[service]

    def replica(self, service: str) -> list[Any]:
        """``[/ready status, acked_seq of the run, holds the bot's publisher, clients]`` (None: no answer)."""
        out: list[Any] = [None, None, None, None]
        for attempt in (0, 1):
            ip = self._ip(service, refresh=attempt == 1)
            if not ip:
                continue
            base = f"http://{ip}:{REPLICA_PORT}"
            try:
                out[0] = self._http.get(base + "/ready", timeout=0.5).status_code
                status = self._http.get(base + "/api/websocket/status", timeout=0.5).json()
            except (requests.RequestException, ValueError):
                continue
            run = (status.get("runs") or {}).get(self.run_id) or {}
            out[1] = run.get("acked_seq")
            # the status may describe the whole cluster (publishers tagged with their replica,
            # ``replica_client_count`` this replica's own): take this replica's part
            own = status.get("replica")
            out[2] = any(
                p.get("run_id") == self.run_id and p.get("replica", own) == own for p in status.get("publishers", [])
            )
            out[3] = status.get("replica_client_count", status.get("client_count"))
            return out
        return out

    def sample(self) -> list[Any]:
        t = time.time_ns()
        try:
            s = bot_stats(self.cfg)
            bot: list[Any] | None = [int(s.get("acked_seq", 0)), int(s.get("last_seq", 0)), bool(s.get("connected"))]
        except Exception:
            bot = None
        replicas = {svc: self.replica(svc) for svc in self.cfg.replica_services}
        try:
            rows = fetch_servers(self.cfg.balancer_stats_url, self.cfg.balancer_backend, timeout=0.5)
            balancer: dict[str, list[Any]] | None = {n: [r.status, r.current_sessions] for n, r in rows.items()}
        except Exception:
            balancer = None
        return [t, bot, replicas, balancer]


def _entry(fields: Mapping[Any, Any]) -> dict[str, Any] | None:
    """An envelope's run_id, seq, type (and a gap's data) from a stream entry: the backend's
    fields (``run``, ``seq``, ``type``, ``p`` = the envelope's text; a rejected seq's type
    starts with ``!``), an envelope's own fields, or a JSON field holding it."""
    plain = {(k.decode() if isinstance(k, bytes) else str(k)): v for k, v in fields.items()}
    plain = {k: v.decode() if isinstance(v, bytes) else v for k, v in plain.items()}
    if "run" in plain and "seq" in plain:  # the backend's entry: run, seq, type, p (the envelope's text), r
        env = {"run_id": plain["run"], "seq": plain["seq"], "type": plain.get("type", "")}
        if env["type"] == "gap":
            with contextlib.suppress(ValueError, AttributeError):
                env["data"] = json.loads(plain.get("p") or "{}").get("data") or {}
        return env
    if "run_id" in plain and "seq" in plain:
        env = dict(plain)
        for key in ("data",):
            if isinstance(env.get(key), str) and env[key].startswith("{"):
                with contextlib.suppress(ValueError):
                    env[key] = json.loads(env[key])
        return env
    for value in plain.values():
        if isinstance(value, str) and value.startswith("{"):
            with contextlib.suppress(ValueError):
                env = json.loads(value)
                if isinstance(env, dict) and "run_id" in env and "seq" in env:
                    return env
    return None


def read_log(url: str, run_id: str, key: str = LOG_KEY) -> dict[str, Any]:
    """The run's entries in the shared log (``[[seq, type, gap ranges]]``) and Redis's fsync
    policy; ``read: False`` with the error when Redis could not be read."""
    import redis

    try:
        r = redis.Redis.from_url(url, socket_timeout=10)
        entries: list[list[Any]] = []
        keys = [key] + sorted(k.decode() for k in r.scan_iter(match=f"{key}:*") if k.decode() != key)
        for k in keys:
            for _id, fields in r.xrange(k) or []:
                env = _entry(fields or {})
                if env is None or env.get("run_id") != run_id:
                    continue
                data = env.get("data") or {}
                ranges = data.get("ranges") if isinstance(data, dict) and env.get("type") == "gap" else None
                entries.append([int(env["seq"]), str(env.get("type", "")), ranges or []])
        fsync = r.config_get("appendfsync").get("appendfsync")
        return {"read": True, "key": key, "keys": keys, "entries": entries, "appendfsync": fsync}
    except Exception as exc:  # Redis down or the stream not there: the judge says so
        return {"read": False, "error": f"{type(exc).__name__}: {exc}"}


async def run_cluster_scenario(
    cfg: RigConfig,
    stack: DockerStack,
    name: str,
    make_fault: Callable[[str], Fault],
    limits: Mapping[str, Any],
    promises: list[str],
    *,
    victim: str = "publisher",
    read_shared_log: bool = False,
) -> ScenarioHistory:
    """Fleet up, cluster watched, ``run_scenario`` with ``make_fault(victim)``, log read.

    ``victim``: the replica the fault hits: ``publisher`` (the one holding the bot's
    publisher, so its acks are what the fault tests), or a service name."""
    start = await _wait_settled(cfg, float(limits["settle_timeout_s"]))
    run_id, after = str(start["run_id"]), int(start["last_seq"])
    fleet = [ResumingSubscriber(cfg.stream_url, run_id, after) for _ in range(int(limits["fleet_clients"]))]
    for client in fleet:
        client.start()
    watch = ClusterWatch(cfg, stack, run_id, float(limits["sample_s"]))
    await asyncio.sleep(float(limits["fleet_connect_s"]))
    first = await asyncio.to_thread(watch.sample)
    replicas = first[2]
    chosen = victim
    if victim == "publisher":
        holders = [svc for svc, row in replicas.items() if row[2]]
        chosen = holders[0] if holders else cfg.replica_services[0]
    fault = make_fault(chosen)
    balancer = first[3] or {}
    progress(f"{name}: {len(fleet)} fleet clients; fault on {chosen}; replicas {json.dumps(replicas)}")
    watch.samples.append(first)
    watch.start()
    try:
        history = await run_scenario(
            cfg,
            name,
            fault,
            hold_s=float(limits["hold_s"]),
            recovery_bound_s=float(limits["recovery_bound_s"]),
            steady_s=float(limits["steady_s"]),
            settle_timeout_s=float(limits["settle_timeout_s"]),
        )
        # the fleet catches up with what was acked, then a last look at the cluster
        await asyncio.sleep(float(limits["fleet_settle_s"]))
    finally:
        await watch.stop()
        for client in fleet:
            await client.stop()
    try:  # what the bot had produced when the fleet stopped reading: the window the fleet is judged over
        fleet_last: int | None = int((await asyncio.to_thread(bot_stats, cfg))["last_seq"])
    except Exception:
        fleet_last = None
    row = replicas.get(chosen) or [None, None, None, None]
    history.measured.update(
        replicas=list(cfg.replica_services),
        victim=chosen,
        victim_sessions_before=int((balancer.get(chosen) or [None, 0])[1]),
        victim_fleet_before=int(row[3] or 0),
        victim_held_publisher=bool(row[2]),
        fleet=[{"after_seq": after, "log": _log_dict(c)} for c in fleet],
        fleet_last_seq=fleet_last,
        samples=watch.samples,
        restarted=[list(x) for x in getattr(fault, "restarted", [])],
    )
    if read_shared_log:
        history.measured["log"] = await asyncio.to_thread(read_log, cfg.redis_url, run_id)
    history.promises += promises
    return history


def _log_dict(client: ResumingSubscriber) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(client.log())
