"""Seeded synthetic market: a geometric random walk per symbol.

Pure and deterministic for a given seed, so tests and runs are reproducible and the
rig never depends on a real market feed.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

__all__ = ["DEFAULT_PRICES", "Market", "Quote"]

#: Starting prices of well-known symbols; others start at 100.
DEFAULT_PRICES = {"BTCUSD": 60_000.0, "ETHUSD": 3_000.0, "SOLUSD": 150.0}


@dataclass(frozen=True)
class Quote:
    """One tick of one symbol."""

    symbol: str
    price: float
    bid: float
    ask: float
    volume: float
    tick: int

    def to_data(self) -> dict[str, object]:
        """The ``market_data`` payload."""
        return {
            "symbol": self.symbol,
            "price": self.price,
            "bid": self.bid,
            "ask": self.ask,
            "volume": self.volume,
            "tick": self.tick,
        }


class Market:
    """Random-walk prices: ``step()`` advances every symbol by one tick."""

    def __init__(
        self,
        symbols: tuple[str, ...] | list[str],
        seed: int = 42,
        volatility: float = 0.001,
        spread: float = 0.0005,
    ) -> None:
        self._rng = random.Random(seed)
        self._symbols = tuple(symbols)
        self._volatility = volatility
        self._spread = spread
        self._prices = {s: DEFAULT_PRICES.get(s, 100.0) for s in self._symbols}
        self.tick = 0

    @property
    def symbols(self) -> tuple[str, ...]:
        return self._symbols

    def price(self, symbol: str) -> float:
        return self._prices[symbol]

    def prices(self) -> dict[str, float]:
        return dict(self._prices)

    def step(self) -> list[Quote]:
        """Advance one tick; one quote per symbol, in symbol order."""
        self.tick += 1
        quotes = []
        for symbol in self._symbols:
            shock = self._rng.gauss(0.0, self._volatility)
            price = max(self._prices[symbol] * math.exp(shock), 0.01)
            price = round(price, 4)
            self._prices[symbol] = price
            half = price * self._spread / 2
            volume = round(self._rng.expovariate(1.0) * 10, 4)
            quotes.append(
                Quote(
                    symbol=symbol,
                    price=price,
                    bid=round(max(price - half, 0.0001), 4),
                    ask=round(price + half, 4),
                    volume=volume,
                    tick=self.tick,
                )
            )
        return quotes
