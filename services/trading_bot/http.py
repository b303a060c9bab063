"""The bot's HTTP surface: ``/health``, ``/stats``, ``/api/state`` (JSON), ``/metrics``.

A minimal HTTP/1.1 GET server on ``asyncio.start_server`` (one request per connection,
then close), so the bot needs no web framework. ``render_metrics`` is a pure function
of the stats dict, shared by anything that wants the same numbers as text.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from wscontract import DATA_TYPES

__all__ = ["StatsServer", "render_metrics"]

log = logging.getLogger("trading_bot.http")

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}
_MAX_HEADER_BYTES = 16 * 1024
_READ_TIMEOUT = 5.0


def _labels(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_metrics(stats: dict[str, Any]) -> str:
    """Prometheus text exposition of the bot's ``/stats`` dict."""
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            lines.append(f"{name}{labels} {value:g}" if isinstance(value, float) else f"{name}{labels} {value}")

    produced = stats.get("produced_by_type", {})
    dropped = stats.get("dropped_by_type", {})
    types = sorted(DATA_TYPES | set(produced) | set(dropped))
    trading = stats.get("trading", {})
    metric(
        "bot_messages_produced_total",
        "counter",
        "Envelopes produced (seq assigned), by type.",
        [(f'{{type="{_labels(t)}"}}', int(produced.get(t, 0))) for t in types],
    )
    metric(
        "bot_messages_dropped_total",
        "counter",
        "Ephemeral envelopes dropped by queue overflow (declared in gaps), by type.",
        [(f'{{type="{_labels(t)}"}}', int(dropped.get(t, 0))) for t in types],
    )
    simple = [
        ("bot_messages_sent_total", "counter", "Frames handed to the socket.", "sent_total"),
        (
            "bot_messages_resent_total",
            "counter",
            "Frames sent again after reconnect.",
            "resent_total",
        ),
        ("bot_gaps_declared_total", "counter", "Gap envelopes produced.", "declared_gaps_total"),
        ("bot_reconnects_total", "counter", "Successful handshakes after the first.", "reconnects"),
        (
            "bot_connect_failures_total",
            "counter",
            "Failed connection attempts.",
            "connect_failures",
        ),
        ("bot_last_seq", "gauge", "Highest seq produced in this run.", "last_seq"),
        ("bot_acked_seq", "gauge", "Highest seq acked by the backend.", "acked_seq"),
        ("bot_queue_depth", "gauge", "Ephemeral messages held (unsent + unacked).", "queue_depth"),
        ("bot_outbox_depth", "gauge", "Critical messages awaiting ack (all runs).", "outbox_depth"),
        ("bot_uptime_seconds", "gauge", "Seconds since start.", "uptime_s"),
        ("bot_rss_bytes", "gauge", "Resident set size.", "rss_bytes"),
        ("bot_open_fds", "gauge", "Open file descriptors.", "open_fds"),
    ]
    for name, kind, help_text, key in simple:
        value = stats.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            metric(name, kind, help_text, [("", value)])
    metric(
        "bot_connected",
        "gauge",
        "1 while connected to the backend.",
        [("", 1 if stats.get("connected") else 0)],
    )
    for name, key, help_text in (
        ("bot_ticks_total", "ticks", "Simulation ticks."),
        ("bot_orders_total", "orders", "Orders placed."),
        ("bot_trades_total", "trades", "Trades (fills)."),
    ):
        metric(name, "counter", help_text, [("", int(trading.get(key, 0)))])
    for name, key in (("bot_equity", "equity"), ("bot_cash", "cash")):
        if isinstance(trading.get(key), int | float):
            metric(name, "gauge", f"Portfolio {key}.", [("", float(trading[key]))])
    return "\n".join(lines) + "\n"


class StatsServer:
    """GET-only HTTP server; every response closes its connection."""

    def __init__(
        self,
        stats: Callable[[], dict[str, Any]],
        host: str = "0.0.0.0",
        port: int = 8081,
        state: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self._stats = stats
        self._state = state
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self._host, self._port, limit=_MAX_HEADER_BYTES)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), timeout=1.0)

    # --- routing -------------------------------------------------------------------

    def route(self, method: str, path: str) -> tuple[int, str, bytes]:
        """(status, content type, body) for one request; pure but for ``stats()``."""
        if method not in ("GET", "HEAD"):
            return self._json(405, {"error": "method not allowed"})
        path = path.split("?", 1)[0]
        if path == "/health":
            return self._json(200, {"status": "ok"})
        if path == "/stats":
            return self._json(200, self._stats())
        if path == "/api/state" and self._state is not None:
            return self._json(200, self._state())
        if path == "/metrics":
            body = render_metrics(self._stats()).encode()
            return 200, "text/plain; version=0.0.4; charset=utf-8", body
        return self._json(404, {"error": "not found", "path": path[:200]})

    @staticmethod
    def _json(status: int, obj: Any) -> tuple[int, str, bytes]:
        return status, "application/json", json.dumps(obj, indent=None).encode()

    # --- the connection ------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, ctype, body, method = await self._read_and_route(reader)
            head = (
                f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
                f"Content-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\n"
                "Cache-Control: no-store\r\n"
                "Connection: close\r\n\r\n"
            ).encode()
            writer.write(head if method == "HEAD" else head + body)
            await writer.drain()
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            pass
        except Exception:
            log.exception("http handler failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _read_and_route(self, reader: asyncio.StreamReader) -> tuple[int, str, bytes, str]:
        async with asyncio.timeout(_READ_TIMEOUT):
            try:
                request_line = (await reader.readline()).decode("latin-1").strip()
                while True:
                    line = await reader.readline()
                    if line in (b"\r\n", b"\n", b""):
                        break
            except (ValueError, asyncio.LimitOverrunError):
                return *self._json(400, {"error": "request too large"}), "GET"
        parts = request_line.split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return *self._json(400, {"error": "bad request line"}), "GET"
        method, path = parts[0], parts[1]
        return *self.route(method, path), method
