"""Fault-tolerance stage: each scenario is traffic -> fault -> hold -> heal -> settle -> check."""

from __future__ import annotations

import asyncio
import time

import pytest
import requests

from wsrig.durability import run_durability
from wsrig.faults import FaultContext, get_fault
from wsrig.probe import backend_status, bot_stats, progress, record_judged, results_dir, run
from wsrig.resume_probe import run_resume_honesty
from wsrig.scenario import run_scenario
from wsrig.scenario_history import ScenarioHistory
from wsrig.scenario_judge import judge_durability, judge_resume, judge_scenario, judge_slow_client
from wsrig.slow_clients import run_slow_clients
from wsrig.stack import DockerStack
from wsrig.stats import LATENCY_OVER_TIME_COLUMNS, latency_over_time

pytestmark = pytest.mark.fault


@pytest.fixture(scope="module")
def ctx(cfg):
    fctx = FaultContext(cfg, DockerStack(cfg))
    yield fctx
    # Leave nothing broken behind, whatever happened.
    for service in (cfg.dashboard_service, cfg.bot_service, cfg.proxy_service):
        try:
            state = fctx.stack.state(service)["status"]
            if state == "paused":
                fctx.stack.unpause(service)
            elif state != "running":
                fctx.stack.start(service)
        except Exception as exc:  # report, but do not mask the test's own outcome
            print(f"cleanup of {service}: {exc}")
    requests.delete(cfg.proxy_control_url + "/faults", timeout=5)


def _judge(record, limits, history: ScenarioHistory) -> None:
    """Let the judge decide a fault scenario (``wsrig judge`` can do it again offline)."""
    result = judge_scenario(history, limits)
    if result.latency_samples:  # the report's latency-over-time chart, fault window shaded
        rows = latency_over_time(result.latency_samples)
        record.add_series(
            results_dir(), f"{result.name}_latency", "latency", LATENCY_OVER_TIME_COLUMNS, rows, unit="ms"
        )
    record_judged(record, history, result.serialize())


def _scenario(cfg, limits, name, fault, hold_key="hold_s", **kw) -> ScenarioHistory:
    return run(
        run_scenario(
            cfg,
            name,
            fault,
            hold_s=float(limits[hold_key]),
            recovery_bound_s=float(limits["recovery_bound_s"]),
            steady_s=float(limits["steady_s"]),
            settle_timeout_s=float(limits["settle_timeout_s"]),
            **kw,
        )
    )


def test_dashboard_offline_at_startup(cfg, ctx, record, limits):
    """The bot starts and trades with no dashboard, then connects once the dashboard starts."""
    fault = get_fault("offline", ctx, target="dashboard")

    async def restart_bot() -> None:
        await asyncio.to_thread(ctx.stack.restart, cfg.bot_service)
        progress("offline_at_startup: bot restarted while the dashboard is down")

    history = _scenario(cfg, limits, "dashboard_offline_at_startup", fault, during=restart_bot)
    history.promises.append("fresh_run_after_restart")
    _judge(record, limits, history)


def test_dashboard_crash(cfg, ctx, record, limits):
    """SIGKILL the backend during steady flow, restart it: nothing lost, no duplicate, in order."""
    _judge(record, limits, _scenario(cfg, limits, "dashboard_crash", get_fault("crash", ctx, target="dashboard")))


def test_acked_means_durable(cfg, ctx, record, limits):
    """Critical traffic at full speed from the rig's own publisher, the backend SIGKILLed at random
    moments mid-stream: every seq it acked before a kill is in its store after the restart."""
    history = run(
        run_durability(
            cfg,
            ctx.stack,
            kills=int(limits["durable_kills"]),
            segment_s=(float(limits["durable_segment_min_s"]), float(limits["durable_segment_max_s"])),
            window=int(limits["durable_window"]),
            restart_timeout_s=float(limits["durable_restart_timeout_s"]),
        )
    )
    record_judged(record, history, judge_durability(history))


def test_bot_crash(cfg, ctx, record, limits):
    """SIGKILL the bot, restart it (new run_id): the old run's data stays intact, trading resumes."""
    history = _scenario(cfg, limits, "bot_crash", get_fault("crash", ctx, target="bot"))
    history.promises.append("fresh_run_after_restart")
    _judge(record, limits, history)


