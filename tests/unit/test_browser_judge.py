"""The browser stage's judge on synthetic histories: one clean per scenario, and one per page defect."""

from __future__ import annotations

import copy

from wsrig.browser_judge import judge_browser, page_differs, refused_resumes
from wsrig.scenario_history import BrowserHistory, ClientLog, history_path, load_history
from wsrig.scenario_judge import judge_history

S = 1_000_000_000
LIMITS = {"recovery_bound_s": 15, "long_task_total_max_ms": 1000}
STATE = {
    "positions": {
        "BTCUSD": {
            "symbol": "BTCUSD",
            "quantity": 0.5,
            "avg_price": 60000.25,
            "market_price": 60010.0,
            "unrealized_pnl": 4.875,
            "realized_pnl": -1.0,
        }
    },
    "portfolio": {"cash": 1000.0, "equity": 31005.0, "realized_pnl": -1.0, "unrealized_pnl": 4.875},
    "recent_trades": [{"seq": s, "data": {"trade_id": f"t-{s}"}} for s in (3, 7)],
    "runs": {"bot": 10},
}
DOM = {
    "positions": {
        "BTCUSD": {
            "quantity": "0.5",
            "avg_price": "60000.25",
            "market_price": "60010",
            "unrealized_pnl": "4.875",
            "realized_pnl": "-1",
        }
    },
    "portfolio": {"cash": "1000", "equity": "31005", "realized_pnl": "-1", "unrealized_pnl": "4.875"},
    "trades": ["t-7", "t-3"],
}


def _env(seq: int, t: int, run: str = "bot") -> tuple[int, dict]:
    return (t, {"run_id": run, "seq": seq, "type": "market_data", "ts_ns": t})


def _snapshot(t: int, resumed: bool | None) -> tuple[int, dict]:
    return (t, {"type": "snapshot", "resumed": resumed, "runs": {"bot": 0}})


def live() -> BrowserHistory:
    frames = [_snapshot(S, False)] + [_env(s, (1 + s) * S) for s in range(1, 11)]
    return BrowserHistory(
        name="page_live",
        page=ClientLog.of(frames, 1, [], []),
        produced={"run_id": "bot", "first_seq": 1, "last_seq": 10},
        comparisons=[{"t_ns": 12 * S, "before": STATE, "dom": DOM, "after": STATE}],
    )


def restart() -> BrowserHistory:
    """Killed at 20 s, started at 23 s; the page resumed at 24 s and got 11..20 (the backend
    refused the resume point 10: ``resumed: false``, so 11-12 are declared missing)."""
    h = live()
    h.name = "page_across_a_backend_restart"
    frames = h.page.frames + [_snapshot(24 * S, False)] + [_env(s, (14 + s) * S) for s in range(13, 21)]
    h.page = ClientLog.of(frames, 2, [], [])
    h.produced = {"run_id": "bot", "first_seq": 1, "last_seq": 20}
    h.fault = [20 * S, 23 * S]
    h.states = [[19 * S, "connected", "10"], [21 * S, "reconnecting", "10"], [24 * S, "connected", "13"]]
    h.console = [
        [21 * S, "error", "WebSocket connection to 'ws://127.0.0.1:8000/ws/stream' failed: net::ERR_CONNECTION_REFUSED"]
    ]
    return h


def keeps_up() -> BrowserHistory:
    frames = [_snapshot(S, False)] + [_env(s, (1 + s) * S, run="rig") for s in range(1, 101)]
    return BrowserHistory(
        name="page_keeps_up",
        page=ClientLog.of(frames, 1, [], []),
        produced={"run_id": "rig", "first_seq": 1, "last_seq": 100},
        sent={"rate": 500, "count": 100, "last_price": 100.99, "run_id": "rig"},
        page_stats={"frames": 100, "read_ns": 200 * S, "shown_price": "100.99"},
        long_tasks={"count": 1, "total_ms": 60.0, "max_ms": 60.0},
    )


def _messages(row: dict) -> str:
    return " | ".join(f["message"] for f in row["findings"])


def test_clean_histories_pass():
    for h in (live(), restart(), keeps_up()):
        row = judge_browser(h, LIMITS)
        assert row["status"] == "passed", (h.name, row["findings"])
    assert judge_browser(restart(), LIMITS)["recovered_s"] == 1.0
    assert judge_browser(restart(), LIMITS)["declared_missing"] == 2


def test_a_page_that_misses_or_repeats_a_seq_fails():
    h = live()
    h.page.frames = [f for f in h.page.frames if f[1].get("seq") != 5]
    h.page.frames.append(_env(9, 30 * S))
    found = _messages(judge_browser(h, LIMITS))
    assert "the page's stream: run bot: " in found and "LOST 1" in found and "DUPLICATED" in found


