"""Tests of trading_bot.portfolio: average-cost accounting, cash, fees, counters."""

from __future__ import annotations

import random

import pytest
from trading_bot.portfolio import Portfolio, Position


def test_buy_then_sell_realizes_pnl():
    """Buy 2 @100, sell 2 @110: realized +20 gross, fees deducted from cash and net P&L."""
    pf = Portfolio(1000.0, fee_rate=0.001)
    pf.execute("o1", "X", "buy", 2.0, 100.0)
    fill = pf.execute("o2", "X", "sell", 2.0, 110.0)
    assert fill.realized_pnl == pytest.approx(20.0)
    pos = pf.positions["X"]
    assert pos.quantity == 0 and pos.realized_pnl == pytest.approx(20.0)
    fees = 0.2 + 0.22
    assert pf.fees == pytest.approx(fees)
    assert pf.cash == pytest.approx(1000.0 + 20.0 - fees)
    assert pf.realized_pnl() == pytest.approx(20.0 - fees)
    assert pf.trades == 2


def test_partial_close_and_flip():
    """Reducing keeps avg price; flipping realizes the closed part and opens at the fill."""
    pos = Position("X")
    pos.apply(4.0, 10.0)
    pos.apply(2.0, 13.0)  # avg 11
    assert pos.avg_price == pytest.approx(11.0)
    assert pos.apply(-3.0, 12.0) == pytest.approx(3.0)
    assert pos.quantity == pytest.approx(3.0) and pos.avg_price == pytest.approx(11.0)
    assert pos.apply(-5.0, 9.0) == pytest.approx(-6.0)  # close 3 @9, open short 2 @9
    assert pos.quantity == pytest.approx(-2.0) and pos.avg_price == pytest.approx(9.0)
    assert pos.apply(2.0, 8.0) == pytest.approx(2.0)  # short profits when price falls
    assert pos.quantity == 0 and pos.avg_price == 0


def test_quantity_is_sum_of_signed_trades_and_equity_identity():
    """Position = sum of signed fills; equity = start + realized(net) + unrealized."""
    rng = random.Random(7)
    pf = Portfolio(50_000.0)
    signed = 0.0
    price = 100.0
    for i in range(500):
        price *= 1 + rng.uniform(-0.01, 0.01)
        side = rng.choice(["buy", "sell"])
        qty = round(rng.uniform(0.1, 5.0), 3)
        pf.execute(f"o{i}", "X", side, qty, price)
        signed += qty if side == "buy" else -qty
    prices = {"X": price}
    assert pf.positions["X"].quantity == pytest.approx(signed, abs=1e-9)
    expected = pf.starting_cash + pf.realized_pnl() + pf.unrealized_pnl(prices)
    assert pf.equity(prices) == pytest.approx(expected, rel=1e-9)


def test_bad_orders_rejected():
    """Non-positive quantity or price, or an unknown side, raise."""
    pf = Portfolio()
    for args in (("X", "buy", 0.0, 1.0), ("X", "buy", 1.0, 0.0), ("X", "hold", 1.0, 1.0)):
        with pytest.raises(ValueError):
            pf.execute("o", *args)


def test_summary_shape():
    """summary() has the trading block /stats promises."""
    pf = Portfolio()
    pf.next_order_id("abcdefgh-1")
    pf.execute("o1", "X", "buy", 1.0, 10.0)
    s = pf.summary({"X": 11.0})
    assert s["orders"] == 1 and s["trades"] == 1
    assert s["positions"]["X"] == {"quantity": 1.0, "avg_price": 10.0, "realized_pnl": 0.0}
    assert {"cash", "equity", "realized_pnl", "ticks"} <= set(s)


def test_state_sums_fills_per_symbol_to_the_position():
    """The books' fills per symbol sum to the position; every order placed is filled."""
    pf = Portfolio(10_000.0)
    for side, qty, price in (("buy", 2.0, 10.0), ("sell", 0.5, 11.0), ("sell", 3.0, 12.0)):
        pf.execute(pf.next_order_id("run-abcdef"), "AAA", side, qty, price)
    state = pf.state({"AAA": 12.0})
    assert state["trades_by_symbol"]["AAA"] == {"count": 3, "net_quantity": -1.5}
    assert state["positions"]["AAA"]["quantity"] == -1.5
    assert state["orders"] == {"placed": 3, "filled": 3, "cancelled": 0, "open": 0}
    assert state["portfolio"]["trades"] == 3
