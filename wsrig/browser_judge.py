"""The browser stage's judge: a ``BrowserHistory`` and the thresholds -> one row with its findings.

Pure: no I/O, no clock. What the page received is judged by the same delivery check as
every other client (whole, once, in order; a hole only where the backend declared it: a
gap frame, or a resume it answered ``resumed: false``); what it rendered is compared
with ``/api/state`` at a quiet moment; what it did across a backend restart with its
connection state; under load, whether its own code kept up with its socket.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wsrig.checkers import Finding, check_delivery
from wsrig.history import Produced
from wsrig.record import scenario_row
from wsrig.righealth import scenario_status
from wsrig.scenario_history import BrowserHistory, excused_by_refusals

__all__ = ["judge_browser", "page_differs", "refused_resumes", "state_held_still"]

PORTFOLIO_FIELDS = ("cash", "equity", "realized_pnl", "unrealized_pnl")
POSITION_FIELDS = ("quantity", "avg_price", "market_price", "unrealized_pnl", "realized_pnl")
TRADES_SHOWN = 50
RECOVERED = ("resumed", "connected")


def refused_resumes(h: BrowserHistory) -> list[tuple[str, int]]:
    """Each reconnect the backend answered ``resumed: false``: the run the page was
    following and the highest seq it had of that run (its resume point)."""
    out: list[tuple[str, int]] = []
    highest: dict[str, int] = {}
    last_run: str | None = None
    snapshots = 0
    for _, frame in h.page.frames:
        if frame.get("type") == "snapshot":
            snapshots += 1
            if snapshots > 1 and frame.get("resumed") is False and last_run is not None:
                out.append((last_run, highest[last_run]))
            continue
        if "run_id" in frame and "seq" in frame:
            last_run = str(frame["run_id"])
            highest[last_run] = max(highest.get(last_run, 0), int(frame["seq"]))
    return out


def _num(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def page_differs(dom: Mapping[str, Any], state: Mapping[str, Any]) -> list[str]:
    """Where the page's DOM differs from ``/api/state``: positions, portfolio, recent trades.

    The page writes each value as ``String(number)``, which parses back to the same double,
    so numbers are compared exactly."""
    out: list[str] = []
    positions, shown = state.get("positions") or {}, dom.get("positions") or {}
    for symbol in sorted(set(positions) | set(shown)):
        if symbol not in shown:
            out.append(f"position {symbol} missing")
            continue
        if symbol not in positions:
            out.append(f"position {symbol} shown, not in the state")
            continue
        for key in POSITION_FIELDS:
            want, got = _num(positions[symbol].get(key)), _num(shown[symbol].get(key))
            if want != got:
                out.append(f"{symbol} {key}: page {shown[symbol].get(key)!r}, state {positions[symbol].get(key)!r}")
    portfolio, page_portfolio = state.get("portfolio") or {}, dom.get("portfolio") or {}
    for key in PORTFOLIO_FIELDS:
        if key in portfolio and _num(portfolio[key]) != _num(page_portfolio.get(key)):
            out.append(f"portfolio {key}: page {page_portfolio.get(key)!r}, state {portfolio[key]!r}")
    trades = [str(t.get("data", {}).get("trade_id")) for t in reversed(state.get("recent_trades") or [])]
    page_trades = [str(t) for t in dom.get("trades") or []]
    if page_trades != trades[:TRADES_SHOWN]:
        out.append(f"recent trades: page shows {page_trades[:3]}..., state has {trades[:3]}...")
    return out


def state_held_still(c: Mapping[str, Any]) -> bool:
    """``/api/state`` did not move (positions, portfolio, trades) while the page was read."""
    keys = ("positions", "portfolio", "recent_trades")
    return all(c["before"].get(k) == c["after"].get(k) for k in keys)


def _values(h: BrowserHistory) -> tuple[list[Finding], list[str], int]:
    """The page's values against the state: a quiet comparison that matches, or the findings."""
    quiet = [c for c in h.comparisons if state_held_still(c)]
    if not h.comparisons:
        return [], [], 0
    if not quiet:
        return [], [f"/api/state never held still around {len(h.comparisons)} reads of the page: nothing compared"], 0
    if any(not page_differs(c["dom"], c["after"]) for c in quiet):
        return [], [], len(quiet)
    diffs = page_differs(quiet[-1]["dom"], quiet[-1]["after"])
    shown = "; ".join(diffs[:6]) + (f"; ... ({len(diffs)} in all)" if len(diffs) > 6 else "")
    return [Finding("error", f"THE PAGE SHOWS WRONG VALUES (vs /api/state, {len(quiet)} quiet reads): {shown}")], [], 0


def _stream(h: BrowserHistory) -> tuple[list[Finding], dict[str, Any]]:
    """The produced run reached the page whole, once, in order, or declared otherwise."""
    if not h.produced:
        return [], {}
    run = str(h.produced["run_id"])
    last = int(h.produced["last_seq"])
    produced = Produced(
        run, first_seq=int(h.produced["first_seq"]), last_seq=last, judge_upto=int(h.produced.get("judge_upto", last))
    )
    observed = [o for o in h.page.observed() if o.run_id == run]
    excused = excused_by_refusals(observed, refused_resumes(h))
    report = check_delivery([produced], observed, None, excused)[run]
    findings = [Finding(f.severity, f"the page's stream: {f.message}") for f in report.findings()]
    fields = {
        "produced": report.produced,
        "page_received": report.observed,
        "lost": len(report.undeclared_drops),
        "duplicated": len(report.duplicated),
        "reordered": len(report.reordered),
        "declared_missing": report.missed_on_refused_resume,
    }
    return findings, fields


