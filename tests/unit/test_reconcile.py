"""Tests of wsrig.reconcile: a consistent session agrees; each inconsistency is named."""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

from trading_bot.portfolio import Portfolio

from wsrig.promtext import parse_metrics
from wsrig.reconcile import Sources, reconcile

RUN = "run-0001"
PRICES = {"BTCUSD": 101.0, "ETHUSD": 52.0}
FILLS = [("BTCUSD", "buy", 2.0, 100.0), ("ETHUSD", "sell", 3.0, 50.0), ("BTCUSD", "sell", 0.5, 101.0)]


def _session() -> Sources:
    """A small finished session, consistent in every source (built with the bot's books)."""
    pf = Portfolio(10_000.0)
    stream: list[dict[str, Any]] = []

    def emit(kind: str, data: dict[str, Any]) -> None:
        stream.append({"v": 1, "type": kind, "run_id": RUN, "seq": len(stream) + 1, "ts_ns": 1, "data": data})

    for symbol, side, qty, price in FILLS:
        oid = pf.next_order_id(RUN)
        order = {"order_id": oid, "symbol": symbol, "side": side, "quantity": qty, "price": price, "status": "new"}
        emit("order", order)
        emit("trade", pf.execute(oid, symbol, side, qty, price).to_data())
        emit("order", {**order, "status": "filled"})
        emit("position", pf.positions[symbol].to_data(price))
    emit("portfolio", pf.to_data(PRICES))
    emit("heartbeat", {"uptime_s": 1.0, "tick": 1})
    produced = dict(Counter(e["type"] for e in stream))
    n = len(stream)
    stats = {
        "run_id": RUN, "last_seq": n, "acked_seq": n, "produced_by_type": produced, "dropped_by_type": {},
        "declared_dropped_total": 0, "sent_total": n, "trading": {"trades": 3, "orders": 3},
    }  # fmt: skip
    bot_metrics = "\n".join(
        [f'bot_messages_produced_total{{type="{k}"}} {v}' for k, v in produced.items()]
        + [f"bot_last_seq {n}", f"bot_acked_seq {n}", "bot_trades_total 3", "bot_orders_total 3"]
        + [f"bot_messages_sent_total {n}"]
    )
    counters = {
        "received_by_type": produced, "unique": n, "declared_dropped": 0, "duplicates": 0, "broadcast": n,
    }  # fmt: skip
    backend_metrics = "\n".join(
        [f'dashboard_messages_received_total{{type="{k}"}} {v}' for k, v in produced.items()]
        + [f"dashboard_broadcast_total {n}", f"dashboard_messages_unique_total {n}"]
        + ["dashboard_declared_dropped_total 0", "dashboard_duplicates_total 0"]
    )
    positions = {e["data"]["symbol"]: e["data"] for e in stream if e["type"] == "position"}
    return Sources(
        run_id=RUN,
        bot_state={"run_id": RUN, "last_seq": n, **pf.state(PRICES)},
        bot_stats=stats,
        bot_metrics=parse_metrics(bot_metrics),
        backend_state={"positions": positions, "portfolio": pf.to_data(PRICES)},
        backend_status={"counters": counters, "runs": {RUN: {"last_seq": n, "acked_seq": n}}},
        backend_metrics=parse_metrics(backend_metrics),
        stored_trades=[e for e in stream if e["type"] == "trade"],
        stored_orders=[e for e in stream if e["type"] == "order"],
        stream=stream,
        clients_received=n,
    )


def _errors(sources: Sources) -> list[str]:
    return [f.message for f in reconcile(sources)[1]]


def test_consistent_session_has_no_finding():
    """Every row of a consistent session agrees, and the table covers each source."""
    rows, findings = reconcile(_session())
    assert findings == [], [f.message for f in findings]
    sources = {r.a_source for r in rows} | {r.b_source for r in rows}
    for name in ("bot /api/state", "backend /api/state", "client stream", "backend /api/trades", "bot /metrics"):
        assert any(name in s for s in sources), name


def test_stored_trade_with_wrong_quantity_is_named():
    """A backend that stored one trade with a wrong quantity: symbol, sources and values named."""
    s = _session()
    s.stored_trades = copy.deepcopy(s.stored_trades)
    s.stored_trades[0]["data"]["quantity"] = 20.0
    errors = _errors(s)
    assert any(
        "BTCUSD" in m and "backend /api/trades = 19.5" in m and "backend /api/state position = 1.5" in m for m in errors
    ), errors
    assert any("BTCUSD" in m and "client stream = 1.5" in m for m in errors), errors


def test_backend_position_differs_from_bot():
    """Backend position quantity differing from the bot's books names both values."""
    s = _session()
    s.backend_state = copy.deepcopy(s.backend_state)
    s.backend_state["positions"]["ETHUSD"]["quantity"] = -2.0
    errors = _errors(s)
    assert any(
        m.startswith("position quantity: ETHUSD: bot /api/state = -3 but backend /api/state = -2") for m in errors
    ), errors


def test_order_without_fill_or_cancel():
    """An order the client saw only as new (no fill, no cancel) is named with its id."""
    s = _session()
    s.stream = [e for e in s.stream if not (e["type"] == "order" and e["data"]["status"] == "filled" and e["seq"] == 3)]
    errors = _errors(s)
    assert any("orders without fill or cancel" in m and "client stream = 1 (" in m for m in errors), errors


def test_portfolio_mismatch_between_bot_and_backend():
    """A backend portfolio with other cash than the bot's own is reported with both values."""
    s = _session()
    s.backend_state = copy.deepcopy(s.backend_state)
    s.backend_state["portfolio"]["cash"] += 1.0
    errors = _errors(s)
    assert any(m.startswith("portfolio: cash: bot /api/state =") for m in errors), errors


def test_counts_broadcast_and_metrics_disagree():
    """Broadcast count not matching what clients got, and /metrics not matching /stats, are findings."""
    s = _session()
    s.clients_received -= 2
    s.bot_metrics = {**s.bot_metrics, 'bot_messages_produced_total{type="trade"}': 2.0}
    errors = _errors(s)
    assert any(m.startswith("broadcast = what clients got") for m in errors), errors
    assert any(m.startswith("/metrics = /stats: trade: bot /metrics = 2 but bot /stats = 3") for m in errors), errors


def test_lost_message_breaks_sent_equals_received():
    """A backend that received one message less than the bot sent breaks sent = received + dropped."""
    s = _session()
    s.backend_status = copy.deepcopy(s.backend_status)
    s.backend_status["counters"]["unique"] -= 1
    s.backend_status["counters"]["received_by_type"]["heartbeat"] = 0
    errors = _errors(s)
    assert any(m.startswith("sent = received + declared dropped") for m in errors), errors
    assert any(m.startswith("sent = received + dropped: heartbeat: bot /stats = 1 but") for m in errors), errors


def test_parse_metrics_keeps_labels():
    """Prometheus text -> samples keyed by name and labels; comments skipped."""
    m = parse_metrics('# HELP x y\n# TYPE x counter\nx{type="a"} 3\ny 1.5\nbad line\n')
    assert m == {'x{type="a"}': 3.0, "y": 1.5}
