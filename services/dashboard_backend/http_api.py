"""The HTTP API on the WebSocket port: health, readiness, status, state, stored data, metrics, the page.

Every GET that is not a WebSocket upgrade is answered here (from websockets'
``process_request``), from what the live backend holds: the status and state JSON,
the store's trades, events and receive times (read in a worker thread), the dead
letters, the Prometheus exposition (``metrics``) and the dashboard page (``page``).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from websockets.datastructures import Headers
from websockets.http11 import Response
from wscontract import DATA_TYPES

from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .metrics import counters_json, exposition, rss_bytes
from .page import CONTENT_SECURITY_POLICY, Page

if TYPE_CHECKING:
    from .server import Backend

__all__ = ["PAGE_HEADERS", "TRADES_LIMIT_MAX", "HttpApi", "json_response", "response"]

TRADES_LIMIT_MAX = 1_000_000
#: The data a replica answers only while in step with the shared log (Redis mode).
STALE_WHEN_LOST = frozenset(("/api/state", "/api/trades", "/api/events", "/api/receive_times"))
#: Headers of the dashboard page's files (``/``, ``/static/<name>``).
PAGE_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
)


def json_response(status: int, body: Any) -> Response:
    data = json.dumps(body, separators=(",", ":")).encode()
    return response(status, data, "application/json")


def response(status: int, data: bytes, content_type: str, extra: tuple[tuple[str, str], ...] = ()) -> Response:
    phrase = HTTPStatus(status).phrase
    headers = Headers(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(data))),
            ("Cache-Control", "no-store"),
            ("Connection", "close"),
            *extra,
        ]
    )
    return Response(status, phrase, headers, data)


def _paging(
    query: dict[str, list[str]], after: str = "after_seq", default_limit: int = 10000
) -> tuple[int, int] | Response:
    """``after`` (a seq or an id) and ``limit`` of a query, or the 400 response saying what is wrong."""
    try:
        after_seq = int(query.get(after, ["0"])[0])
        limit = int(query.get("limit", [str(default_limit)])[0])
    except ValueError:
        return json_response(400, {"error": f"{after} and limit must be integers"})
    if not 0 <= limit <= TRADES_LIMIT_MAX:
        return json_response(400, {"error": f"limit must be in [0, {TRADES_LIMIT_MAX}]"})
    return after_seq, limit


def _open_fds() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


class HttpApi:
    """The GET endpoints, read off the live backend (as ``metrics.SERIES`` reads it)."""

    def __init__(self, backend: Backend) -> None:
        self.b = backend
        #: The live dashboard page (static/), read once here.
        self.page = Page()
        self._started = time.monotonic()
        self._routes: dict[str, Callable[[dict[str, list[str]]], Awaitable[Response]]] = {
            "/health": self._health,
            "/ready": self._ready,
            "/api/websocket/status": self._status,
            "/api/state": self._state,
            "/api/trades": self._trades,
            "/api/events": self._events,
            "/api/receive_times": self._receive_times,
            "/api/dead_letters": self._dead_letters,
            "/metrics": self._metrics,
        }

    async def respond(self, path: str, query: str) -> Response:
        """The answer to ``GET path?query`` (``path`` not a WebSocket endpoint)."""
        counters = self.b.counters
        if Page.handles(path):
            return self._page(path)
        route = self._routes.get(path)
        counters.http_requests[path if route else "other"] += 1
        if route is None:
            return json_response(404, {"error": "not found", "path": path[:200]})
        if path in STALE_WHEN_LOST and self.b.stale():
            # Redis mode, out of step with the shared log: old data must not pass for current.
            return json_response(503, {"error": "not in step with the shared log"})
        try:
            return await route(parse_qs(query))
        except Exception as exc:
            self.b.internal(f"http {path}", exc)
            return json_response(500, {"error": "internal"})

    def status(self) -> dict[str, Any]:
        """The ``/api/websocket/status`` body.

        In Redis mode ``publishers``, ``publisher_count`` and ``client_count`` are the
        cluster's (every replica's last presence report, ``shared_log.cluster_view``), as
        a probe through the balancer expects of the system; ``clients``, ``counters`` and
        ``runs`` are this replica's, and ``replicas`` gives each replica's counts.
        """
        body = self._local_status()
        cluster = self.b.log.cluster if self.b.log is not None else None
        if cluster is not None:
            body["replica_publisher_count"] = body["publisher_count"]
            body["replica_client_count"] = body["client_count"]
            body["publishers"] = cluster["publishers"]
            body["publisher_count"] = len(cluster["publishers"])
            body["client_count"] = cluster["client_count"]
            body["replicas"] = cluster["replicas"]
        return body

    def presence(self) -> dict[str, Any]:
        """What this replica reports to the others (Redis mode): its publishers and client count."""
        b = self.b
        return {
            "publishers": [
                {"run_id": p.run_id, "remote": p.remote, "connected_at": p.connected_at}
                for p in b.publishers.sessions()
            ],
            "client_count": len(b.hub.clients),
        }

    def _local_status(self) -> dict[str, Any]:
        b = self.b
        mine = self.presence()
        return {
            "publishers": mine["publishers"],
            "publisher_count": len(b.publishers),
            "client_count": mine["client_count"],
            "clients": [
                {
                    "id": c.id,
                    "remote": c.remote,
                    "types": sorted(c.sub.types) if c.sub.types is not None else None,
                    "symbols": sorted(c.sub.symbols) if c.sub.symbols is not None else None,
                    "queue_depth": c.depth,
                }
                for c in b.hub.clients.values()
            ],
            **({"replica": b.config.replica_id} if b.log is not None else {}),
            "counters": counters_json(b),
            "runs": {r: v.serialize() for r, v in b.ingest.runs().items()},
            "ring_size": len(b.hub.ring),
            "dead_letters": b.dead_letters.summary(),
            "uptime_s": round(time.monotonic() - self._started, 3),
            "rss_bytes": rss_bytes(),
            "open_fds": _open_fds(),
        }

    # --- the endpoints ----------------------------------------------------------

    def _page(self, path: str) -> Response:
        """``/`` (the dashboard page) and ``/static/<name>`` (its files); 404 for any other name."""
        self.b.counters.http_requests["/" if path == "/" else "/static/"] += 1
        asset = self.page.asset(path)
        if asset is None:
            return json_response(404, {"error": "not found", "path": path[:200]})
        return response(200, asset.data, asset.content_type, PAGE_HEADERS)

    async def _health(self, query: dict[str, list[str]]) -> Response:
        return json_response(200, {"status": "ok"})

    async def _ready(self, query: dict[str, list[str]]) -> Response:
        ready = self.b.ready()
        return json_response(200 if ready else 503, {"ready": ready})

    async def _status(self, query: dict[str, list[str]]) -> Response:
        return json_response(200, self.status())

    async def _state(self, query: dict[str, list[str]]) -> Response:
        b = self.b
        return json_response(
            200,
            {
                "positions": b.state.positions,
                "portfolio": b.state.portfolio,
                "runs": {r: v.serialize() for r, v in b.ingest.runs().items()},
                "recent_trades": list(b.state.recent_trades),
            },
        )

    async def _trades(self, query: dict[str, list[str]]) -> Response:
        run_id = query.get("run_id", [None])[0] or None
        raw_limit = query.get("limit", ["10000"])[0]
        try:
            limit = int(raw_limit)
        except ValueError:
            return json_response(400, {"error": "limit must be an integer"})
        if not 0 <= limit <= TRADES_LIMIT_MAX:
            return json_response(400, {"error": f"limit must be in [0, {TRADES_LIMIT_MAX}]"})
        store = self.b.store
        if store is None or not store.is_open:
            return json_response(503, {"error": "store not open"})
        texts = await asyncio.to_thread(store.trades, run_id, limit)
        # Stored texts are validated JSON objects: splice them without re-encoding.
        body = ('{"trades":[' + ",".join(texts) + f'],"count":{len(texts)}}}').encode()
        return response(200, body, "application/json")

    async def _events(self, query: dict[str, list[str]]) -> Response:
        """Stored (critical) envelopes: ``?run_id=&types=a,b&after_seq=&limit=``, by seq."""
        run_id = query.get("run_id", [None])[0] or None
        raw_types = query.get("types", [""])[0]
        types = [t for t in raw_types.split(",") if t] if raw_types else None
        if types is not None and not set(types) <= DATA_TYPES:
            unknown = sorted(set(types) - DATA_TYPES)
            return json_response(400, {"error": f"unknown types: {','.join(unknown)[:200]}"})
        paging = _paging(query)
        if isinstance(paging, Response):
            return paging
        after_seq, limit = paging
        store = self.b.store
        if store is None or not store.is_open:
            return json_response(503, {"error": "store not open"})
        texts = await asyncio.to_thread(store.events, run_id, types, after_seq, limit)
        body = ('{"events":[' + ",".join(texts) + f'],"count":{len(texts)}}}').encode()
        return response(200, body, "application/json")

    async def _dead_letters(self, query: dict[str, list[str]]) -> Response:
        """Rejected publisher frames, oldest first: ``?after_id=&run_id=&code=&limit=``."""
        paging = _paging(query, "after_id", 1000)
        if isinstance(paging, Response):
            return paging
        after_id, limit = paging
        run_id = query.get("run_id", [""])[0] or None
        code = query.get("code", [""])[0] or None
        dead_letters = self.b.dead_letters
        letters = dead_letters.query(after_id, run_id, code, limit)
        return json_response(
            200, {**dead_letters.summary(), "letters": [d.serialize() for d in letters], "count": len(letters)}
        )

    async def _receive_times(self, query: dict[str, list[str]]) -> Response:
        """``?run_id=&after_seq=&limit=``: when each stored envelope of a run was received."""
        run_id = query.get("run_id", [""])[0]
        if not run_id:
            return json_response(400, {"error": "run_id is required"})
        paging = _paging(query)
        if isinstance(paging, Response):
            return paging
        after_seq, limit = paging
        store = self.b.store
        if store is None or not store.is_open:
            return json_response(503, {"error": "store not open"})
        rows = await asyncio.to_thread(store.receive_times, run_id, after_seq, limit)
        return json_response(200, {"run_id": run_id, "recv_ns": rows, "count": len(rows)})

    async def _metrics(self, query: dict[str, list[str]]) -> Response:
        return response(200, exposition(self.b.registry), METRICS_CONTENT_TYPE)