def _restart(h: BrowserHistory, limits: Mapping[str, Any]) -> tuple[list[Finding], dict[str, Any]]:
    """Across a backend restart: the page said it was reconnecting, and recovered in time."""
    if h.fault is None:
        return [], {}
    injected, healed = h.fault
    bound = float(limits["recovery_bound_s"])
    findings: list[Finding] = []
    during = [s for t, s, _ in h.states if injected <= t]
    if "reconnecting" not in during:
        findings.append(Finding("error", "THE PAGE NEVER SHOWED RECONNECTING while the backend was down"))
    back = next(((t - healed) / 1e9 for t, s, _ in h.states if t >= healed and s in RECOVERED), None)
    if back is None:
        last = h.states[-1][1] if h.states else "nothing"
        findings.append(Finding("error", f"THE PAGE DID NOT RECOVER: it still showed {last!r} at the end"))
    elif back > bound:
        findings.append(
            Finding("error", f"THE PAGE RECOVERED LATE: {back:.1f}s after the backend was back (bound {bound:g}s)")
        )
    if h.page.connections < 2:
        findings.append(Finding("error", "the page never opened a new connection after the restart"))
    return findings, {"recovered_s": None if back is None else round(back, 2), "page_connections": h.page.connections}


def _keeps_up(h: BrowserHistory, limits: Mapping[str, Any]) -> tuple[list[Finding], list[str], dict[str, Any]]:
    """Under load: the page's code handled what its socket received, rendered the last value,
    kept its connection, and its main thread was not blocked too long."""
    if not h.sent:
        return [], [], {}
    findings: list[Finding] = []
    timing: list[str] = []
    if h.sent.get("error"):  # judge_browser says the rig could not measure
        return [], [], {}
    read_ns = int(h.page_stats.get("read_ns", 0))
    received = sum(1 for t, f in h.page.frames if "seq" in f and t <= read_ns)
    handled = int(h.page_stats.get("frames", 0))
    if handled < received:
        findings.append(
            Finding(
                "error",
                f"THE PAGE FELL BEHIND: its code handled {handled} of the {received} envelopes its socket had received",
            )
        )
    last, shown = h.sent.get("last_price"), h.page_stats.get("shown_price")
    if _num(last) != _num(shown):
        findings.append(
            Finding(
                "error", f"THE PAGE FELL BEHIND: it shows price {shown!r} after the load, the last sent was {last!r}"
            )
        )
    if h.page.connections > 1:
        findings.append(Finding("error", f"the page lost its connection under load ({h.page.connections} connections)"))
    total = float(h.long_tasks.get("total_ms", 0.0))
    if total > float(limits["long_task_total_max_ms"]):
        timing.append(
            f"the page's main thread was blocked {total:.0f} ms in {h.long_tasks.get('count', 0)} long tasks"
            f" under {h.sent.get('rate')} msg/s (bound {limits['long_task_total_max_ms']} ms)"
        )
    fields = {
        "page_handled": handled,
        "long_tasks": int(h.long_tasks.get("count", 0)),
        "long_task_ms": round(total, 1),
        "rate": h.sent.get("rate"),
    }
    return findings, timing, fields


def _expected_while_down(h: BrowserHistory, t: int, text: str) -> bool:
    """Chromium's own line for a refused WebSocket connection, while the backend was down
    (from the kill until the page recovered, or the end): the outage, not a page error."""
    if h.fault is None or not text.startswith("WebSocket connection to"):
        return False
    back = next((ts for ts, s, _ in h.states if ts >= h.fault[1] and s in RECOVERED), None)
    return h.fault[0] <= t and (back is None or t <= back)


def judge_browser(h: BrowserHistory, limits: Mapping[str, Any]) -> dict[str, Any]:
    """One browser scenario's row: stream, values, console, restart and load checks, as recorded."""
    findings, fields = _stream(h)
    value_findings, unmeasured, quiet = _values(h)
    findings += value_findings
    for t, kind, text in h.console:
        if _expected_while_down(h, t, str(text)):
            continue
        severity = "warning" if kind == "warning" else "error"
        findings.append(Finding(severity, f"THE PAGE'S CONSOLE: {kind}: {str(text)[:300]}"))
    findings += [Finding("error", f"a request of the page failed: {r}") for r in h.failed]
    restart, restart_fields = _restart(h, limits)
    load, timing, load_fields = _keeps_up(h, limits)
    if h.sent.get("error"):
        unmeasured.append(f"the rig's publisher failed: {h.sent['error']}")
    findings += restart + load
    status = scenario_status([f.message for f in findings if f.severity == "error"], timing, unmeasured)
    if status == "failed":
        findings += [Finding("error", t) for t in timing]
    return scenario_row(
        h.name,
        "backend restart" if h.fault else ("load" if h.sent else "none"),
        findings,
        status,
        invalid_reasons=unmeasured,
        quiet_comparisons=quiet,
        screenshots=list(h.screenshots),
        **fields,
        **restart_fields,
        **load_fields,
    )
