"""Tests of trading_bot.market: the seeded random walk."""

from __future__ import annotations

from trading_bot.market import Market


def test_same_seed_same_path():
    """Two markets with one seed produce identical quotes."""
    a, b = Market(["BTCUSD", "ZZZ"], seed=1), Market(["BTCUSD", "ZZZ"], seed=1)
    assert [a.step() for _ in range(50)] == [b.step() for _ in range(50)]
    assert Market(["BTCUSD"], seed=2).step() != Market(["BTCUSD"], seed=1).step()


def test_quotes_are_positive_with_spread():
    """Prices stay positive, bid < price < ask, ticks count up."""
    m = Market(["BTCUSD", "SOLUSD"], seed=3)
    for i in range(1, 2000):
        for q in m.step():
            assert 0 < q.bid < q.price < q.ask
            assert q.tick == i and q.volume >= 0
    assert m.tick == 1999
