"""Cluster stage (the cluster topology only; docs/CLUSTER.md): each scenario is steady
traffic -> fault -> heal -> settle, with a fleet of clients spread over the replicas by
the balancer, the cluster sampled throughout and, where durability is at stake, the
shared log read back from Redis. The probes drive and record; ``wsrig.scenario_judge``
(with ``wsrig.cluster_judge``'s promises) and ``wsrig.judges.cluster`` decide under
[*.cluster] in config/thresholds.toml, and ``wsrig judge`` decides again offline.
"""

from __future__ import annotations

import resource

import pytest

from wsrig.cluster_scenario import run_cluster_scenario
from wsrig.durability import run_durability
from wsrig.faults import FaultContext, get_fault
from wsrig.load.resources import ResourceSampler
from wsrig.load.runner import LoadPlan, run_load
from wsrig.load.schedule import Schedule
from wsrig.probe import progress, record_judged, run
from wsrig.scenario_history import ProbeHistory
from wsrig.scenario_judge import judge_history
from wsrig.stack import DockerStack

pytestmark = pytest.mark.cluster

#: Every cluster scenario's promises besides the stream's (wsrig.cluster_judge).
FLEET = ["fleet_whole"]


@pytest.fixture(scope="module")
def ctx(cfg):
    if not cfg.replica_services:
        pytest.skip("not a cluster (RIG__TOPOLOGY=cluster): no replicas to attack")
    fctx = FaultContext(cfg, DockerStack(cfg))
    yield fctx
    # Leave nothing broken behind, whatever happened.
    for service in (*cfg.replica_services, cfg.redis_service, cfg.bot_service):
        try:
            state = fctx.stack.state(service)["status"]
            if state == "paused":
                fctx.stack.unpause(service)
            elif state != "running":
                fctx.stack.start(service)
            fctx.stack.heal(service)
        except Exception as exc:  # report, but do not mask the test's own outcome
            print(f"cleanup of {service}: {exc}")


def _judge(record, cfg, history) -> None:
    thresholds = {"cluster": cfg.stage_thresholds("cluster"), "rig_health": cfg.stage_thresholds("rig_health")}
    record_judged(record, history, judge_history(history, thresholds, "cluster"))


def _scenario(cfg, ctx, limits, name, fault, promises, **kw):
    return run(
        run_cluster_scenario(
            cfg,
            ctx.stack,
            name,
            lambda victim: get_fault(fault, ctx, **({"replica": victim} if "replica" in fault else {})),
            limits,
            FLEET + promises,
            **kw,
        )
    )


def test_replica_kill(cfg, ctx, record, limits):
    """SIGKILL the replica holding the bot's publisher: its clients and the publisher reconnect
    through the balancer to the others and resume; nothing lost or doubled; it rejoins."""
    _judge(record, cfg, _scenario(cfg, ctx, limits, "replica_kill", "replica_kill", ["clients_moved", "rejoined"]))


def test_redis_kill(cfg, ctx, record, limits):
    """SIGKILL Redis and start it: acks stop while it is down, every seq acked is in the log
    after its AOF replay, and the stream resumes."""
    history = _scenario(
        cfg, ctx, limits, "redis_kill", "redis_kill", ["acks_stop", "acked_in_log"], read_shared_log=True
    )
    _judge(record, cfg, history)


def test_acked_durable_across_redis_kills(cfg, ctx, record, limits):
    """Critical traffic at full speed from the rig's own publisher through the balancer, Redis
    SIGKILLed at random moments mid-stream: every seq acked before a kill is in the shared log
    (every replica's store) after Redis's restart, none twice; the race an ack-before-append
    needs is in flight at each kill, which the bot's few messages a second rarely are."""
    history = run(
        run_durability(
            cfg,
            ctx.stack,
            kills=int(limits["durable_kills"]),
            segment_s=(float(limits["durable_segment_min_s"]), float(limits["durable_segment_max_s"])),
            window=int(limits["durable_window"]),
            restart_timeout_s=float(limits["durable_restart_timeout_s"]),
            read_every_s=0,
            service=cfg.redis_service,
            name="acked_durable_redis",
        )
    )
    _judge(record, cfg, history)


