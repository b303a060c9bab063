#!/usr/bin/env python3
"""Userspace TCP fault proxy: latency, jitter, bandwidth, blackhole, reset and down.

Why it exists: the test host's kernel has no netem, so slow or broken links between the
bot and the dashboard backend are simulated here, between two TCP sockets. It is one
stdlib-only file so that it can be copied alone into a container as /app/faultproxy.py
and run as ``python3 faultproxy.py``; it imports nothing from wsrig.

Layout (protocol logic apart from I/O, as in python-websockets):

- ``FaultConfig``: the fault settings; pure validation and merge, no I/O.
- ``TokenBucket`` and ``schedule()``: pure timing math (when may this chunk leave?).
- ``Pipe``: one direction of one connection; reads, schedules, writes, applies
  backpressure when its delay queue backs up.
- ``ProxyServer``: asyncio glue (listener, upstream connects, reset/down) and the
  control HTTP API. ``start_proxy()`` builds one; ``main()`` runs one from env/CLI.

Environment (each has a command-line option): PROXY_LISTEN (0.0.0.0:9000),
PROXY_UPSTREAM (dashboard-backend:8000), PROXY_CONTROL (0.0.0.0:9001),
PROXY_FAULTS (initial faults as JSON, default none), PROXY_LOG_LEVEL (INFO).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import random
import signal
import socket
import struct
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

__all__ = [
    "CHUNK",
    "DIRECTIONS",
    "HIGH_WATER",
    "LOW_WATER",
    "FaultConfig",
    "FaultConfigError",
    "Pipe",
    "ProxyServer",
    "TokenBucket",
    "main",
    "parse_hostport",
    "piece_size",
    "schedule",
    "start_proxy",
]

log = logging.getLogger("faultproxy")

CHUNK = 64 * 1024
"""Largest read from a socket; chunks are forwarded as they come, never byte by byte."""
HIGH_WATER = 8 * 1024 * 1024
"""A direction whose delay queue holds this many bytes stops reading its source."""
LOW_WATER = HIGH_WATER // 2
"""...and reads again once the queue has drained below this."""
BURST_S = 0.02
"""Token-bucket depth and bandwidth piece size, as seconds of the configured rate."""
MIN_BURST = 1024
"""Smallest bucket depth / piece in bytes, so a tiny rate still moves whole segments."""
CONNECT_TIMEOUT_S = 10.0
CONTROL_READ_TIMEOUT_S = 10.0
MAX_CONTROL_BODY = 1024 * 1024
MAX_DELAY_MS = 600_000
MAX_BANDWIDTH_KBPS = 100_000_000

DIRECTIONS = ("both", "up", "down")
"""``up`` is client -> upstream, ``down`` is upstream -> client."""


# ---------------------------------------------------------------- fault configuration


class FaultConfigError(ValueError):
    """A fault update that cannot be applied; its message is shown to the API caller."""


_NUMBER_LIMITS = {
    "latency_ms": MAX_DELAY_MS,
    "jitter_ms": MAX_DELAY_MS,
    "bandwidth_kbps": MAX_BANDWIDTH_KBPS,
}


@dataclass(frozen=True)
class FaultConfig:
    """The faults in force; the default instance is pure pass-through.

    Immutable so that a chunk's scheduling sees one consistent snapshot while the
    control API swaps in a new one. ``bandwidth_kbps`` 0 means unlimited; kbps are
    kilobits (1000 bits) per second. ``latency_ms``, ``jitter_ms``, ``bandwidth_kbps``
    and ``blackhole`` apply to the directions named by ``direction``; ``down`` and
    ``reject_new`` act on whole connections.
    """

    latency_ms: float = 0
    jitter_ms: float = 0
    bandwidth_kbps: float = 0
    blackhole: bool = False
    direction: str = "both"
    down: bool = False
    reject_new: bool = False

    # -- merge and validation

    def merged(self, patch: Any) -> FaultConfig:
        """Return a copy with ``patch`` applied; a ``null`` value restores the default.

        Raises FaultConfigError for a non-object, an unknown field or a bad value, so
        a bad update never leaves a half-applied config behind.
        """
        if not isinstance(patch, Mapping):
            raise FaultConfigError("fault update must be a JSON object")
        known = {f.name: f for f in fields(self)}
        unknown = sorted(str(k) for k in patch if k not in known)
        if unknown:
            raise FaultConfigError(f"unknown field(s): {', '.join(unknown)}; known fields: {', '.join(known)}")
        defaults = FaultConfig()
        changes: dict[str, Any] = {}
        for name, value in patch.items():
            changes[name] = getattr(defaults, name) if value is None else _check(name, value)
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as served by GET /faults."""
        return asdict(self)

    def describe(self) -> str:
        """Short human form listing only what differs from pass-through, for logs."""
        default = FaultConfig()
        parts = [f"{k}={v}" for k, v in asdict(self).items() if getattr(default, k) != v]
        return " ".join(parts) or "none"

    # -- per-direction questions asked by Pipe

    def applies_to(self, direction: str) -> bool:
        """Whether the directional faults act on ``direction`` ("up" or "down")."""
        return self.direction in ("both", direction)

    def shapes(self, direction: str) -> bool:
        """Whether chunks in ``direction`` are delayed (latency, jitter or bandwidth)."""
        return self.applies_to(direction) and bool(self.latency_ms or self.jitter_ms or self.bandwidth_kbps)

    def blackholes(self, direction: str) -> bool:
        """Whether data in ``direction`` is read and discarded."""
        return self.blackhole and self.applies_to(direction)


