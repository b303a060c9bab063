"""Wiring: config -> outbox, publisher core, publisher, simulation, HTTP; the tick loop.

The tick loop is the only place that drives trading. It calls ``Simulation.step`` and
``core.commit`` and then sleeps until the next tick; the publisher runs as a separate
task, so no network condition can slow or stop trading.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
import uuid
from typing import Any

from trading_bot.config import Config
from trading_bot.http import StatsServer
from trading_bot.outbox import SqliteOutbox
from trading_bot.publisher import Publisher
from trading_bot.publisher_core import MemoryOutbox, Outbox, PublisherCore
from trading_bot.simulation import Simulation

__all__ = ["App", "process_stats"]

log = logging.getLogger("trading_bot.app")

SHUTDOWN_DRAIN_S = 2.0
SUMMARY_EVERY_S = 10.0


def process_stats() -> dict[str, int | None]:
    """rss_bytes and open_fds of this process, from /proc (None where unavailable)."""
    rss: int | None = None
    fds: int | None = None
    with contextlib.suppress(OSError, ValueError, IndexError), open("/proc/self/statm") as f:
        rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    with contextlib.suppress(OSError):
        fds = len(os.listdir("/proc/self/fd"))
    return {"rss_bytes": rss, "open_fds": fds}


class App:
    """The whole bot; ``run(stop)`` returns after ``stop`` is set and shutdown is done."""

    def __init__(self, config: Config, *, run_id: str | None = None, outbox: Outbox | None = None) -> None:
        self.config = config
        self.run_id = run_id or str(uuid.uuid4())
        self.started_at = time.time()
        self._t0 = time.monotonic()
        self._outbox_problem: str | None = None
        if outbox is None:
            outbox = self._open_outbox(config)
        self.outbox = outbox
        self.core = PublisherCore(self.run_id, outbox, config.queue_size, buffering=config.enable_publishing)
        self.publisher = Publisher(config, self.core) if config.enable_publishing else None
        self.sim = Simulation(
            self.run_id,
            self.core.produce,
            config.symbols,
            config.seed,
            config.starting_cash,
            status=self._status,
        )
        self.http = StatsServer(self.stats, port=config.http_port, state=self.state)
        self.session_ended = False
        self.tick_errors = 0
        self.max_tick_lag_ms = 0.0

    def _open_outbox(self, config: Config) -> Outbox:
        if not config.enable_publishing:
            return MemoryOutbox()
        try:
            return SqliteOutbox.in_dir(config.data_dir)
        except (OSError, sqlite3.Error) as exc:
            self._outbox_problem = f"{type(exc).__name__}: {exc}"
            log.error(
                "cannot open the outbox in %s (%s): critical messages will NOT survive a restart",
                config.data_dir,
                self._outbox_problem,
            )
            return MemoryOutbox()

    # --- views ---------------------------------------------------------------------

    def _status(self) -> dict[str, Any]:
        pub = self.publisher
        return {
            "connected": bool(pub and pub.connected),
            "queue_depth": self.core.queue_depth,
            "outbox_depth": self.core.outbox_depth,
            "reconnects": pub.reconnects if pub else 0,
        }

    def stats(self) -> dict[str, Any]:
        """Everything ``/stats`` serves."""
        out: dict[str, Any] = self.core.stats()
        if self.publisher is not None:
            out.update(self.publisher.stats())
        else:
            out.update({"connected": False, "reconnects": 0, "last_error": None})
        out.update(
            {
                "publishing_enabled": self.config.enable_publishing,
                "ws_url": self.config.dashboard_url,
                "outbox_durable": self._outbox_problem is None,
                "trading": self.sim.trading_stats(),
                "uptime_s": round(time.monotonic() - self._t0, 3),
                "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started_at)),
                "tick_errors": self.tick_errors,
                "session_ended": self.session_ended,
                "max_tick_lag_ms": round(self.max_tick_lag_ms, 3),
                **process_stats(),
            }
        )
        return out

    def state(self) -> dict[str, Any]:
        """Everything ``/api/state`` serves: the books as of ``last_seq`` (one event loop,
        so no tick runs between reading the books and the seq)."""
        return {
            "run_id": self.run_id,
            "last_seq": self.core.last_seq,
            "session_ended": self.session_ended,
            **self.sim.books(),
        }

    # --- running ---------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        await self.http.start()
        log.info(
            "run %s: trading %s every %.3fs; HTTP on :%d; publishing %s",
            self.run_id,
            ",".join(self.config.symbols),
            self.config.tick_interval,
            self.http.port,
            f"to {self.config.dashboard_url}" if self.publisher else "DISABLED",
        )
        if self._outbox_problem:
            self.core.produce(
                "alert",
                {
                    "level": "critical",
                    "code": "outbox_not_durable",
                    "message": f"outbox unavailable: {self._outbox_problem}"[:1024],
                },
            )
        pub_task = asyncio.create_task(self.publisher.run(), name="publisher") if self.publisher else None
        trade_task = asyncio.create_task(self._trade_loop(), name="trading")
        try:
            await stop.wait()
        finally:
            await self._shutdown(trade_task, pub_task)

    async def _trade_loop(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.config.tick_interval
        next_at = loop.time()
        next_summary = time.monotonic() + SUMMARY_EVERY_S
        session = self.config.trading_session_s
        ends_at = time.monotonic() + session if session > 0 else None
        while True:
            if ends_at is not None and time.monotonic() >= ends_at:
                self._end_session()
                return
            lag = loop.time() - next_at
            self.max_tick_lag_ms = max(self.max_tick_lag_ms, lag * 1000)
            try:
                self.sim.step(time.monotonic())
                self.core.commit()
            except Exception:  # a bug in one tick must not stop trading
                self.tick_errors += 1
                log.exception("tick failed")
            if time.monotonic() >= next_summary:
                next_summary += SUMMARY_EVERY_S
                self._log_summary()
            next_at += interval
            delay = next_at - loop.time()
            if delay < -1.0:  # far behind (e.g. paused): skip ahead instead of bursting
                next_at = loop.time()
                delay = 0.0
            await asyncio.sleep(max(0.0, delay))

    def _end_session(self) -> None:
        """Stop trading for good (SYSTEM__TRADING_SESSION_S); HTTP and publishing go on."""
        self.sim.end_session()
        self.core.commit()
        self.session_ended = True
        log.info("trading session of %.1fs ended; idle until stopped", self.config.trading_session_s)
        self._log_summary()

    def _log_summary(self) -> None:
        s = self.core
        t = self.sim.portfolio
        log.info(
            "ticks=%d orders=%d trades=%d last_seq=%d acked_seq=%d queue=%d outbox=%d dropped=%d connected=%s",
            t.ticks,
            t.orders,
            t.trades,
            s.last_seq,
            s.acked_seq,
            s.queue_depth,
            s.outbox_depth,
            s.dropped_total,
            bool(self.publisher and self.publisher.connected),
        )

    async def _shutdown(self, trade_task: asyncio.Task[None], pub_task: asyncio.Task[None] | None) -> None:
        log.info("stopping: last_seq=%d", self.core.last_seq)
        trade_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await trade_task
        with contextlib.suppress(Exception):
            self.sim.emit_status("stopping", time.monotonic())
        self.core.commit()
        if self.publisher is not None and pub_task is not None:
            drained = await self.publisher.wait_drained(SHUTDOWN_DRAIN_S)
            log.info(
                "outbox %s (depth %d)",
                "drained" if drained else "kept on disk for the next start",
                self.core.outbox_depth,
            )
            self.publisher.stop()
            try:
                await asyncio.wait_for(pub_task, timeout=3.0)
            except (TimeoutError, asyncio.CancelledError):
                pub_task.cancel()
        await self.http.close()
        self.core.commit()
        self.outbox.close()
        self._log_summary()
        log.info("stopped")
