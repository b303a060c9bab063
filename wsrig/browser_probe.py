"""The dashboard page in Chromium: launch it, record what the page received and showed.

Thin glue around Playwright's sync API and Debian's ``chromium`` (``executable_path``:
nothing downloads a browser). Frames are taken from the browser's network layer
(``page.on("websocket")`` -> ``framereceived``), not from the page's own code, so a page
that drops or mangles frames cannot hide it; the DOM is read through the page's data-*
attributes (the contract in services/dashboard_backend/static/dashboard.js). Judging is
``wsrig.browser_judge``'s.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["CHROMIUM_ARGS", "LONG_TASKS_JS", "PageRecorder", "chromium_path", "read_dom", "screenshot", "wait_on_page"]

#: Headless on a closed network: no background fetches to hosts it cannot reach, no sandbox as root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

#: Counts the main thread's long tasks (> 50 ms) from the page's start; reset by the probe.
LONG_TASKS_JS = """
window.__wsrigLongTasks = {count: 0, total_ms: 0, max_ms: 0};
try {
  new PerformanceObserver((list) => {
    const t = window.__wsrigLongTasks;
    for (const e of list.getEntries()) { t.count += 1; t.total_ms += e.duration; t.max_ms = Math.max(t.max_ms, e.duration); }
  }).observe({type: "longtask", buffered: true});
} catch (e) { window.__wsrigLongTasks.unsupported = String(e); }
"""

_DOM_JS = """
() => {
  const positions = {};
  for (const r of document.querySelectorAll('#positions tbody tr[data-symbol]')) {
    const d = r.dataset;
    positions[d.symbol] = {quantity: d.quantity, avg_price: d.avgPrice, market_price: d.marketPrice,
                           unrealized_pnl: d.unrealizedPnl, realized_pnl: d.realizedPnl};
  }
  const p = document.querySelector('#portfolio');
  const portfolio = p ? {cash: p.dataset.cash, equity: p.dataset.equity,
                         realized_pnl: p.dataset.realizedPnl, unrealized_pnl: p.dataset.unrealizedPnl} : {};
  const trades = [...document.querySelectorAll('#trades li[data-trade-id]')].map((li) => li.dataset.tradeId);
  const prices = {};
  for (const r of document.querySelectorAll('#prices tbody tr[data-symbol]')) prices[r.dataset.symbol] = r.dataset.price;
  const c = document.querySelector('#conn-state'), s = document.querySelector('#last-seq');
  return {positions, portfolio, trades, prices, state: c ? c.dataset.state : null,
          run: s ? s.dataset.run : null, seq: s ? s.dataset.seq : null,
          stats: Object.assign({}, window.wsrigDashboard || {}), long_tasks: Object.assign({}, window.__wsrigLongTasks || {})};
}
"""


def chromium_path() -> str | None:
    """Debian's Chromium, where the set-up installs it."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def read_dom(page: Any) -> dict[str, Any]:
    """What the page shows, as its data-* attributes hold it, with its own counters."""
    return dict(page.evaluate(_DOM_JS))


class PageRecorder:
    """Every frame the page's stream socket received, its console errors and warnings,
    uncaught exceptions and failed requests, each with the rig's receive time (epoch ns)."""

    def __init__(self, page: Any, stream_path: str = "/ws/stream") -> None:
        self.frames: list[tuple[int, dict[str, Any]]] = []
        self.connections = 0
        self.close_codes: list[int | None] = []
        self.console: list[list[Any]] = []
        self.failed: list[str] = []
        self._stream_path = stream_path
        page.on("websocket", self._socket)
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.console.append([time.time_ns(), "pageerror", str(exc)]))
        page.on("requestfailed", lambda req: self.failed.append(f"{req.method} {req.url}: {req.failure}"))

    def _socket(self, ws: Any) -> None:
        if not ws.url.split("?")[0].endswith(self._stream_path):
            return
        self.connections += 1
        ws.on("framereceived", self._frame)

    def _frame(self, payload: str | bytes) -> None:
        t = time.time_ns()
        try:
            frame = json.loads(payload)
        except ValueError:
            frame = {"type": "unparsable", "size": len(payload)}
        self.frames.append((t, frame if isinstance(frame, dict) else {"type": "not an object"}))

    def _console(self, msg: Any) -> None:
        if msg.type in ("error", "warning"):
            self.console.append([time.time_ns(), msg.type, msg.text])

    def highest(self, run_id: str) -> int:
        return max((int(f["seq"]) for _, f in self.frames if f.get("run_id") == run_id and "seq" in f), default=0)

    def first(self, run_id: str) -> int:
        return next((int(f["seq"]) for _, f in self.frames if f.get("run_id") == run_id and "seq" in f), 0)


def wait_on_page(page: Any, condition: Callable[[], bool], timeout_s: float, step_ms: int = 100) -> bool:
    """Let the browser's events flow (the sync API dispatches them while it waits) until
    ``condition`` holds or ``timeout_s`` passes; what is still missing is the judge's to report."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() >= deadline:
            return False
        page.wait_for_timeout(step_ms)
    return True


def screenshot(page: Any, results: Path, name: str) -> str:
    """A PNG of the page in the results folder; its file name."""
    file = f"browser.{name}.png"
    page.screenshot(path=str(results / file))
    return file
