"""The live dashboard page: its routes (``/``, ``/static/<name>``), its files, the same-origin rule.

The backend runs in-process on 127.0.0.1 port 0, as in test_backend_server.py. What the
page does in a browser is the browser stage's; here: what is served, how, and that the
files reach for nothing but this backend.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from dashboard_backend.config import Config
from dashboard_backend.connection import same_origin as _same_origin
from dashboard_backend.page import CONTENT_SECURITY_POLICY, STATIC_DIR, Page
from dashboard_backend.server import Backend
from websockets.asyncio.client import connect
from websockets.datastructures import Headers
from websockets.exceptions import InvalidStatus
from websockets.http11 import Request

TIMEOUT = 5.0
TEXT_FILES = ("index.html", "dashboard.js", "dashboard.css")


@asynccontextmanager
async def running(tmp_path: Path, **overrides: Any) -> AsyncIterator[Backend]:
    settings: dict[str, Any] = {"host": "127.0.0.1", "port": 0, "auth_token": "t", "data_dir": str(tmp_path)}
    settings.update(overrides)
    backend = Backend(Config(**settings))
    await backend.start()
    try:
        yield backend
    finally:
        await backend.stop()


async def raw_get(backend: Backend, target: str) -> tuple[int, dict[str, str], bytes]:
    """GET ``target`` exactly as written (no client-side normalisation of ``..`` or escapes)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", backend.port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{backend.port}\r\n\r\n".encode())
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), TIMEOUT)  # the backend closes (Connection: close)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


# --- routes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "name", "content_type"),
    [
        ("/", "index.html", "text/html; charset=utf-8"),
        ("/?from=bookmark", "index.html", "text/html; charset=utf-8"),
        ("/static/index.html", "index.html", "text/html; charset=utf-8"),
        ("/static/dashboard.js", "dashboard.js", "application/javascript; charset=utf-8"),
        ("/static/dashboard.css", "dashboard.css", "text/css; charset=utf-8"),
        ("/static/favicon.png", "favicon.png", "image/png"),
    ],
)
def test_page_and_static_files_are_served(tmp_path, target, name, content_type):
    """Each file with its content type, no-store, the content security policy and nosniff."""

    async def go() -> None:
        async with running(tmp_path) as backend:
            status, headers, body = await raw_get(backend, target)
            assert status == 200
            assert headers["content-type"] == content_type
            assert headers["cache-control"] == "no-store"
            assert headers["content-security-policy"] == "default-src 'self'; connect-src 'self' ws: wss:"
            assert headers["x-content-type-options"] == "nosniff"
            assert body == (STATIC_DIR / name).read_bytes()
            assert int(headers["content-length"]) == len(body)

    asyncio.run(asyncio.wait_for(go(), 10))


@pytest.mark.parametrize(
    "target",
    [
        "/static/nope.js",
        "/static/",
        "/static",
        "/index.html",
        "/static/../server.py",
        "/static/%2e%2e/server.py",
        "/static/..%2fserver.py",
        "/static/%2e%2e%2fserver.py",
        "/static/..%5cserver.py",
        "/static/../../pyproject.toml",
        "/static//etc/passwd",
        "/static/./dashboard.js",
        "/static/dashboard.js/",
        "/static/DASHBOARD.JS",
        "/static/page.py",
        "/static/__init__.py",
        "/static/%64ashboard.js",
        "/static/dashboard.js%00.png",
    ],
)
def test_anything_else_is_a_json_404(tmp_path, target):
    """Unknown names, traversal attempts and escapes: 404 JSON, nothing read from disk."""

    async def go() -> None:
        async with running(tmp_path) as backend:
            status, headers, body = await raw_get(backend, target)
            assert status == 404
            assert headers["content-type"] == "application/json"
            assert json.loads(body)["error"] == "not found"
            assert b"import" not in body and b"Backend" not in body

    asyncio.run(asyncio.wait_for(go(), 10))


def test_page_requests_are_counted_by_route_not_by_name(tmp_path):
    """``/`` and ``/static/`` are two keys of the request counter, whatever names are asked for."""

    async def go() -> None:
        async with running(tmp_path) as backend:
            for target in ("/", "/static/dashboard.js", "/static/x", "/static/y", "/health"):
                await raw_get(backend, target)
            counted = backend.counters.http_requests
            assert counted["/"] == 1 and counted["/static/"] == 3 and counted["/health"] == 1
            assert "/static/x" not in counted and "other" not in counted

    asyncio.run(asyncio.wait_for(go(), 10))


def test_page_reads_only_plain_named_files_of_known_kinds(tmp_path):
    """Subfolders, hidden files and other suffixes in the directory are never served."""
    (tmp_path / "index.html").write_text("<title>x</title>")
    (tmp_path / "app.js").write_text("1")
    (tmp_path / "secret.py").write_text("TOKEN = 1")
    (tmp_path / ".hidden.js").write_text("2")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep.js").write_text("3")
    page = Page(tmp_path)
    assert sorted(page.files) == ["app.js", "index.html"]
    index = page.asset("/")
    assert index is not None and index.data == b"<title>x</title>" and index.content_type.startswith("text/html")
    for path in ("/static/secret.py", "/static/.hidden.js", "/static/sub/deep.js", "/static/sub", "/health"):
        assert page.asset(path) is None
    assert Page(tmp_path / "missing").files == {}


# --- the files reach for nothing but this backend ---------------------------------------------


def _text(name: str) -> str:
    return (STATIC_DIR / name).read_text(encoding="utf-8")


