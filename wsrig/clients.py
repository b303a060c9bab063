"""WebSocket and HTTP clients the probes use: a recording subscriber, a test publisher.

Thin asyncio glue: they move frames and stamp receive times; judging is left to
the checkers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

import requests
from websockets.asyncio.client import ClientConnection, connect
from websockets.protocol import State

from wsrig import messages
from wsrig.history import Observed, observed_from_frames

__all__ = ["Publisher", "Subscriber", "close_quietly", "get_json"]

MAX_FRAME = 4 * 1024 * 1024


def get_json(url: str, timeout: float = 5.0) -> Any:
    """GET a JSON document; raises with the URL and status on failure."""
    resp = requests.get(url, timeout=timeout)
    if not resp.ok:
        raise RuntimeError(f"GET {url} -> HTTP {resp.status_code}: {resp.text[:200]}")
    return resp.json()


async def _wait_on(
    event: asyncio.Event,
    holds: Callable[[], bool],
    closed: Callable[[], bool],
    close_code: Callable[[], int | None],
    timeout: float,
    what: str,
) -> None:
    """Re-check ``holds`` each time ``event`` fires (or every 0.5 s) until the deadline.

    Shared by the subscriber and the publisher: both set ``event`` from their reader task.
    """
    deadline = time.monotonic() + timeout
    while not holds():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"{what}: timed out after {timeout:.1f}s")
        if closed():
            raise ConnectionError(f"{what}: connection closed (code {close_code()})")
        event.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout=min(remaining, 0.5))


async def close_quietly(ws: ClientConnection, timeout: float = 10.0) -> None:
    """Close ``ws``, or wait for the close the peer already started (e.g. a 1009).

    Calling ``close()`` while the peer's close is under way races it: websockets 15
    may then abort a transport that is already gone (AttributeError from asyncio's
    ``_force_close``; seen once in the oversize-frame probe).
    """
    if ws.state is State.OPEN:
        await ws.close()
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ws.wait_closed(), timeout)


class Subscriber:
    """A dashboard client on ``/ws/stream`` that records every frame with its receive time."""

    def __init__(
        self,
        url: str,
        subscribe: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        open_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.subscribe_frame = subscribe if subscribe is not None else messages.subscribe()
        self.headers = headers
        self.open_timeout = open_timeout
        self.frames: list[tuple[int, dict[str, Any]]] = []
        self.snapshot: dict[str, Any] | None = None
        self.errors: list[dict[str, Any]] = []
        self.handshake_ms: float = 0.0
        self.close_code: int | None = None
        self.ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._new = asyncio.Event()

    async def __aenter__(self) -> Subscriber:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        t0 = time.perf_counter()
        self.ws = await connect(
            self.url,
            open_timeout=self.open_timeout,
            max_size=MAX_FRAME,
            additional_headers=self.headers,
            ping_interval=None,
        )
        self.handshake_ms = (time.perf_counter() - t0) * 1000
        if self.subscribe_frame:
            await self.ws.send(json.dumps(self.subscribe_frame))
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                now = time.time_ns()
                frame = json.loads(raw)
                kind = frame.get("type")
                if kind == "snapshot" and self.snapshot is None:
                    self.snapshot = frame
                elif kind == "error":
                    self.errors.append(frame)
                else:
                    self.frames.append((now, frame))
                self._new.set()
        except Exception:  # connection closed under us: the close code says why
            pass
        finally:
            self.close_code = self.ws.close_code
            self._new.set()

    async def close(self) -> None:
        if self.ws is not None:
            await close_quietly(self.ws)
        if self._task is not None:
            await asyncio.wait([self._task], timeout=5)

    @property
    def closed(self) -> bool:
        return self._task is not None and self._task.done()

    def observed(self) -> list[Observed]:
        return observed_from_frames(self.frames)

    async def wait_for(self, predicate: Callable[[Subscriber], bool], timeout: float, what: str = "frames") -> None:
        """Wait until ``predicate(self)`` holds, re-checking on every new frame."""
        await _wait_on(
            self._new,
            lambda: predicate(self),
            lambda: self.closed,
            lambda: self.close_code,
            timeout,
            f"subscriber: {what}",
        )


async def publisher_session(url: str, token: str, run_id: str, timeout_s: float) -> Publisher:
    """An open ``Publisher`` on ``run_id``, retried while the backend (re)starts; the caller
    closes it (``__aexit__``)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await Publisher(url, token, run_id).__aenter__()
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


class Publisher:
    """A publisher on ``/ws`` with its own run_id (load, hostile-input and size probes).

    A background reader keeps draining acks and errors, so the connection answers the
    backend's pings even while the probe only sends.
    """

    def __init__(self, url: str, token: str, run_id: str | None = None) -> None:
        self.url, self.token = url, token
        self.run_id = run_id or messages.new_run_id()
        self.ws: ClientConnection | None = None
        self.welcome: dict[str, Any] | None = None
        self.seq = 0
        self.acked = 0
        self.errors: list[dict[str, Any]] = []
        self._new = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Publisher:
        self.ws = await connect(self.url, open_timeout=10, max_size=MAX_FRAME, ping_interval=None)
        await self.ws.send(json.dumps(messages.hello(self.run_id, self.token)))
        self.welcome = json.loads(await asyncio.wait_for(self.ws.recv(), timeout=10))
        if self.welcome.get("type") != "welcome":
            raise RuntimeError(f"expected welcome, got {self.welcome}")
        self.seq = self.acked = int(self.welcome.get("acked_seq", 0))
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.ws is not None:
            await close_quietly(self.ws)
        if self._reader is not None:
            await asyncio.wait([self._reader], timeout=5)

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                frame = json.loads(raw)
                if frame.get("type") == "ack":
                    self.acked = max(self.acked, int(frame.get("seq", 0)))
                elif frame.get("type") == "error":
                    self.errors.append(frame)
                self._new.set()
        except Exception:  # closed under us: close_code says why
            pass
        finally:
            self._new.set()

    @property
    def close_code(self) -> int | None:
        return None if self.ws is None else self.ws.close_code

    async def publish(
        self, msg_type: str, data: dict[str, Any] | None = None, ts_ns: int | None = None
    ) -> dict[str, Any]:
        """Send the next envelope (stamped now, or at ``ts_ns``); returns it."""
        assert self.ws is not None
        self.seq += 1
        env = messages.envelope(self.run_id, self.seq, msg_type, data, ts_ns=ts_ns)
        await self.ws.send(json.dumps(env))
        return env

    async def send_raw(self, text: str | bytes) -> None:
        assert self.ws is not None
        await self.ws.send(text)

    async def wait_for(self, predicate: Callable[[Publisher], bool], timeout: float, what: str) -> None:
        """Wait until ``predicate(self)`` holds, re-checking on every ack or error."""

        def closed() -> bool:
            return self._reader is not None and self._reader.done()

        await _wait_on(
            self._new, lambda: predicate(self), closed, lambda: self.close_code, timeout, f"publisher: {what}"
        )

    async def wait_ack(self, seq: int, timeout: float = 10.0) -> dict[str, Any]:
        """Until a cumulative ack covers ``seq``."""
        await self.wait_for(lambda p: p.acked >= seq, timeout, f"ack of seq {seq}")
        return {"type": "ack", "run_id": self.run_id, "seq": self.acked}