def test_network_partition(cfg, ctx, record, limits):
    """Cut the bot's link with docker network disconnect (no RST): both ends notice by ping
    timeout within their ping interval + timeout, and the bot reconnects after the heal."""
    fault = get_fault("partition", ctx, target=cfg.proxy_service)
    history = _scenario(
        cfg,
        limits,
        "network_partition",
        fault,
        hold_key="partition_hold_s",
        sample_link_every_s=float(limits["link_sample_s"]),
    )
    history.measured.update(
        bot_ping_interval_s=float(cfg.setting("SYSTEM__WEBSOCKET_PING_INTERVAL", "2")),
        bot_ping_timeout_s=float(cfg.setting("SYSTEM__WEBSOCKET_PING_TIMEOUT", "4")),
        backend_ping_interval_s=float(cfg.setting("SYSTEM__PING_INTERVAL", "2")),
        backend_ping_timeout_s=float(cfg.setting("SYSTEM__PING_TIMEOUT", "4")),
    )
    history.promises.append("notices_cut")
    _judge(record, limits, history)


def test_backend_hang(cfg, ctx, record, limits):
    """docker pause the backend, then unpause: the stream resumes with nothing lost."""
    _judge(record, limits, _scenario(cfg, limits, "backend_hang", get_fault("hang", ctx, target="dashboard")))


def test_queue_overflow(cfg, ctx, record, limits):
    """An outage long enough to overflow the bot's ephemeral queue: drops declared exactly, memory bounded."""
    before = bot_stats(cfg)
    history = _scenario(cfg, limits, "queue_overflow", get_fault("blackhole", ctx), hold_key="overflow_hold_s")
    after = bot_stats(cfg)
    history.measured.update(rss_before=int(before.get("rss_bytes") or 0), rss_after=int(after.get("rss_bytes") or 0))
    history.promises.append("queue_overflow")
    _judge(record, limits, history)


def test_rapid_reconnect_cycles(cfg, ctx, record, limits):
    """20 reset cycles in a row: afterwards exactly one publisher, no fd or memory growth."""
    cycles = int(limits["reconnect_cycles"])
    before = bot_stats(cfg)
    fault = get_fault("reset_cycles", ctx, cycles=cycles)
    history = _scenario(cfg, limits, "rapid_reconnect_cycles", fault)
    time.sleep(1)
    after = bot_stats(cfg)
    status = backend_status(cfg)
    publishers = [p for p in status.get("publishers", []) if p.get("run_id") == after.get("run_id")]
    history.measured.update(
        cycles=cycles,
        publisher_connections=len(publishers),
        fds_before=int(before.get("open_fds") or 0),
        fds_after=int(after.get("open_fds") or 0),
        rss_before=int(before.get("rss_bytes") or 0),
        rss_after=int(after.get("rss_bytes") or 0),
        reconnects_before=int(before.get("reconnects", 0)),
        reconnects_after=int(after.get("reconnects", 0)),
    )
    history.promises.append("reconnect_cycles")
    _judge(record, limits, history)


def test_slow_link(cfg, ctx, record, limits):
    """Latency with jitter through the fault proxy: latency rises, nothing is lost, recovery after removal."""
    _judge(record, limits, _scenario(cfg, limits, "slow_link", get_fault("slow_link", ctx)))


def test_slow_subscriber(cfg, ctx, record, limits, rig_limits):
    """Other clients' latency with one client reading nothing and one reading slowly, against
    their own latency without them in the same run; each gets the run whole, once, in
    order; the non-reader is cut (1013) in bounded time; the bot trades on."""
    history = run(run_slow_clients(cfg, limits))
    rows = latency_over_time([(t / 1e9, ms) for t, ms in history.latencies()])
    record.add_series(results_dir(), "slow_subscriber_latency", "latency", LATENCY_OVER_TIME_COLUMNS, rows, unit="ms")
    record_judged(record, history, judge_slow_client(history, limits, rig_limits))


@pytest.mark.parametrize("hole", ["restart", "overflow"])
def test_resume_is_honest(cfg, ctx, record, limits, hole):
    """A client resumes across a hole the backend cannot fill (its restart, or its ring
    overflowed): resumed=true only if every seq after the resume point arrives; stored
    critical envelopes are replayed and live ones arrive either way."""
    history = run(
        run_resume_honesty(
            cfg,
            ctx.stack,
            hole=hole,
            before=int(limits["resume_before"]),
            live=int(limits["resume_live"]),
            ring_size=int(cfg.setting("SYSTEM__RING_BUFFER_SIZE", "50000")),
            window=int(limits["resume_window"]),
            timeout_s=float(limits["resume_timeout_s"]),
        )
    )
    record_judged(record, history, judge_resume(history))
