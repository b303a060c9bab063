"""Fault-tolerance stage: each scenario is traffic -> fault -> hold -> heal -> settle -> check."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from wsrig import messages
from wsrig.clients import Publisher, Subscriber
from wsrig.durability import run_durability
from wsrig.faults import FaultContext, get_fault
from wsrig.history import Produced
from wsrig.looplag import watch_loop
from wsrig.probe import backend_status, bot_stats, conclude, progress, run
from wsrig.resume_probe import run_resume_honesty
from wsrig.scenario import run_scenario
from wsrig.scenario_history import ClientLog, History, ScenarioHistory, SlowClientHistory, history_path
from wsrig.scenario_judge import judge_durability, judge_resume, judge_scenario, judge_slow_client
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


def _results() -> Path:
    results = Path(os.environ.get("RIG__RESULTS_DIR", "results/adhoc"))
    results.mkdir(parents=True, exist_ok=True)
    return results


def _save(record, history: History) -> str:
    """Write the history where ``wsrig judge`` finds it; its file name goes into the row."""
    return history.save(history_path(_results(), record.stage, history.name)).name


def _conclude(record, history: History, row: dict) -> None:
    """Record a judged row (with its history's file name) and its findings; end the test by it."""
    row = record.scenario(**row, history=_save(record, history))
    for f in row["findings"]:
        record.finding(f["severity"], f"{history.name}: {f['message']}")
    conclude(row)


def _judge(record, limits, history: ScenarioHistory) -> None:
    """Let the judge decide a fault scenario (``wsrig judge`` can do it again offline)."""
    result = judge_scenario(history, limits)
    if result.latency_samples:  # the report's latency-over-time chart, fault window shaded
        rows = latency_over_time(result.latency_samples)
        record.add_series(_results(), f"{result.name}_latency", "latency", LATENCY_OVER_TIME_COLUMNS, rows, unit="ms")
    _conclude(record, history, result.serialize())


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
    _conclude(record, history, judge_durability(history))


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


async def _until(condition: Callable[[], bool], timeout_s: float) -> None:
    """Poll ``condition`` for up to ``timeout_s``; whatever is still missing then is the judge's to report."""
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


def test_slow_subscriber(cfg, ctx, record, limits, rig_limits):
    """One client reads nothing: another client still gets every envelope of the run, once, in
    order, within the latency threshold; the slow one is cut (1013); the bot trades on."""
    from websockets.asyncio.client import connect

    hold, settle_s = float(limits["slow_client_hold_s"]), float(limits["settle_timeout_s"])
    status_before = backend_status(cfg)

    async def body() -> SlowClientHistory:
        # The slow client: a raw socket-level reader that never reads (tiny receive buffer).
        slow = await connect(cfg.stream_url, max_queue=1, max_size=2**24, ping_interval=None)
        await slow.send(json.dumps(messages.subscribe(snapshot=False)))
        bot_before = await asyncio.to_thread(bot_stats, cfg)
        bot_run = bot_before["run_id"]
        async with (
            watch_loop("normal client") as lag,
            Subscriber(cfg.stream_url, messages.subscribe(snapshot=False)) as normal,
        ):
            progress(f"slow_subscriber: one client reads nothing for {hold:.0f}s while 4 KB frames flow")
            async with Publisher(cfg.ingest_url, cfg.auth_token) as pub:
                first_seq = pub.seq + 1
                data = dict(messages.SAMPLE_DATA["market_data"], padding="x" * 4096)
                t_end = time.monotonic() + hold
                while time.monotonic() < t_end:
                    for _ in range(20):
                        await pub.publish("market_data", data)
                    await asyncio.sleep(0.05)
                produced = Produced(pub.run_id, last_seq=pub.seq, first_seq=first_seq)
                # Everything sent is acked (validated, broadcast) before the other client is read.
                await _until(lambda: pub.acked >= produced.last_seq, settle_s)
            seen = lambda: max((f.get("seq", 0) for _, f in normal.frames if f.get("run_id") == pub.run_id), default=0)  # noqa: E731
            await _until(lambda: seen() >= produced.last_seq, settle_s)
            latencies = [(recv - f["ts_ns"]) / 1e6 for recv, f in normal.frames if f.get("run_id") == bot_run]
            other = ClientLog.of(normal.frames, 1, [], [])
        status = await asyncio.to_thread(backend_status, cfg)
        bot_after = await asyncio.to_thread(bot_stats, cfg)
        code = slow.close_code
        slow.transport.abort()
        return SlowClientHistory(
            name="slow_subscriber",
            produced={"run_id": produced.run_id, "first_seq": produced.first_seq, "last_seq": produced.last_seq},
            other=other,
            latencies_ms=latencies,
            slow_close_code=code,
            status_before=status_before,
            status_after=status,
            bot_before=bot_before,
            bot_after=bot_after,
            rig=[lag.health().serialize()],
        )

    history = run(body())
    _conclude(record, history, judge_slow_client(history, limits, rig_limits))


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
    _conclude(record, history, judge_resume(history))
