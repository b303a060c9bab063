"""test_report.html: verdict first, every image embedded, nothing loaded from elsewhere."""

from __future__ import annotations

import base64
import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _report_fixtures import failing_fault_run, stage

from wsrig.browser_probe import CHROMIUM_ARGS, chromium_path
from wsrig.htmlreport import render_html as _render_html
from wsrig.report import render_markdown

CHARTS = [
    {"stage": "fault_tolerance", "kind": "latency", "title": "latency over time", "file": "chart_ft_latency.png"},
    {"stage": "fault_tolerance", "kind": "faults", "title": "fault windows", "file": "chart_ft_faults.png"},
]


def render_html(summary, folder, charts=None, junit=None, trend_charts=None):
    """The page as publish() makes it: from the Markdown report's text."""
    return _render_html(summary, folder, render_markdown(summary, charts, junit), trend_charts)


def _png(width: int = 4, height: int = 3) -> bytes:
    """A small valid PNG (red), so a browser can decode what the page embeds."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def _run_with_picture() -> dict[str, Any]:
    s = failing_fault_run()
    s["stages"].append(stage("browser", pictures=[{"file": "browser.steady.png", "title": "The page, live"}]))
    return s


def _folder(tmp_path: Path, *files: str) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    for name in files:
        (tmp_path / name).write_bytes(_png())
    return tmp_path


def _loaded_urls(page: str) -> list[str]:
    """Every URL the page would fetch on opening: src attributes, stylesheets, CSS url()/@import."""
    urls = re.findall(r'<(?:img|script|iframe|source|video|audio|embed|input)\b[^>]*\bsrc="([^"]*)"', page)
    urls += re.findall(r"<link\b[^>]*\bhref=\"([^\"]*)\"", page)
    urls += re.findall(r"url\(\s*['\"]?([^'\")]*)", page) + re.findall(r"@import\s+['\"]([^'\"]*)", page)
    return urls


def test_verdict_comes_first():
    """The page opens with the verdict heading, coloured by verdict, before any table or section."""
    page = render_html(failing_fault_run(), Path("/nonexistent"))
    main = page[page.index("<main>") + len("<main>") :].lstrip()
    assert main.startswith("<h1>") and "FAIL" in main[: main.index("</h1>")]
    assert '<body class="verdict-fail">' in page and "<title>wsrig 20261121_000000: FAIL</title>" in page
    assert main.index("</h1>") < main.index("What failed") < main.index("<h2>Stages</h2>") < main.index("<table>")


def test_charts_and_screenshots_are_embedded(tmp_path):
    """Each chart and picture is a data: URI of its file's bytes; no image points at a file."""
    folder = _folder(tmp_path, "chart_ft_latency.png", "chart_ft_faults.png", "browser.steady.png")
    page = render_html(_run_with_picture(), folder, CHARTS, "junit.xml")
    sources = re.findall(r'<img src="([^"]*)" alt="([^"]*)"', page)
    assert [alt for _, alt in sources] == ["latency over time", "fault windows", "The page, live"]
    for src, _ in sources:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]) == _png()
    assert '<a href="fault_tolerance.log">' in page and '<a href="junit.xml">' in page  # links stay relative
    assert page.count("<table>") >= 5


def test_missing_image_is_a_visible_note_not_a_request(tmp_path):
    """A chart whose file is gone says so in the page and asks for nothing."""
    folder = _folder(tmp_path, "chart_ft_latency.png", "browser.steady.png")
    page = render_html(_run_with_picture(), folder, CHARTS)
    assert '<span class="missing">missing: chart_ft_faults.png</span>' in page
    assert "chart_ft_faults.png" not in "".join(_loaded_urls(page))
    assert len(re.findall(r"<img ", page)) == 2


def test_no_external_url_is_loaded(tmp_path):
    """Nothing in a summary makes the page fetch: raw HTML in a finding is text, a picture
    named by URL or outside the folder is a missing note, and the CSS loads no font or file."""
    s = _run_with_picture()
    s["stages"][1]["findings"].append(
        {"severity": "error", "message": 'frame <img src="http://evil.example/x.png"><script src="//cdn/x.js">'}
    )
    s["stages"][2]["pictures"] += [
        {"file": "https://evil.example/shot.png", "title": "remote"},
        {"file": "../outside.png", "title": "outside"},
    ]
    (tmp_path.parent / "outside.png").write_bytes(_png())
    folder = _folder(tmp_path / "run", "chart_ft_latency.png", "chart_ft_faults.png", "browser.steady.png")
    page = render_html(s, folder, CHARTS)
    assert all(url.startswith("data:") for url in _loaded_urls(page)), _loaded_urls(page)
    assert "&lt;img src=&quot;http://evil.example/x.png&quot;&gt;" in page and "<script" not in page
    assert "missing: https://evil.example/shot.png" in page and "missing: ../outside.png" in page
    assert "@font-face" not in page


def test_trend_section_only_when_trend_charts_are_given(tmp_path):
    """Trend charts (any path) are embedded in a section "Trend" before the environment."""
    folder = _folder(tmp_path / "run")
    trend = _folder(tmp_path, "trend_p99.png") / "trend_p99.png"
    assert "Trend" not in render_html(failing_fault_run(), folder)
    page = render_html(failing_fault_run(), folder, trend_charts=[trend, tmp_path / "gone.png"])
    at = page.index('<h2 id="trend">Trend</h2>')
    assert at < page.index("<h2>Environment</h2>")
    assert page.index('<img src="data:image/png;base64,', at) > at and "missing: gone.png" in page[at:]


# ---- the page in a real browser ---------------------------------------------------------


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium on PATH (scripts/setup_browser.sh installs Debian's chromium as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _open(browser: Any, path: Path) -> tuple[Any, list[str], list[str]]:
    """Open ``path`` from file://, recording every request and every failed one."""
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    requests: list[str] = []
    failed: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("requestfailed", lambda r: failed.append(f"{r.url}: {r.failure}"))
    page.goto(path.as_uri(), wait_until="load")
    page.wait_for_timeout(200)  # late requests (fonts, lazy images) would show by now
    return page, requests, failed


def test_control_the_browser_sees_an_external_request(chromium, tmp_path):
    """The instrument works: a page with an outside image shows a request and a failure."""
    path = tmp_path / "control.html"
    path.write_text('<!DOCTYPE html><img src="http://127.0.0.1:9/x.png">')
    page, requests, failed = _open(chromium, path)
    page.close()
    assert "http://127.0.0.1:9/x.png" in requests and failed


def test_page_in_chromium_requests_nothing_but_itself(chromium, tmp_path):
    """Opened in headless Chromium from file://: no failed request, no request but the page
    itself and data: URIs, every embedded image decoded, the missing one a note."""
    folder = _folder(tmp_path, "chart_ft_latency.png", "browser.steady.png")
    path = folder / "test_report.html"
    path.write_text(render_html(_run_with_picture(), folder, CHARTS, "junit.xml"), encoding="utf-8")
    page, requests, failed = _open(chromium, path)
    decoded = page.evaluate("[...document.images].map((i) => i.complete && i.naturalWidth > 0)")
    missing = page.locator(".missing").all_inner_texts()
    page.close()
    assert failed == []
    assert [u for u in requests if u != path.as_uri() and not u.startswith("data:")] == []
    assert decoded == [True, True] and missing == ["missing: chart_ft_faults.png"]
