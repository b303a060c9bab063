"""The asyncio glue between ``PublisherCore`` and a WebSocket to the dashboard backend.

Connect, hello, welcome, resend, then one sender and one receiver task until the link
drops; reconnect with ``Backoff`` forever. All protocol decisions live in the core;
this module only moves frames and records what happened to the link. The simulation
never awaits anything here: it calls ``core.produce`` and the core wakes the sender.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from wscontract import Invalid, parse_frame, validate_control

from trading_bot import SOURCE
from trading_bot.config import Config
from trading_bot.publisher_core import Backoff, Frame, PublisherCore

__all__ = ["HandshakeFailed", "Publisher", "describe"]

log = logging.getLogger("trading_bot.publisher")

MAX_SIZE = 1 << 20
OPEN_TIMEOUT = 5.0
WELCOME_TIMEOUT = 5.0
OLD_RUN_ACK_TIMEOUT = 10.0
SEND_BATCH = 500


class HandshakeFailed(Exception):
    """The backend answered the hello with something other than a valid welcome."""


def describe(exc: BaseException) -> str:
    """A short, token-free reason for a failed or closed connection."""
    if isinstance(exc, ConnectionClosed):
        frame = exc.rcvd or exc.sent
        if frame is None:
            return "connection lost (no close frame)"
        return f"closed {frame.code} {frame.reason}".strip()
    if isinstance(exc, TimeoutError):
        return f"timeout{': ' + str(exc) if str(exc) else ''}"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


def _close_code(exc: BaseException) -> int | None:
    if isinstance(exc, ConnectionClosed) and exc.rcvd is not None:
        return exc.rcvd.code
    return None


class Publisher:
    """Keeps one connection to the backend alive and feeds it from the core."""

    def __init__(self, config: Config, core: PublisherCore, backoff: Backoff | None = None):
        self.config = config
        self.core = core
        self.backoff = backoff or Backoff(config.retry_delay, config.max_retries, cap=config.max_retry_delay)
        self._wake = asyncio.Event()
        core.listener = self._wake.set
        self._stop = asyncio.Event()
        self._ws: ClientConnection | None = None

        self.connected = False
        self.connections = 0
        self.connect_attempts = 0
        self.connect_failures = 0
        self.auth_failures = 0
        self.errors_received: Counter[str] = Counter()
        self.old_runs_delivered = 0
        self.last_error: str | None = None
        self.last_connected_at: float | None = None
        self.last_disconnect_at: float | None = None
        self.last_disconnect_reason: str | None = None
        self.next_retry_at: float | None = None
        #: connecting (before the first handshake) | connected | reconnecting (backing off) |
        #: open_circuit (the long wait after MAX_RETRIES failures in a row), and since when
        self.link_state = "connecting"
        self.link_since = time.time()
        self.link_backoff_s: float | None = None

    def _enter(self, state: str, backoff_s: float | None = None) -> None:
        if state != self.link_state:
            self.link_state, self.link_since = state, time.time()
        self.link_backoff_s = backoff_s

    @property
    def reconnects(self) -> int:
        """Successful handshakes after the first one."""
        return max(0, self.connections - 1)

    # --- lifecycle -----------------------------------------------------------------

    async def run(self) -> None:
        """Connect, publish, reconnect; returns only after ``stop()``."""
        while not self._stop.is_set():
            reason = "closed"
            try:
                await self._deliver_old_runs()
                reason = await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every failure is retried; none is fatal
                reason = describe(exc)
                self._on_failure(exc, reason)
            finally:
                if self.connected:
                    self.last_disconnect_at = time.time()
                self.connected = False
                self._ws = None
                self.core.on_disconnect()
            self.last_disconnect_reason = reason
            if self._stop.is_set():
                break
            long_waits = self.backoff.long_waits
            delay = self.backoff.next_delay()
            self._enter("open_circuit" if self.backoff.long_waits > long_waits else "reconnecting", delay)
            self.next_retry_at = time.time() + delay
            log.warning(
                "link to %s down (%s); retry in %.2fs (failures in a row: %d)",
                self.config.dashboard_url,
                reason,
                delay,
                self.backoff.failures,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=delay)
            self.next_retry_at = None

    def stop(self) -> None:
        """Ask ``run`` to close the connection and return."""
        self._stop.set()
        self._wake.set()

    async def wait_drained(self, timeout: float) -> bool:
        """Wait (bounded) until the backend has acked everything produced so far."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.core.acked_seq >= self.core.last_seq:
                return True
            if not self.connected:
                return False
            await asyncio.sleep(0.05)
        return False

    def _on_failure(self, exc: BaseException, reason: str) -> None:
        self.last_error = reason
        if not self.connected:
            self.connect_failures += 1
        if _close_code(exc) == 1008:
            self.auth_failures += 1
            log.error(
                "backend rejected the connection with close 1008 (policy violation: "
                "wrong or missing token?) - check SYSTEM__WEBSOCKET_AUTH_TOKEN; "
                "retrying with backoff"
            )
        elif isinstance(exc, InvalidURI):
            log.error("bad SYSTEM__WEBSOCKET_DASHBOARD_URL: %s", reason)
        elif isinstance(exc, OSError | TimeoutError | InvalidHandshake | ConnectionClosed):
            pass  # the retry line says it
        elif isinstance(exc, HandshakeFailed | Invalid):
            log.warning("handshake with %s failed: %s", self.config.dashboard_url, reason)
        else:
            log.exception("unexpected publisher failure: %s", reason)

    # --- one connection -------------------------------------------------------------

    def _connect(self) -> Any:
        return connect(
            self.config.dashboard_url,
            ping_interval=self.config.ping_interval,
            ping_timeout=self.config.ping_timeout,
            max_size=MAX_SIZE,
            open_timeout=OPEN_TIMEOUT,
            close_timeout=2.0,
            compression=None,
            user_agent_header=f"{SOURCE}/1",
        )

    async def _handshake(self, ws: ClientConnection, run_id: str) -> int:
        hello = {
            "type": "hello",
            "v": 1,
            "source": SOURCE,
            "run_id": run_id,
            "auth": self.config.auth_token,
        }
        await ws.send(json.dumps(hello, separators=(",", ":")))
        raw = await asyncio.wait_for(ws.recv(), timeout=WELCOME_TIMEOUT)
        obj = parse_frame(raw)
        if obj.get("type") == "error":
            self.errors_received[str(obj.get("code"))] += 1
            raise HandshakeFailed(f"error {obj.get('code')}: {obj.get('detail')}")
        if obj.get("type") != "welcome":
            raise HandshakeFailed(f"expected welcome, got {obj.get('type')!r}")
        validate_control(obj)
        if obj["run_id"] != run_id:
            raise HandshakeFailed(f"welcome for run {obj['run_id']!r}, expected {run_id!r}")
        return int(obj["acked_seq"])

    async def _session(self) -> str:
        self.connect_attempts += 1
        async with self._connect() as ws:
            acked = await self._handshake(ws, self.core.run_id)
            if acked < self.core.acked_seq:
                log.warning(
                    "backend's acked_seq went back from %d to %d (backend state lost?); resending what is still held",
                    self.core.acked_seq,
                    acked,
                )
            frames = self.core.on_welcome(acked)
            self._ws = ws
            self.connected = True
            self.connections += 1
            self.last_connected_at = time.time()
            self._enter("connected")
            self.backoff.reset()
            log.info(
                "connected to %s as run %s: acked_seq=%d, resending %d, last_seq=%d",
                self.config.dashboard_url,
                self.core.run_id,
                acked,
                len(frames),
                self.core.last_seq,
            )
            sender = asyncio.create_task(self._sender(ws, frames), name="ws-sender")
            receiver = asyncio.create_task(self._receiver(ws), name="ws-receiver")
            stopper = asyncio.create_task(self._stop.wait(), name="ws-stop")
            try:
                done, _ = await asyncio.wait({sender, receiver, stopper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (sender, receiver, stopper):
                    task.cancel()
                await asyncio.gather(sender, receiver, stopper, return_exceptions=True)
            for task in (sender, receiver):
                if task in done and not task.cancelled() and task.exception() is not None:
                    exc = task.exception()
                    assert exc is not None
                    raise exc
            if self._stop.is_set():
                return "stopping"
        code, why = ws.close_code, ws.close_reason
        reason = f"closed {code} {why or ''}".strip()
        if code == 1008:
            self.auth_failures += 1
            log.error("backend closed the connection with 1008 (policy violation): %s", why)
        else:
            log.warning("disconnected from %s: %s", self.config.dashboard_url, reason)
        self.last_error = reason
        return reason

    async def _sender(self, ws: ClientConnection, first: list[Frame]) -> None:
        for frame in first:
            await ws.send(frame.text)
        while True:
            self._wake.clear()
            frames = self.core.next_frames(limit=SEND_BATCH)
            if not frames:
                await self._wake.wait()
                continue
            for frame in frames:
                await ws.send(frame.text)

    async def _receiver(self, ws: ClientConnection) -> None:
        async for raw in ws:
            self._handle_incoming(raw, self.core.run_id, old=False)

    def _handle_incoming(self, raw: str | bytes, run_id: str, old: bool) -> int | None:
        """Apply one backend frame; returns an ack's seq (None for anything else)."""
        try:
            obj = parse_frame(raw)
        except Invalid as exc:
            log.warning("ignoring unparseable frame from backend: %s", exc)
            return None
        kind = obj.get("type")
        if kind == "ack":
            try:
                validate_control(obj)
            except Invalid as exc:
                log.warning("ignoring invalid ack: %s", exc)
                return None
            if obj["run_id"] != run_id:
                log.warning("ignoring ack for run %s (expected %s)", obj["run_id"], run_id)
                return None
            seq = int(obj["seq"])
            if old:
                self.core.on_old_ack(run_id, seq)
            else:
                self.core.on_ack(seq)
            return seq
        if kind == "error":
            code = str(obj.get("code"))
            self.errors_received[code] += 1
            log.warning(
                "backend error %s for seq %s: %s",
                code,
                obj.get("seq"),
                str(obj.get("detail"))[:300],
            )
            return None
        log.debug("ignoring backend frame of type %r", kind)
        return None

    # --- runs of earlier processes ----------------------------------------------------

    async def _deliver_old_runs(self) -> None:
        for run_id in self.core.old_runs():
            if self._stop.is_set():
                return
            await self._deliver_old_run(run_id)

    async def _deliver_old_run(self, run_id: str) -> None:
        """hello as the old run, send its pending messages, wait for acks, close."""
        self.connect_attempts += 1
        async with self._connect() as ws:
            acked = await self._handshake(ws, run_id)
            frames = self.core.old_run_frames(run_id, acked)
            log.info(
                "delivering %d unacked message(s) of earlier run %s (acked_seq=%d)",
                len(frames),
                run_id,
                acked,
            )
            if frames:
                last = frames[-1].seq
                for frame in frames:
                    await ws.send(frame.text)
                try:
                    async with asyncio.timeout(OLD_RUN_ACK_TIMEOUT):
                        async for raw in ws:
                            seq = self._handle_incoming(raw, run_id, old=True)
                            if seq is not None and seq >= last:
                                break
                except TimeoutError:
                    log.warning(
                        "earlier run %s: not all acks within %.0fs; %d still pending, "
                        "will retry after the next disconnect",
                        run_id,
                        OLD_RUN_ACK_TIMEOUT,
                        self.core.old_run_depth(run_id),
                    )
                    self.core.commit()
                    return
            self.core.commit()
            if run_id not in self.core.old_runs():
                self.old_runs_delivered += 1
                log.info("earlier run %s fully delivered", run_id)

    # --- stats ---------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """The link block of ``/stats``."""

        def iso(ts: float | None) -> str | None:
            if ts is None:
                return None
            return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))

        return {
            "connected": self.connected,
            "reconnects": self.reconnects,
            "connections": self.connections,
            "connect_attempts": self.connect_attempts,
            "connect_failures": self.connect_failures,
            "auth_failures": self.auth_failures,
            "errors_received": dict(sorted(self.errors_received.items())),
            "last_error": self.last_error,
            "last_connected_at": iso(self.last_connected_at),
            "last_disconnect_at": iso(self.last_disconnect_at),
            "last_disconnect_reason": self.last_disconnect_reason,
            "backoff_failures_in_row": self.backoff.failures,
            "next_retry_in_s": (
                None if self.next_retry_at is None else round(max(0.0, self.next_retry_at - time.time()), 3)
            ),
            "old_runs_pending": {r: self.core.old_run_depth(r) for r in self.core.old_runs()},
            "old_runs_delivered": self.old_runs_delivered,
            "link": {
                "state": self.link_state,
                "since": round(self.link_since, 3),
                "backoff_s": None if self.link_backoff_s is None else round(self.link_backoff_s, 3),
            },
        }
