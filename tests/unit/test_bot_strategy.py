"""Tests of trading_bot.strategy: MA crossover signals and order intents."""

from __future__ import annotations

from trading_bot.market import Market
from trading_bot.strategy import Strategy


def test_warm_up_holds():
    """Before the slow window fills, the signal is hold and no order is placed."""
    s = Strategy(fast=2, slow=5)
    for tick in range(4):
        signal, _, order = s.on_quote("X", 100.0 + tick, 0.0, tick)
        assert signal.action == "hold" and order is None


def test_uptrend_buys_toward_target():
    """A rising price gives a buy signal and an order for the target notional."""
    s = Strategy(fast=2, slow=4, target_notional=1000.0, cooldown=1)
    orders = []
    for tick, price in enumerate([100, 100, 100, 100, 101, 102, 103]):
        signal, _, order = s.on_quote("X", float(price), 0.0, tick)
        if order:
            orders.append(order)
    assert signal.action == "buy" and 0 < signal.strength <= 1
    assert orders and orders[0].side == "buy"
    assert orders[0].quantity * 101 == 1000.0 or abs(orders[0].quantity * 101 - 1000) < 1e-3


def test_order_rate_at_default_tick():
    """Over the seeded walk, 3 symbols at 10 ticks/s give roughly 1-3 orders a second."""
    market, strategy = Market(["BTCUSD", "ETHUSD", "SOLUSD"], seed=42), Strategy()
    positions = {s: 0.0 for s in market.symbols}
    orders = 0
    ticks = 600  # 60 s at 0.1 s
    for _ in range(ticks):
        for q in market.step():
            _, _, order = strategy.on_quote(q.symbol, q.price, positions[q.symbol], q.tick)
            if order:
                orders += 1
                positions[q.symbol] += order.quantity if order.side == "buy" else -order.quantity
    assert 1.0 <= orders / (ticks * 0.1) <= 3.0
