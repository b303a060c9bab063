"""The bot's HTTP surface: ``/health``, ``/stats``, ``/api/state`` (JSON), ``/metrics``.

A minimal HTTP/1.1 GET server on ``asyncio.start_server`` (one request per connection,
then close), so the bot needs no web framework. ``/metrics`` is prometheus-client's
exposition of the ``/stats`` dict as ``metrics.SERIES`` declares it; ``render_metrics`` is
the same as a pure function of a stats dict.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from trading_bot import metrics

__all__ = ["StatsServer", "render_metrics"]

log = logging.getLogger("trading_bot.http")

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}
_MAX_HEADER_BYTES = 16 * 1024
_READ_TIMEOUT = 5.0


def render_metrics(stats: dict[str, Any]) -> str:
    """Prometheus text exposition of a ``/stats`` dict (the series: ``metrics.SERIES``)."""
    return metrics.render(metrics.registry_for(lambda: stats)).decode()


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
        #: ``/metrics``: a registry of this server's own, reading ``stats()`` at each scrape.
        self._registry = metrics.registry_for(stats)
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
            return 200, metrics.CONTENT_TYPE, metrics.render(self._registry)
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