def test_a_resume_answered_complete_that_skips_a_seq_fails():
    h = restart()
    h.page.frames = [
        _snapshot(24 * S, True) if f[1].get("type") == "snapshot" and f[0] == 24 * S else f for f in h.page.frames
    ]
    assert refused_resumes(h) == []
    assert "LOST 2" in _messages(judge_browser(h, LIMITS))


def test_wrong_values_on_the_page_fail_with_what_differs():
    h = live()
    dom = copy.deepcopy(DOM)
    dom["positions"]["BTCUSD"]["quantity"] = "1.5"
    dom["trades"] = ["t-3"]
    h.comparisons = [{"t_ns": 12 * S, "before": STATE, "dom": dom, "after": STATE}]
    found = _messages(judge_browser(h, LIMITS))
    assert "THE PAGE SHOWS WRONG VALUES" in found and "BTCUSD quantity: page '1.5', state 0.5" in found
    assert "recent trades" in found


def test_numbers_are_compared_as_numbers():
    assert page_differs(DOM, STATE) == []


def test_a_state_that_never_holds_still_is_invalid_not_passed():
    h = live()
    moved = {**STATE, "portfolio": {**STATE["portfolio"], "cash": 999.0}}
    h.comparisons = [{"t_ns": 12 * S, "before": STATE, "dom": DOM, "after": moved}]
    row = judge_browser(h, LIMITS)
    assert row["status"] == "invalid" and "never held still" in row["invalid_reasons"][0]


def test_console_errors_fail_except_the_refused_socket_during_the_outage():
    h = live()
    h.console = [[5 * S, "error", "TypeError: x is undefined"], [6 * S, "warning", "slow"]]
    row = judge_browser(h, LIMITS)
    assert row["status"] == "failed" and "THE PAGE'S CONSOLE: error: TypeError" in _messages(row)
    h = restart()
    h.console.append([40 * S, "error", "WebSocket connection to 'ws://x/ws/stream' failed"])
    assert "THE PAGE'S CONSOLE" in _messages(judge_browser(h, LIMITS))


def test_a_page_that_never_recovers_or_never_says_reconnecting_fails():
    h = restart()
    h.states = [s for s in h.states if s[1] != "connected" or s[0] < 20 * S] + [[40 * S, "reconnecting", "10"]]
    found = _messages(judge_browser(h, LIMITS))
    assert "THE PAGE DID NOT RECOVER: it still showed 'reconnecting'" in found
    h = restart()
    h.states = [[19 * S, "connected", "10"], [24 * S, "connected", "13"]]
    assert "THE PAGE NEVER SHOWED RECONNECTING" in _messages(judge_browser(h, LIMITS))
    h = restart()
    h.states[-1][0] = 40 * S
    assert "THE PAGE RECOVERED LATE: 17.0s" in _messages(judge_browser(h, LIMITS))


def test_a_page_that_falls_behind_under_load_fails():
    h = keeps_up()
    h.page_stats = {"frames": 60, "read_ns": 200 * S, "shown_price": "100.59"}
    found = _messages(judge_browser(h, LIMITS))
    assert "handled 60 of the 100 envelopes" in found and "shows price '100.59'" in found
    h = keeps_up()
    h.page.connections = 2
    h.long_tasks = {"count": 30, "total_ms": 2400.0, "max_ms": 300.0}
    found = _messages(judge_browser(h, LIMITS))
    assert "lost its connection under load" in found and "blocked 2400 ms in 30 long tasks" in found


def test_a_failed_rig_publisher_is_invalid():
    h = keeps_up()
    h.sent["error"] = "ConnectionRefusedError()"
    row = judge_browser(h, LIMITS)
    assert row["status"] == "invalid" and "publisher failed" in row["invalid_reasons"][0]


def test_a_browser_history_round_trips_and_is_judged_by_kind(tmp_path):
    h = restart()
    again = load_history(h.save(history_path(tmp_path, "browser", h.name)))
    assert judge_history(again, {"browser": LIMITS}, "browser") == judge_browser(h, LIMITS)


def test_seqs_after_the_settle_point_are_neither_lost_nor_unexpected():
    # The page kept receiving while it was compared: seqs 11-12 arrived, 13-14 not yet.
    h = live()
    h.page.frames += [_env(11, 20 * S), _env(12, 21 * S)]
    h.produced = {"run_id": "bot", "first_seq": 1, "judge_upto": 10, "last_seq": 14}
    assert judge_browser(h, LIMITS)["status"] == "passed"
    h.page.frames.append(_env(15, 22 * S))
    assert "UNEXPECTED" in _messages(judge_browser(h, LIMITS))
