"""A small finished trading session, consistent in every source the integration stage reads,
shared by the reconciliation tests and the integration judge's tests."""

from __future__ import annotations

from collections import Counter
from typing import Any

from trading_bot.portfolio import Portfolio

from wsrig.promtext import parse_metrics
from wsrig.reconcile import Sources

RUN = "run-0001"
PRICES = {"BTCUSD": 101.0, "ETHUSD": 52.0}
FILLS = [("BTCUSD", "buy", 2.0, 100.0), ("ETHUSD", "sell", 3.0, 50.0), ("BTCUSD", "sell", 0.5, 101.0)]


def finished_session() -> Sources:
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