def _check(name: str, value: Any) -> Any:
    if name in _NUMBER_LIMITS:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FaultConfigError(f"{name} must be a number, got {json.dumps(value)}")
        if not math.isfinite(value) or value < 0 or value > _NUMBER_LIMITS[name]:
            raise FaultConfigError(f"{name} must be between 0 and {_NUMBER_LIMITS[name]}")
        return value
    if name == "direction":
        if value not in DIRECTIONS:
            raise FaultConfigError(f"direction must be one of {', '.join(DIRECTIONS)}")
        return value
    if not isinstance(value, bool):
        raise FaultConfigError(f"{name} must be true or false, got {json.dumps(value)}")
    return value


# ---------------------------------------------------------------- timing math (pure)


@dataclass
class TokenBucket:
    """Bandwidth limiter of one direction of one connection, in bytes.

    Tokens may go negative (debt): a chunk larger than the bucket is still sent whole,
    just later, and every chunk after it waits for the debt to be paid off.
    """

    rate: float
    """Bytes per second."""
    capacity: float
    """Bucket depth in bytes: the burst allowed after an idle period."""
    tokens: float
    stamp: float
    """Clock reading at which ``tokens`` was last brought up to date."""

    @classmethod
    def for_kbps(cls, kbps: float, now: float) -> TokenBucket:
        """A full bucket for ``kbps`` kilobits per second, with a ~20 ms burst."""
        rate = kbps * 1000 / 8
        capacity = max(float(MIN_BURST), rate * BURST_S)
        return cls(rate=rate, capacity=capacity, tokens=capacity, stamp=now)

    def reserve(self, size: int, now: float) -> float:
        """Take ``size`` bytes' worth of tokens; return when the bytes may leave."""
        if now > self.stamp:
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
        self.tokens -= size
        if self.tokens >= 0:
            return now
        return now + -self.tokens / self.rate


def piece_size(kbps: float) -> int:
    """Size a chunk is cut into under a bandwidth limit, so data trickles at the rate
    instead of arriving as one late lump."""
    rate = kbps * 1000 / 8
    return max(MIN_BURST, min(CHUNK, int(rate * BURST_S)))


def schedule(
    config: FaultConfig,
    now: float,
    last_release: float,
    size: int,
    bucket: TokenBucket | None = None,
    jitter_u: float = 0.0,
) -> float:
    """Release time of a chunk of ``size`` bytes that arrived at ``now``.

    Bandwidth first (the bucket says when the bytes are on the wire), then propagation
    delay ``latency_ms + jitter_u * jitter_ms`` (``jitter_u`` uniform in [-1, 1],
    clamped at zero). Never earlier than ``last_release``: jitter varies delay but a TCP
    stream is never reordered.
    """
    ready = now if bucket is None else bucket.reserve(size, now)
    delay_ms = max(0.0, config.latency_ms + jitter_u * config.jitter_ms)
    return max(last_release, ready + delay_ms / 1000)


