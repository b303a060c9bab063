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
from wsrig.checkers import Finding, judge_other_client
from wsrig.clients import Publisher, Subscriber
from wsrig.faults import FaultContext, get_fault
from wsrig.history import Produced, observed_from_frames
from wsrig.looplag import watch_loop
from wsrig.probe import backend_status, bot_stats, conclude, progress, run
from wsrig.righealth import ProcessHealth, RigHealth, scenario_status
from wsrig.scenario import ScenarioResult, run_scenario
from wsrig.stack import DockerStack
from wsrig.stats import LATENCY_OVER_TIME_COLUMNS, LatencySummary, latency_over_time

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


def _judge(record, result: ScenarioResult) -> None:
    if result.latency_samples:  # the report's latency-over-time chart, fault window shaded
        results = Path(os.environ.get("RIG__RESULTS_DIR", "results/adhoc"))
        results.mkdir(parents=True, exist_ok=True)
        rows = latency_over_time(result.latency_samples)
        record.add_series(results, f"{result.name}_latency", "latency", LATENCY_OVER_TIME_COLUMNS, rows, unit="ms")
    record.scenario(**result.serialize())
    for f in result.findings:
        record.finding(f.severity, f"{result.name}: {f.message}")
    assert result.passed, f"{result.name}: " + "; ".join(f.message for f in result.findings if f.severity == "error")


def _scenario(cfg, limits, name, fault, hold_key="hold_s", **kw):
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

    _judge(record, _scenario(cfg, limits, "dashboard_offline_at_startup", fault, during=restart_bot))


def test_dashboard_crash(cfg, ctx, record, limits):
    """SIGKILL the backend during steady flow, restart it: nothing lost, no duplicate, in order."""
    _judge(record, _scenario(cfg, limits, "dashboard_crash", get_fault("crash", ctx, target="dashboard")))


def test_bot_crash(cfg, ctx, record, limits):
    """SIGKILL the bot, restart it (new run_id): the old run's data stays intact, trading resumes."""
    _judge(record, _scenario(cfg, limits, "bot_crash", get_fault("crash", ctx, target="bot")))


def test_network_partition(cfg, ctx, record, limits):
    """Cut the bot's link with docker network disconnect (no RST): the bot notices by ping timeout."""
    fault = get_fault("partition", ctx, target=cfg.proxy_service)
    result = _scenario(cfg, limits, "network_partition", fault, hold_key="partition_hold_s")
    if result.extra.get("bot_reconnects") == 0:
        result.findings.append(Finding("error", "the bot never reconnected: it did not notice the dead link"))
    _judge(record, result)


def test_backend_hang(cfg, ctx, record, limits):
    """docker pause the backend, then unpause: the stream resumes with nothing lost."""
    _judge(record, _scenario(cfg, limits, "backend_hang", get_fault("hang", ctx, target="dashboard")))


def test_queue_overflow(cfg, ctx, record, limits):
    """An outage long enough to overflow the bot's ephemeral queue: drops declared exactly, memory bounded."""
    before = bot_stats(cfg)
    result = _scenario(cfg, limits, "queue_overflow", get_fault("blackhole", ctx), hold_key="overflow_hold_s")
    after = bot_stats(cfg)
    growth_mb = (int(after.get("rss_bytes") or 0) - int(before.get("rss_bytes") or 0)) / 2**20
    result.extra["bot_rss_growth_mb"] = round(growth_mb, 1)
    if result.declared_dropped == 0:
        result.findings.append(
            Finding("error", "the queue never overflowed (no declared drop): the scenario did not test overflow")
        )
    if growth_mb > float(limits["overflow_rss_growth_max_mb"]):
        result.findings.append(Finding("error", f"bot memory grew {growth_mb:.1f} MB during overflow"))
    _judge(record, result)