def test_redis_pause(cfg, ctx, record, limits):
    """docker pause Redis: ingest backs up, the bot's acked_seq does not advance while paused,
    nothing acked is missing from the log, flow resumes after the unpause."""
    history = _scenario(
        cfg, ctx, limits, "redis_pause", "redis_pause", ["acks_stop", "acked_in_log"], read_shared_log=True
    )
    _judge(record, cfg, history)


def test_replica_partition(cfg, ctx, record, limits):
    """Cut the publisher's replica from Redis only: its /ready fails, the balancer drains it,
    it acks nothing while cut, its clients are moved, then it rejoins UP."""
    history = _scenario(
        cfg,
        ctx,
        limits,
        "replica_partition",
        "replica_partition",
        ["replica_drained", "clients_moved", "acked_in_log"],
        read_shared_log=True,
    )
    _judge(record, cfg, history)


def test_rolling_restart(cfg, ctx, record, limits):
    """Restart every replica in turn, each UP again before the next: no client sees loss or duplicates."""
    history = _scenario(
        cfg, ctx, limits, "rolling_restart", "rolling_restart", ["every_replica_restarted"], victim="none"
    )
    _judge(record, cfg, history)


def _memory_mb(stack: DockerStack, services: tuple[str, ...]) -> dict[str, float]:
    return {svc: float(stack.stats(svc)["mem_bytes"]) / 2**20 for svc in services}


def test_connections_10k(cfg, ctx, record, limits):
    """As many clients as the target through the balancer, held with live traffic: all
    connected and receiving, connect P99, memory per connection per replica, HAProxy and
    Redis CPU. The rig's own health decides invalid vs failed when the count is not held."""
    n = int(limits["connections_target"])
    replicas = cfg.replica_services
    idle = _memory_mb(ctx.stack, replicas)
    seen: dict[str, object] = {}

    def all_connected() -> None:
        seen["memory"] = _memory_mb(ctx.stack, replicas)
        seen["sessions"] = {svc: int(_replica_row(cfg, ctx, svc)[3] or 0) for svc in replicas}

    plan = LoadPlan(
        "connections_10k",
        Schedule.constant(float(limits["connections_rate"]), float(limits["connections_hold_s"])),
        subscribers=n,
        processes=int(limits["connections_processes"]),
        settle_s=float(limits["connections_settle_s"]),
        connect_rate=float(limits["connections_connect_rate"]),
    )
    progress(f"connections_10k: opening {n} clients through the balancer")
    services = [*replicas, cfg.balancer_service, cfg.redis_service]
    with ResourceSampler(ctx.stack, services) as sampler:
        result = run_load(cfg, plan, None, progress, on_ready=all_connected)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    history = ProbeHistory(
        "connections_10k",
        "cluster",
        {
            "runs": {"connections_10k": result.serialize()},
            "memory_idle_mb": idle,
            "memory_connected_mb": seen.get("memory", {}),
            "sessions": seen.get("sessions", {}),
            "resources": sampler.rows,
            "balancer": cfg.balancer_service,
            "redis": cfg.redis_service,
            "open_files_limit": {"rig": [soft, hard], "containers": _container_nofile(ctx, cfg.balancer_service)},
        },
    )
    _judge(record, cfg, history)


def _replica_row(cfg, ctx, service):
    from wsrig.cluster_scenario import ClusterWatch

    return ClusterWatch(cfg, ctx.stack, "", 1.0).replica(service)


def _container_nofile(ctx, service) -> list[int] | None:
    """The open-files limit (soft, hard) the balancer's process got: its /proc limits on the host."""
    try:
        pid = int(ctx.stack.container(service).attrs["State"]["Pid"])
        with open(f"/proc/{pid}/limits") as f:
            line = next(x for x in f if x.startswith("Max open files"))
        return [int(v) for v in line.split()[3:5]]
    except Exception:
        return None