# ---------------------------------------------------------------- one direction


class Pipe:
    """Moves bytes one way (``up`` or ``down``) through the faults in force.

    Pass-through chunks are written at once; delayed ones go into a queue of
    (release time, bytes) that a sender task drains in order. When the queue holds
    HIGH_WATER bytes the reader stops reading, so the source feels TCP backpressure
    instead of the proxy growing without bound.
    """

    def __init__(
        self,
        direction: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        proxy: ProxyServer,
        rng: random.Random,
    ) -> None:
        self.direction = direction
        self.queued_bytes = 0
        self._reader = reader
        self._writer = writer
        self._proxy = proxy
        self._rng = rng
        self._loop = asyncio.get_running_loop()
        self._queue: deque[tuple[float, bytes | None]] = deque()
        self._last_release = 0.0
        self._bucket: TokenBucket | None = None
        self._finished = False
        self._eof_held = False
        self._wake = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()

    # -- tasks

    async def read_loop(self) -> None:
        """Read chunks from the source until EOF, submitting each to the schedule."""
        while True:
            data = await self._reader.read(CHUNK)
            config = self._proxy.config
            if not data:
                self._submit_eof(config)
                return
            await self._submit(data, config)
            if self.queued_bytes >= HIGH_WATER:
                self._space.clear()
                await self._space.wait()

    async def send_loop(self) -> None:
        """Release queued chunks at their times, in order; ends after EOF is passed on."""
        while True:
            if not self._queue:
                if self._finished:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            release, data = self._queue[0]
            wait = release - self._loop.time()
            if wait > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
                continue  # the head may have been rescheduled meanwhile
            self._queue.popleft()
            blackholed = self._proxy.config.blackholes(self.direction)
            if data is None:
                self._finished = True
                self._pass_eof(blackholed)
                return
            self.queued_bytes -= len(data)
            if blackholed:
                self._proxy.bytes_discarded += len(data)
            else:
                self._deliver(data)
                await self._writer.drain()
            if self.queued_bytes < LOW_WATER:
                self._space.set()

    # -- fault changes

    def on_config(self, config: FaultConfig) -> None:
        """When delay is lifted, release what is queued now rather than on schedule;
        when a blackhole is lifted, deliver a FIN it held (as TCP would retransmit it)."""
        if self._eof_held and not config.blackholes(self.direction):
            self._eof_held = False
            self._write_eof()
        if config.shapes(self.direction):
            return
        self._bucket = None
        self._last_release = 0.0
        if self._queue:
            self._queue = deque((0.0, data) for _, data in self._queue)
            self._wake.set()

    # -- internals

    async def _submit(self, data: bytes, config: FaultConfig) -> None:
        direction = self.direction
        if not self._queue:
            if config.blackholes(direction):
                self._proxy.bytes_discarded += len(data)
                return
            if not config.shapes(direction):
                self._deliver(data)
                await self._writer.drain()
                return
        now = self._loop.time()
        if config.shapes(direction):
            bucket = self._bucket_for(config, now)
            step = piece_size(config.bandwidth_kbps) if bucket else len(data)
            for start in range(0, len(data), step):
                piece = data[start : start + step]
                jitter_u = self._rng.uniform(-1.0, 1.0) if config.jitter_ms else 0.0
                release = schedule(config, now, self._last_release, len(piece), bucket, jitter_u)
                self._enqueue(release, piece)
        else:  # not delayed, but earlier chunks still queued: keep the order
            self._enqueue(max(self._last_release, now), data)

    def _submit_eof(self, config: FaultConfig) -> None:
        if not self._queue and not config.shapes(self.direction):
            self._finished = True
            self._pass_eof(config.blackholes(self.direction))
        else:  # FIN travels like data: after earlier chunks, delayed by latency
            release = self._last_release
            if config.shapes(self.direction):
                release = schedule(config, self._loop.time(), release, 0)
            self._queue.append((release, None))
        self._wake.set()

    def _enqueue(self, release: float, data: bytes) -> None:
        self._queue.append((release, data))
        self.queued_bytes += len(data)
        self._last_release = release
        self._wake.set()

    def _bucket_for(self, config: FaultConfig, now: float) -> TokenBucket | None:
        if not config.bandwidth_kbps:
            self._bucket = None
        elif self._bucket is None or self._bucket.rate != config.bandwidth_kbps * 1000 / 8:
            self._bucket = TokenBucket.for_kbps(config.bandwidth_kbps, now)
        return self._bucket

    def _deliver(self, data: bytes) -> None:
        self._writer.write(data)
        if self.direction == "up":
            self._proxy.bytes_up += len(data)
        else:
            self._proxy.bytes_down += len(data)

    def _pass_eof(self, blackholed: bool) -> None:
        if blackholed:
            self._eof_held = True
        else:
            self._write_eof()

    def _write_eof(self) -> None:
        if self._writer.can_write_eof():
            with contextlib.suppress(OSError):
                self._writer.write_eof()


