"""Integration stage: one full trading session on a fresh stack, reconciled end to end.

The stage restarts the compose project with its volumes removed (wsrig.session), so
earlier stages leave nothing behind; a dashboard client subscribes before the bot
starts and so follows the stream from seq 1; the bot trades for ``session_s`` seconds
and ends its session by itself (SYSTEM__TRADING_SESSION_S). Then the bot's books, the
backend's state, store, status and metrics, and the client's view are reconciled
(wsrig.reconcile), the status timeline is written as CSV, and each container's log is
scanned (wsrig.logscan). The ordinary stack is brought back up afterwards.

Each test records what the session left behind in a ``ProbeHistory`` (the bot's
``/stats``, every source the reconciliation reads, the timeline's rows, the logs);
``wsrig.judges.integration`` decides, and ``wsrig judge`` can again, offline.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import pytest
import requests

from wsrig.clients import Subscriber, get_json
from wsrig.config import RigConfig
from wsrig.probe import backend_state, backend_status, bot_stats, progress, record_probe, results_dir, run
from wsrig.promtext import parse_metrics
from wsrig.reconcile import Sources
from wsrig.session import restore, start_backend_fresh, start_bot_for_session
from wsrig.stack import DockerStack, StackError
from wsrig.timeline import COLUMNS, StatusTimeline
from wsrig.wait import wait_until_async

pytestmark = pytest.mark.integration


@dataclass
class Played:
    """What the session left behind for the checks."""

    run_id: str = ""
    #: what the bot's ``/stats`` said when the rig stopped waiting for the session's end
    session_ended: bool = False
    duration_s: float = 0.0
    #: why the rig stopped waiting for acks and the client before they caught up (None: they did)
    settle_error: str | None = None
    sources: Sources | None = None
    timeline: list[list[Any]] = field(default_factory=list)
    logs: dict[str, str] = field(default_factory=dict)
    #: service -> why its log could not be read
    unread: dict[str, str] = field(default_factory=dict)


def _try(fetch: Any, cfg: RigConfig) -> dict[str, Any] | None:
    try:
        return dict(fetch(cfg))
    except Exception:  # not up yet / briefly unreachable: the caller polls again
        return None


def _gather(cfg: RigConfig, run_id: str, sub: Subscriber) -> Sources:
    """Every source, read once the session is over (nothing moves any more)."""

    def text(url: str) -> str:
        resp = requests.get(url, timeout=10)
        resp.raise_for_status()
        return resp.text

    base = cfg.dashboard_url
    return Sources(
        run_id=run_id,
        bot_state=get_json(cfg.bot_url + "/api/state"),
        bot_stats=bot_stats(cfg),
        bot_metrics=parse_metrics(text(cfg.bot_url + "/metrics")),
        backend_state=backend_state(cfg),
        backend_status=backend_status(cfg),
        backend_metrics=parse_metrics(text(base + "/metrics")),
        stored_trades=get_json(f"{base}/api/trades?run_id={run_id}&limit=1000000", timeout=30)["trades"],
        stored_orders=get_json(f"{base}/api/events?run_id={run_id}&types=order&limit=1000000", timeout=30)["events"],
        stream=[f for _, f in sub.frames],
        clients_received=len(sub.frames),
    )


async def _play(cfg: RigConfig, stack: DockerStack, limits: dict[str, Any], played: Played) -> None:
    session_s = float(limits["session_s"])
    settle_s = float(limits["settle_timeout_s"])
    sub = Subscriber(cfg.stream_url)  # everything, with snapshot, no resume: from seq 1 on
    await sub.connect()
    await sub.wait_for(lambda s: s.snapshot is not None, 10, "snapshot")
    with StatusTimeline(lambda: bot_stats(cfg), lambda: backend_status(cfg)) as timeline:
        progress(f"client subscribed; starting the bot for a {session_s:g} s trading session")
        await asyncio.to_thread(start_bot_for_session, cfg, stack, session_s)
        t0 = time.monotonic()
        stats: dict[str, Any] | None = None
        next_note = t0 + 10
        while time.monotonic() - t0 < session_s + 60:
            stats = await asyncio.to_thread(_try, bot_stats, cfg)
            if stats and stats.get("session_ended"):
                break
            if time.monotonic() >= next_note:
                next_note += 10
                trades = (stats or {}).get("trading", {}).get("trades")
                progress(
                    f"session {time.monotonic() - t0:.0f}/{session_s:g} s: {trades} trades, {len(sub.frames)} envelopes"
                )
            await asyncio.sleep(1)
        played.duration_s = round(time.monotonic() - t0, 1)
        played.session_ended = bool(stats and stats.get("session_ended"))
        played.run_id = str((stats or {}).get("run_id", ""))
        progress(f"session over after {played.duration_s} s; waiting for acks and the client to catch up")

        def caught_up() -> bool:
            b = _try(bot_stats, cfg)
            s = _try(backend_status, cfg)
            if not b or not s:
                return False
            last = int(b.get("last_seq", -1))
            seen = max((f["seq"] for _, f in sub.frames if f.get("run_id") == played.run_id), default=0)
            broadcast = int(s.get("counters", {}).get("broadcast", -1))
            return int(b.get("acked_seq", 0)) == last and seen == last and broadcast == len(sub.frames)

        try:
            await wait_until_async(
                lambda: asyncio.to_thread(caught_up), settle_s, 0.5, what="bot acked and client caught up"
            )
        except TimeoutError as exc:
            played.settle_error = str(exc)  # reconciled anyway: the table names what disagrees
        await asyncio.sleep(1)  # one more timeline sample of the quiet stack
    played.timeline = timeline.rows
    played.sources = await asyncio.to_thread(_gather, cfg, played.run_id, sub)
    await sub.close()


@pytest.fixture(scope="module")
def played(cfg, limits):
    """Play the session once on a fresh stack; put the ordinary stack back afterwards."""
    stack = DockerStack(cfg)
    result = Played()
    progress("fresh stack: removing the compose project with its volumes; starting backend and proxy")
    try:
        start_backend_fresh(cfg, stack)
        run(_play(cfg, stack, limits, result))
        for service in (cfg.bot_service, cfg.dashboard_service, cfg.proxy_service):
            try:
                result.logs[service] = stack.logs(service)
            except StackError as exc:
                result.unread[service] = str(exc)
        yield result
    finally:
        for service, text in result.logs.items():
            (results_dir() / f"integration.container_{service}.log").write_text(text)
        progress("restoring the ordinary stack (fresh) for the stages that follow")
        restore(cfg, stack)


def test_trading_session_played(played, record, limits):
    """The bot traded for the whole session, ended it by itself, and everything settled."""
    assert played.sources is not None
    trading = played.sources.bot_stats.get("trading", {})
    record.metrics.update(
        session_run_id=played.run_id,
        session_duration_s=played.duration_s,
        session_ticks=trading.get("ticks"),
        session_orders=trading.get("orders"),
        session_trades=trading.get("trades"),
        session_envelopes=played.sources.clients_received,
    )
    record_probe(
        record,
        limits,
        "trading_session",
        run_id=played.run_id,
        duration_s=played.duration_s,
        session_ended=played.session_ended,
        settle_error=played.settle_error,
        bot_stats=dict(played.sources.bot_stats),
    )


def test_reconciliation(played, record, limits):
    """Orders, positions, portfolio, trades and counts agree across bot, backend and client."""
    assert played.sources is not None
    progress(f"reconciling {played.sources.clients_received} envelopes of run {played.run_id[:8]}")
    record_probe(record, limits, "reconciliation", **asdict(played.sources))


def test_status_timeline(played, record, limits):
    """Both services' status endpoints were sampled every second into a CSV timeline."""
    path = record.add_series(results_dir(), "status_timeline", "timeline", COLUMNS, played.timeline)
    record.metrics["status_timeline_file"] = path.name
    record_probe(record, limits, "status_timeline", columns=COLUMNS, rows=played.timeline)


def test_container_logs_clean(played, record, limits):
    """No error, traceback or warning in any container's log but the allowed ones."""
    record.metrics["log_lines_scanned"] = sum(len(t.splitlines()) for t in played.logs.values())
    record_probe(record, limits, "container_logs", logs=played.logs, unread=played.unread)