@pytest.mark.parametrize("name", TEXT_FILES)
def test_static_files_reference_no_other_host(name):
    """No absolute or protocol-relative URL, no CDN, no imports, no fonts from elsewhere."""
    text = _text(name)
    assert re.search(r"(?i)\b(?:https?|ftp):/", text) is None  # "https:" alone: location.protocol
    assert re.search(r"//[\w-]+(?:\.[\w-]+)+", text) is None  # //cdn.example.com/...
    assert re.search(r"(?i)\bcdn\b|@import|@font-face|googleapis|unpkg|jsdelivr|cdnjs", text) is None
    assert re.search(r"\b(?:fetch|importScripts|XMLHttpRequest|EventSource)\b|\bimport\s*\(", text) is None


def test_page_links_only_its_own_files_and_has_no_inline_code():
    """Every src/href of the page is one of the served files; no inline script or style (CSP)."""
    html = _text("index.html")
    refs = re.findall(r'\b(?:src|href)="([^"]*)"', html)
    assert sorted(refs) == ["/static/dashboard.css", "/static/dashboard.js", "/static/favicon.png"]
    served = Page().files
    assert all(ref.removeprefix("/static/") in served for ref in refs)
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) is None
    assert re.search(r"<style\b|\sstyle=|\son[a-z]+=", html) is None
    assert re.search(r"\beval\s*\(|new Function\b|\.innerHTML\b", _text("dashboard.js")) is None


def test_page_carries_the_dom_contract():
    """The elements, attributes and global the browser stage reads, and the stream URL."""
    html = _text("index.html")
    js = _text("dashboard.js")
    assert "<title>wsrig dashboard</title>" in html
    for element_id in ("conn-state", "last-seq", "prices", "positions", "portfolio", "trades"):
        assert f'id="{element_id}"' in html
    assert re.search(r'<table id="prices">.*?<tbody>', html, re.S)
    assert re.search(r'<table id="positions">.*?<tbody>', html, re.S)
    for attr in ("data-cash", "data-equity", "data-realized-pnl", "data-unrealized-pnl"):
        assert f'{attr}=""' in html
    assert 'data-state="connecting"' in html
    for attr in (
        "data-price",
        "data-bid",
        "data-ask",
        "data-quantity",
        "data-avg-price",
        "data-market-price",
        "data-trade-id",
        "data-side",
        "data-symbol",
        "data-run",
        "data-seq",
    ):
        assert f'"{attr}"' in js
    assert "window.wsrigDashboard = pub" in js
    for key in ("frames", "snapshots", "renders", "errors", "gaps", "state", "lastSeq", "connections"):
        assert re.search(rf"^\s+{key}: ", js, re.M), key
    assert '"wss://" : "ws://") + location.host + "/ws/stream"' in js
    assert "console." not in js


def test_content_security_policy_is_the_documented_one():
    assert CONTENT_SECURITY_POLICY == "default-src 'self'; connect-src 'self' ws: wss:"


# --- Origin: the page's own origin passes -----------------------------------------------------


def _request(origin: str | None, host: str | None) -> Request:
    headers = Headers()
    if host is not None:
        headers["Host"] = host
    if origin is not None:
        headers["Origin"] = origin
    return Request("/ws/stream", headers)


def test_same_origin_is_scheme_plus_host_exactly():
    assert _same_origin(_request("http://127.0.0.1:8000", "127.0.0.1:8000"))
    assert _same_origin(_request("https://dash.example", "dash.example"))
    assert _same_origin(_request("HTTP://Dash.Example:8000", "dash.example:8000"))
    assert not _same_origin(_request("http://127.0.0.1:8001", "127.0.0.1:8000"))
    assert not _same_origin(_request("http://localhost:8000", "127.0.0.1:8000"))
    assert not _same_origin(_request("http://evil.example", "127.0.0.1:8000"))
    assert not _same_origin(_request("http://127.0.0.1:8000.evil.example", "127.0.0.1:8000"))
    assert not _same_origin(_request("ws://127.0.0.1:8000", "127.0.0.1:8000"))
    assert not _same_origin(_request("null", "127.0.0.1:8000"))
    assert not _same_origin(_request(None, "127.0.0.1:8000"))
    assert not _same_origin(_request("http://", ""))
    assert not _same_origin(_request("http://127.0.0.1:8000", None))


async def _handshake(url: str, origin: str | None) -> int:
    """101 when the upgrade is accepted, else the HTTP status it was refused with."""
    try:
        async with connect(url, origin=origin, open_timeout=TIMEOUT) as ws:  # type: ignore[arg-type]
            if url.endswith("/ws/stream"):
                await ws.send(json.dumps({"type": "subscribe", "snapshot": True}))
                assert json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["type"] == "snapshot"
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


def test_page_origin_passes_whatever_the_allow_list_and_others_still_get_403(tmp_path):
    """With an allow-list set (and missing Origins refused), the backend's own origin passes."""

    async def go() -> None:
        async with running(tmp_path, allowed_origins=("http://ok.example",), allow_missing_origin=False) as backend:
            port = backend.port
            stream = f"ws://127.0.0.1:{port}/ws/stream"
            assert await _handshake(stream, f"http://127.0.0.1:{port}") == 101
            assert await _handshake(stream, f"https://127.0.0.1:{port}") == 101
            assert await _handshake(f"ws://127.0.0.1:{port}/ws", f"http://127.0.0.1:{port}") == 101
            assert await _handshake(stream, "http://ok.example") == 101
            assert backend.counters.origin_rejected == 0
            refused = ["http://evil.example", f"http://localhost:{port}", f"http://127.0.0.1:{port + 1}", None]
            for origin in refused:
                assert await _handshake(stream, origin) == 403, origin
            assert await _handshake(f"ws://127.0.0.1:{port}/ws", "http://evil.example") == 403
            assert backend.counters.origin_rejected == len(refused) + 1

    asyncio.run(asyncio.wait_for(go(), 15))