# ---------------------------------------------------------------- one connection


def _rst(writer: asyncio.StreamWriter) -> None:
    """Close with RST, not FIN: SO_LINGER 0 then abort."""
    transport = writer.transport
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


class _Connection:
    """A client socket, its upstream socket, and the two pipes between them."""

    def __init__(
        self,
        proxy: ProxyServer,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        rng: random.Random,
    ) -> None:
        self.up = Pipe("up", client[0], upstream[1], proxy, rng)
        self.down = Pipe("down", upstream[0], client[1], proxy, rng)
        self._writers = (client[1], upstream[1])
        self._tasks: list[asyncio.Task[None]] = []

    async def run(self) -> None:
        """Forward both ways until both sides finish; an error on either side aborts both."""
        pipes = (self.up, self.down)
        self._tasks = [asyncio.create_task(p.read_loop()) for p in pipes]
        self._tasks += [asyncio.create_task(p.send_loop()) for p in pipes]
        try:
            done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_EXCEPTION)
            errors = [t.exception() for t in done if not t.cancelled() and t.exception()]
            if errors:
                log.debug("connection failed: %r", errors[0])
                self.abort(rst=True)
        finally:
            for task in self._tasks:
                task.cancel()
            for writer in self._writers:
                writer.close()

    def on_config(self, config: FaultConfig) -> None:
        self.up.on_config(config)
        self.down.on_config(config)

    def abort(self, rst: bool) -> None:
        """Drop both sides now: with RST when ``rst``, else a plain close."""
        for writer in self._writers:
            if rst:
                _rst(writer)
            else:
                writer.close()
        for task in self._tasks:
            task.cancel()

    @property
    def queued_bytes(self) -> int:
        return self.up.queued_bytes + self.down.queued_bytes


# ---------------------------------------------------------------- the proxy


