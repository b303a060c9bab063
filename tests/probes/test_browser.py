"""Browser stage: the dashboard page the backend serves, in Debian's Chromium via Playwright.

Each scenario drives the page and records a ``BrowserHistory``; ``wsrig.browser_judge``
decides (and ``wsrig judge`` can again, offline). Screenshots go into the results folder
and the report.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from wsrig import messages
from wsrig.browser_judge import page_differs, state_held_still
from wsrig.browser_probe import (
    CHROMIUM_ARGS,
    LONG_TASKS_JS,
    PageRecorder,
    chromium_path,
    read_dom,
    screenshot,
    wait_on_page,
)
from wsrig.clients import Publisher
from wsrig.probe import backend_state, bot_stats, progress, record_judged, results_dir
from wsrig.scenario_history import BrowserHistory, ClientLog
from wsrig.scenario_judge import judge_history
from wsrig.stack import DockerStack

pytestmark = pytest.mark.browser

PAGE_SYMBOL = "WSRIGPAGE"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    if executable is None:
        pytest.fail(
            "Chromium is not installed (the set-up installs Debian's chromium package: scripts/setup_browser.sh)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class _Page:
    """One fresh page on the dashboard, recorded from before its first request."""

    def __init__(self, browser: Any, url: str) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 800})
        self.page = self.context.new_page()
        self.page.add_init_script(LONG_TASKS_JS)
        self.rec = PageRecorder(self.page)
        self.page.goto(url, wait_until="load")

    def shows(self, *states: str) -> bool:
        return read_dom(self.page).get("state") in states

    def sample(self, states: list[list[Any]]) -> str | None:
        dom = read_dom(self.page)
        states.append([time.time_ns(), dom.get("state"), dom.get("seq")])
        return dom.get("state")

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def page(browser, cfg) -> Iterator[_Page]:
    p = _Page(browser, cfg.dashboard_url + "/")
    yield p
    p.close()


def _compare(cfg, p: _Page, limits) -> list[dict[str, Any]]:
    """Quiet reads: /api/state, a pause, the DOM, /api/state again; until one matches or the time is up."""
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + float(limits["compare_timeout_s"])
    while time.monotonic() < deadline:
        before = backend_state(cfg)
        p.page.wait_for_timeout(int(float(limits["quiet_s"]) * 1000))
        dom = read_dom(p.page)
        after = backend_state(cfg)
        out.append({"t_ns": time.time_ns(), "before": before, "dom": dom, "after": after})
        if state_held_still(out[-1]) and not page_differs(dom, after):
            break
    return out


def _settle_on_run(cfg, p: _Page, limits) -> dict[str, Any]:
    """The bot's run from the first seq the page saw, judged up to the bot's last seq now:
    awaited until the bot has it acked and the page has it (``_history`` adds the bot's
    last seq at the end, for what arrives meanwhile)."""
    stats = bot_stats(cfg)
    run, target = str(stats["run_id"]), int(stats.get("last_seq", 0))

    def settled() -> bool:
        return p.rec.highest(run) >= target and int(bot_stats(cfg).get("acked_seq", 0)) >= target

    wait_on_page(p.page, settled, float(limits["settle_timeout_s"]))
    return {"run_id": run, "first_seq": p.rec.first(run), "judge_upto": target}


def _history(name: str, cfg, p: _Page, produced: dict[str, Any], **fields: Any) -> BrowserHistory:
    """The page's record so far; for the bot's run, its last seq read after the frames were
    taken, so every seq the page received lies within what the bot says it produced."""
    log = ClientLog.of(list(p.rec.frames), p.rec.connections, [], [])
    if "judge_upto" in produced:
        produced = {**produced, "last_seq": int(bot_stats(cfg).get("last_seq", 0))}
    return BrowserHistory(
        name=name, page=log, console=list(p.rec.console), failed=list(p.rec.failed), produced=produced, **fields
    )


def _conclude(record, limits, history: BrowserHistory) -> None:
    record_judged(record, history, judge_history(history, {record.stage: limits}, record.stage))


def test_page_live(cfg, record, limits, page):
    """The page follows the live stream (whole, in order) and shows what /api/state holds."""
    progress(f"page_live: {cfg.dashboard_url}/ in Chromium for {limits['live_s']}s")
    wait_on_page(page.page, lambda: page.shows("connected"), float(limits["settle_timeout_s"]))
    page.page.wait_for_timeout(int(float(limits["live_s"]) * 1000))
    produced = _settle_on_run(cfg, page, limits)
    comparisons = _compare(cfg, page, limits)
    shot = screenshot(page.page, results_dir(), "steady")
    record.add_picture(shot, "The dashboard page, live (steady state)")
    _conclude(record, limits, _history("page_live", cfg, page, produced, comparisons=comparisons, screenshots=[shot]))


def test_page_across_a_backend_restart(cfg, record, limits, page):
    """SIGKILL the backend under the page: it shows reconnecting, then recovers by itself with
    nothing missing that was not declared, and its values match /api/state again."""
    stack = DockerStack(cfg)
    states: list[list[Any]] = []
    wait_on_page(page.page, lambda: page.shows("connected"), float(limits["settle_timeout_s"]))
    page.page.wait_for_timeout(2000)
    progress(f"page_across_a_backend_restart: SIGKILL {cfg.dashboard_service}, down {limits['restart_down_s']}s")
    injected = time.time_ns()
    stack.kill(cfg.dashboard_service)
    shots = []
    down_until = time.monotonic() + float(limits["restart_down_s"])
    while time.monotonic() < down_until:
        if page.sample(states) == "reconnecting" and not shots:
            shots.append(screenshot(page.page, results_dir(), "outage"))
        page.page.wait_for_timeout(100)
    stack.start(cfg.dashboard_service)
    healed = time.time_ns()
    until = time.monotonic() + float(limits["recovery_bound_s"]) + 5
    while time.monotonic() < until and page.sample(states) not in ("resumed", "connected"):
        page.page.wait_for_timeout(100)
    produced = _settle_on_run(cfg, page, limits)
    page.sample(states)
    comparisons = _compare(cfg, page, limits)
    shots.append(screenshot(page.page, results_dir(), "recovered"))
    for shot, title in zip(shots, ("during the backend outage", "after the backend restart"), strict=False):
        record.add_picture(shot, f"The dashboard page {title}")
    _conclude(
        record,
        limits,
        _history(
            "page_across_a_backend_restart",
            cfg,
            page,
            produced,
            states=states,
            comparisons=comparisons,
            fault=[injected, healed],
            screenshots=shots,
        ),
    )


async def _publish_prices(cfg, rate: float, seconds: float, sent: dict[str, Any]) -> None:
    """The rig's own run of market_data for one symbol at ``rate`` on a schedule; each price
    is new, so the last one rendered tells whether the page caught up."""
    async with Publisher(cfg.ingest_url, cfg.auth_token) as pub:
        sent.update(run_id=pub.run_id, first_seq=pub.seq + 1)
        start, n = time.monotonic(), int(rate * seconds)
        for i in range(n):
            ahead = start + i / rate - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)
            price = round(100 + i * 0.01, 2)
            await pub.publish("market_data", dict(messages.SAMPLE_DATA["market_data"], symbol=PAGE_SYMBOL, price=price))
        sent.update(last_seq=pub.seq, last_price=price, count=n)
        await pub.wait_for(lambda p: p.acked >= p.seq, 30, "acks of the page load")


def test_page_keeps_up(cfg, record, limits, page):
    """At the load stage's fan-out rate the page's code handles every frame its socket gets,
    renders the last value, keeps its connection, and its main thread stays responsive."""
    rate, seconds = float(limits["keepup_rate"]), float(limits["keepup_s"])
    wait_on_page(page.page, lambda: page.shows("connected"), float(limits["settle_timeout_s"]))
    page.page.evaluate("() => { Object.assign(window.__wsrigLongTasks, {count: 0, total_ms: 0, max_ms: 0}); }")
    progress(f"page_keeps_up: {rate:g} msg/s for {seconds:g}s to the page")
    sent: dict[str, Any] = {"rate": rate}

    def publish() -> None:
        try:
            asyncio.run(_publish_prices(cfg, rate, seconds, sent))
        except Exception as exc:  # the judge calls the run invalid: the rig could not apply the load
            sent["error"] = repr(exc)

    worker = threading.Thread(target=publish, daemon=True)
    worker.start()
    wait_on_page(page.page, lambda: not worker.is_alive(), seconds + 60)
    run = sent.get("run_id", "")
    wait_on_page(
        page.page, lambda: page.rec.highest(run) >= int(sent.get("last_seq", 0)), float(limits["settle_timeout_s"])
    )
    page.page.wait_for_timeout(500)  # a few animation frames to render the last value
    read_ns = time.time_ns()
    dom = read_dom(page.page)
    stats = {**dom.get("stats", {}), "read_ns": read_ns, "shown_price": dom.get("prices", {}).get(PAGE_SYMBOL)}
    shot = screenshot(page.page, results_dir(), "under_load")
    record.add_picture(shot, f"The dashboard page after {rate:g} msg/s for {seconds:g}s")
    produced = {k: sent[k] for k in ("run_id", "first_seq", "last_seq") if k in sent}
    _conclude(
        record,
        limits,
        _history(
            "page_keeps_up",
            cfg,
            page,
            produced,
            sent=sent,
            page_stats=stats,
            long_tasks=dom.get("long_tasks", {}),
            screenshots=[shot],
        ),
    )