def test_rapid_reconnect_cycles(cfg, ctx, record, limits):
    """20 reset cycles in a row: afterwards exactly one publisher, no fd or memory growth."""
    cycles = int(limits["reconnect_cycles"])
    before = bot_stats(cfg)
    fault = get_fault("reset_cycles", ctx, cycles=cycles)
    result = _scenario(cfg, limits, "rapid_reconnect_cycles", fault)
    time.sleep(1)
    after = bot_stats(cfg)
    status = backend_status(cfg)
    fd_growth = int(after.get("open_fds") or 0) - int(before.get("open_fds") or 0)
    rss_growth = (int(after.get("rss_bytes") or 0) - int(before.get("rss_bytes") or 0)) / 2**20
    publishers = [p for p in status.get("publishers", []) if p.get("run_id") == after.get("run_id")]
    result.extra.update(publisher_connections=len(publishers), fd_growth=fd_growth, rss_growth_mb=round(rss_growth, 1))
    result.extra["bot_reconnects"] = int(after.get("reconnects", 0)) - int(before.get("reconnects", 0))
    if len(publishers) != 1:
        result.findings.append(
            Finding(
                "error",
                f"{len(publishers)} publisher connections for the bot's run after the cycles (expected exactly 1)",
            )
        )
    if result.extra["bot_reconnects"] < cycles:
        result.findings.append(
            Finding("error", f"only {result.extra['bot_reconnects']} reconnects for {cycles} resets")
        )
    if fd_growth > int(limits["reconnect_fd_growth_max"]):
        result.findings.append(Finding("error", f"bot leaked file descriptors: +{fd_growth}"))
    if rss_growth > float(limits["reconnect_rss_growth_max_mb"]):
        result.findings.append(Finding("error", f"bot memory grew {rss_growth:.1f} MB over the cycles"))
    _judge(record, result)


def test_slow_link(cfg, ctx, record, limits):
    """Latency with jitter through the fault proxy: latency rises, nothing is lost, recovery after removal."""
    _judge(record, _scenario(cfg, limits, "slow_link", get_fault("slow_link", ctx)))


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

    async def body() -> tuple[list[float], int | None, dict, ProcessHealth, Produced, list, dict, dict]:
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
            observed = observed_from_frames(normal.frames)
        status = await asyncio.to_thread(backend_status, cfg)
        bot_after = await asyncio.to_thread(bot_stats, cfg)
        code = slow.close_code
        slow.transport.abort()
        return latencies, code, status, lag.health(), produced, observed, bot_before, bot_after

    latencies, code, status, normal_health, produced, observed, bot_before, bot_after = run(body())
    other, findings = judge_other_client(produced, observed, bot_before, bot_after)
    rig = RigHealth((normal_health,))
    lag = rig.lagging(rig_limits)
    summary = LatencySummary.from_ms(latencies)
    growth_mb = (int(status.get("rss_bytes") or 0) - int(status_before.get("rss_bytes") or 0)) / 2**20
    cut = int(status["counters"].get("slow_client_disconnects", 0)) - int(
        status_before["counters"].get("slow_client_disconnects", 0)
    )
    if cut < 1:
        findings.append(
            Finding("error", "the slow client was never cut (slow_client_disconnects did not rise; policy: close 1013)")
        )
    timing = []
    if summary.p99 > float(limits["slow_client_p99_ms"]):
        timing.append(
            f"other client's P99 {summary.p99} ms > {limits['slow_client_p99_ms']} ms while one client was slow"
        )
    if growth_mb > float(limits["backend_rss_growth_max_mb"]):
        findings.append(Finding("error", f"backend memory grew {growth_mb:.1f} MB with a slow client"))
    # A late normal client only adds to its P99: a breach is then not the system's (invalid).
    status = scenario_status([f.message for f in findings if f.severity == "error"], timing, [], lag)
    if status == "failed":
        findings += [Finding("error", t) for t in timing]
    invalid = lag if status == "invalid" else []
    row = record.scenario(
        "slow_subscriber",
        status == "passed",
        status=status,
        invalid_reasons=invalid,
        rig_health=rig.serialize(),
        fault="slow client",
        latency_ms=summary.serialize(),
        slow_client_close_code=code,
        slow_client_disconnects=cut,
        backend_rss_growth_mb=round(growth_mb, 1),
        **other,
        findings=[f.serialize() for f in findings],
    )
    for f in findings:
        record.finding(f.severity, f"slow_subscriber: {f.message}")
    conclude(row)