class ProxyServer:
    """The TCP listener, its connections, the fault config and the control API."""

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        config: FaultConfig | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.config = config or FaultConfig()
        self.connections_total = 0
        self.connections_rejected = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self.bytes_discarded = 0
        self.resets = 0
        self._rng = rng or random.Random()
        self._conns: set[_Connection] = set()
        self._listener: asyncio.Server | None = None
        self._control: asyncio.Server | None = None

    @property
    def listen_port(self) -> int:
        assert self._listener is not None
        return self._listener.sockets[0].getsockname()[1]

    @property
    def control_port(self) -> int:
        assert self._control is not None
        return self._control.sockets[0].getsockname()[1]

    # -- life cycle

    async def start(self, listen_host: str, listen_port: int, control_host: str, control_port: int) -> None:
        """Bind the proxy and control listeners (port 0 picks a free port)."""
        self._listener = await asyncio.start_server(self._on_client, listen_host, listen_port)
        try:
            self._control = await asyncio.start_server(self._on_control, control_host, control_port)
        except BaseException:
            self._listener.close()
            raise

    async def close(self) -> None:
        """Stop listening and abort every open connection."""
        for server in (self._listener, self._control):
            if server is not None:
                server.close()
        for conn in list(self._conns):
            conn.abort(rst=True)
        for server in (self._listener, self._control):
            if server is not None:
                await server.wait_closed()
        await asyncio.sleep(0)  # let aborted connections run their clean-up

    # -- fault control (what the API calls)

    def update_faults(self, patch: Any) -> FaultConfig:
        """Merge a partial update (validated first); raises FaultConfigError."""
        self._apply(self.config.merged(patch))
        return self.config

    def clear_faults(self) -> FaultConfig:
        """Back to pass-through, including reject_new and down."""
        self._apply(FaultConfig())
        return self.config

    def reset(self, reject_new: bool | None = None) -> int:
        """Abort every open connection with RST; optionally set reject_new. Returns count."""
        if reject_new is not None:
            self._apply(self.config.merged({"reject_new": reject_new}))
        conns = list(self._conns)
        for conn in conns:
            conn.abort(rst=True)
        self.resets += len(conns)
        log.info("reset: aborted %d connection(s) with RST", len(conns))
        return len(conns)

    def stats(self) -> dict[str, Any]:
        """Counters since start, as served by GET /stats."""
        return {
            "connections_total": self.connections_total,
            "connections_open": len(self._conns),
            "connections_rejected": self.connections_rejected,
            "bytes_up": self.bytes_up,
            "bytes_down": self.bytes_down,
            "bytes_discarded": self.bytes_discarded,
            "queued_bytes": sum(c.queued_bytes for c in self._conns),
            "resets": self.resets,
            "upstream": f"{self.upstream[0]}:{self.upstream[1]}",
            "faults": self.config.to_dict(),
        }

    def _apply(self, new: FaultConfig) -> None:
        old, self.config = self.config, new
        if new != old:
            log.info("faults changed: %s (was: %s)", new.describe(), old.describe())
        for conn in list(self._conns):
            conn.on_config(new)
        if new.down:
            for conn in list(self._conns):
                conn.abort(rst=False)

    # -- data path

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections_total += 1
        if self._refuse(writer):
            return
        try:
            upstream = await asyncio.wait_for(asyncio.open_connection(*self.upstream), CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            log.warning("upstream %s:%s unreachable: %s", *self.upstream, exc)
            self.connections_rejected += 1
            _rst(writer)
            return
        if self._refuse(writer):  # faults changed while connecting
            upstream[1].close()
            return
        conn = _Connection(self, (reader, writer), upstream, self._rng)
        self._conns.add(conn)
        try:
            await conn.run()
        finally:
            self._conns.discard(conn)

    def _refuse(self, writer: asyncio.StreamWriter) -> bool:
        if self.config.reject_new:
            self.connections_rejected += 1
            self.resets += 1
            _rst(writer)
            return True
        if self.config.down:
            self.connections_rejected += 1
            writer.close()
            return True
        return False

    # -- control API

    def handle_request(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """Route one control request; returns (HTTP status, JSON body). No I/O."""
        routes = {
            "/health": ("GET",),
            "/faults": ("GET", "POST", "DELETE"),
            "/reset": ("POST",),
            "/stats": ("GET",),
        }
        if path not in routes:
            return 404, {"error": f"no such path: {path}", "paths": sorted(routes)}
        if method not in routes[path]:
            return 405, {"error": f"{method} not allowed on {path}", "allowed": routes[path]}
        try:
            if path == "/health":
                return 200, {"status": "ok"}
            if path == "/stats":
                return 200, self.stats()
            if path == "/faults" and method == "GET":
                return 200, self.config.to_dict()
            if path == "/faults" and method == "DELETE":
                return 200, self.clear_faults().to_dict()
            payload = _parse_json(body)
            if path == "/faults":
                return 200, self.update_faults(payload).to_dict()
            if not isinstance(payload, Mapping):
                raise FaultConfigError("reset body must be a JSON object")
            extra = sorted(str(k) for k in payload if k != "reject_new")
            if extra:
                raise FaultConfigError(f"unknown field(s): {', '.join(extra)}; known: reject_new")
            reject_new = payload.get("reject_new")
            count = self.reset(None if reject_new is None else _check("reject_new", reject_new))
            return 200, {"reset": count, "reject_new": self.config.reject_new}
        except FaultConfigError as exc:
            return 400, {"error": str(exc)}

    async def _on_control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                method, path, body = await asyncio.wait_for(_read_request(reader), CONTROL_READ_TIMEOUT_S)
                status, payload = self.handle_request(method, path, body)
            except _HttpError as exc:
                status, payload = exc.status, {"error": str(exc)}
            except TimeoutError:
                status, payload = 408, {"error": "request not received in time"}
            writer.write(_response(status, payload))
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


# ---------------------------------------------------------------- minimal HTTP/1.1


class _HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    411: "Length Required",
    413: "Content Too Large",
}


def _parse_json(body: bytes) -> Any:
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise FaultConfigError(f"invalid JSON body: {exc}") from None


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, bytes]:
    """Request line, headers, Content-Length body; everything else is refused."""
    try:
        line = await reader.readline()
        parts = line.decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            raise _HttpError(400, "malformed request line")
        method, target, _ = parts
        headers = {}
        while True:
            header = await reader.readline()
            if header in (b"\r\n", b"\n", b""):
                break
            name, sep, value = header.decode("latin-1").partition(":")
            if not sep:
                raise _HttpError(400, "malformed header line")
            headers[name.strip().lower()] = value.strip()
    except (ValueError, asyncio.LimitOverrunError):
        raise _HttpError(400, "request line or header too long") from None
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise _HttpError(411, "chunked bodies are not supported; send Content-Length")
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        raise _HttpError(400, "bad Content-Length") from None
    if length < 0 or length > MAX_CONTROL_BODY:
        raise _HttpError(413, f"body must be at most {MAX_CONTROL_BODY} bytes")
    body = await reader.readexactly(length) if length else b""
    return method.upper(), target.split("?", 1)[0], body


