"""Waiting by polling a condition with a deadline; never sleep and hope.

Readiness is a strategy object (as in testcontainers): HTTP health, a WebSocket
handshake, or all of several; each has a timeout, a poll interval and the
exceptions that mean "not yet".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import requests

__all__ = [
    "AllReady",
    "HttpReady",
    "Readiness",
    "RedisReady",
    "WebSocketReady",
    "settle",
    "wait_until",
    "wait_until_async",
]

T = TypeVar("T")
TRANSIENT: tuple[type[BaseException], ...] = (OSError, requests.RequestException, asyncio.TimeoutError, ValueError)


def _timed_out(timeout: float, what: str, last_error: BaseException | None) -> TimeoutError:
    detail = f" (last error: {last_error!r})" if last_error else ""
    return TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")


def wait_until(
    condition: Callable[[], T],
    timeout: float,
    interval: float = 0.2,
    what: str = "condition",
    transient: tuple[type[BaseException], ...] = TRANSIENT,
) -> T:
    """Poll ``condition`` until it returns a truthy value; TimeoutError names ``what``."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except transient as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            raise _timed_out(timeout, what, last_error)
        time.sleep(interval)


async def settle(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``condition`` for up to ``timeout`` without raising: what is still missing then is
    the judge's to report, from the history, not the probe's to decide."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(interval)
    return True


async def wait_until_async(
    condition: Callable[[], Awaitable[T]],
    timeout: float,
    interval: float = 0.2,
    what: str = "condition",
    transient: tuple[type[BaseException], ...] = TRANSIENT,
) -> T:
    """``wait_until`` for coroutines."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = await condition()
            if value:
                return value
        except transient as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            raise _timed_out(timeout, what, last_error)
        await asyncio.sleep(interval)


class Readiness(Protocol):
    """A way to tell that an endpoint is ready."""

    def describe(self) -> str: ...

    def check(self) -> bool: ...


@dataclass
class HttpReady:
    """GET ``url`` answers with a 2xx status (and optional JSON predicate)."""

    url: str
    predicate: Callable[[Any], bool] | None = None

    def describe(self) -> str:
        return f"HTTP 2xx from {self.url}"

    def check(self) -> bool:
        resp = requests.get(self.url, timeout=2)
        if not resp.ok:
            return False
        return self.predicate(resp.json()) if self.predicate else True


@dataclass
class WebSocketReady:
    """A WebSocket handshake to ``url`` completes."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        return f"WebSocket handshake to {self.url}"

    def check(self) -> bool:
        from websockets.sync.client import connect

        with connect(self.url, open_timeout=2, additional_headers=self.headers or None) as ws:
            ws.close()
        return True


@dataclass
class RedisReady:
    """Redis at ``url`` answers PING (the cluster topology's shared log, docs/CLUSTER.md)."""

    url: str

    def describe(self) -> str:
        return f"PONG from {self.url}"

    def check(self) -> bool:
        import redis  # the cluster topology's client; the default topology never loads it

        client = redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()


@dataclass
class AllReady:
    """Every strategy is ready."""

    strategies: list[Readiness]

    def describe(self) -> str:
        return " and ".join(s.describe() for s in self.strategies)

    def check(self) -> bool:
        return all(s.check() for s in self.strategies)

    def wait(self, timeout: float, interval: float = 0.5, on_timeout: Callable[[], str] | None = None) -> None:
        """Block until ready; on timeout the error carries ``on_timeout()`` (e.g. logs)."""
        try:
            wait_until(self.check, timeout, interval, what=self.describe())
        except TimeoutError as exc:
            if on_timeout is not None:
                exc.add_note(on_timeout())
            raise