def _response(status: int, payload: dict[str, Any]) -> bytes:
    body = json.dumps(payload).encode() + b"\n"
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


# ---------------------------------------------------------------- entry points


async def start_proxy(
    listen_host: str,
    listen_port: int,
    upstream_host: str,
    upstream_port: int,
    control_host: str,
    control_port: int,
    *,
    config: FaultConfig | None = None,
    rng: random.Random | None = None,
) -> ProxyServer:
    """Start a proxy and its control API; ports may be 0. Stop it with ``close()``."""
    proxy = ProxyServer(upstream_host, upstream_port, config=config, rng=rng)
    await proxy.start(listen_host, listen_port, control_host, control_port)
    return proxy


def parse_hostport(value: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` -> (host, port); raises ValueError."""
    host, sep, port_text = value.strip().rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"expected host:port, got {value!r}")
    return host.strip("[]"), int(port_text)


async def _serve(args: argparse.Namespace, config: FaultConfig) -> None:
    listen, upstream, control = args.listen, args.upstream, args.control
    proxy = await start_proxy(*listen, *upstream, *control, config=config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    log.info(
        "proxy on %s:%d -> %s:%d, control API on %s:%d, faults: %s",
        listen[0],
        proxy.listen_port,
        *upstream,
        control[0],
        proxy.control_port,
        config.describe(),
    )
    try:
        await stop.wait()
    finally:
        await proxy.close()
        log.info("stopped")


def main(argv: list[str] | None = None) -> int:
    """Run the proxy until SIGTERM/SIGINT; options default to the PROXY_* env vars."""
    env = os.environ.get
    parser = argparse.ArgumentParser(description="Userspace TCP fault proxy.")
    parser.add_argument("--listen", default=env("PROXY_LISTEN", "0.0.0.0:9000"))
    parser.add_argument("--upstream", default=env("PROXY_UPSTREAM", "dashboard-backend:8000"))
    parser.add_argument("--control", default=env("PROXY_CONTROL", "0.0.0.0:9001"))
    parser.add_argument("--faults", default=env("PROXY_FAULTS", ""), help="initial faults as a JSON object")
    parser.add_argument("--log-level", default=env("PROXY_LOG_LEVEL", "INFO"))
    args = parser.parse_args(argv)
    try:
        for name in ("listen", "upstream", "control"):
            setattr(args, name, parse_hostport(getattr(args, name)))
        config = FaultConfig().merged(_parse_json(args.faults.encode()))
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(_serve(args, config))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
