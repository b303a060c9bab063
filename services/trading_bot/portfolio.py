"""Positions, cash and P&L for market orders that fill immediately.

Pure average-cost accounting with signed quantities (negative is short), a
proportional fee, and the counters (ticks, orders, trades) that ``/stats`` reports.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Fill", "Portfolio", "Position"]

_EPS = 1e-12


@dataclass
class Position:
    """One symbol's signed position under average-cost accounting."""

    symbol: str
    quantity: float = 0.0
    avg_price: float = 0.0
    realized_pnl: float = 0.0  # gross of fees

    def apply(self, signed_qty: float, price: float) -> float:
        """Add a fill of ``signed_qty`` at ``price``; returns realized P&L of this fill."""
        realized = 0.0
        q = self.quantity
        if q == 0 or (q > 0) == (signed_qty > 0):
            new_q = q + signed_qty
            self.avg_price = (abs(q) * self.avg_price + abs(signed_qty) * price) / abs(new_q)
            self.quantity = new_q
        else:
            closed = min(abs(q), abs(signed_qty))
            direction = 1.0 if q > 0 else -1.0
            realized = (price - self.avg_price) * closed * direction
            new_q = q + signed_qty
            if abs(new_q) <= _EPS:
                self.quantity, self.avg_price = 0.0, 0.0
            elif (new_q > 0) == (q > 0):
                self.quantity = new_q  # reduced, same side: avg unchanged
            else:
                self.quantity, self.avg_price = new_q, price  # flipped: rest opens at price
        self.realized_pnl += realized
        return realized

    def unrealized(self, market_price: float) -> float:
        return (market_price - self.avg_price) * self.quantity

    def to_data(self, market_price: float) -> dict[str, object]:
        """The ``position`` payload."""
        return {
            "symbol": self.symbol,
            "quantity": round(self.quantity, 8),
            "avg_price": round(self.avg_price, 6),
            "market_price": market_price,
            "unrealized_pnl": round(self.unrealized(market_price), 6),
            "realized_pnl": round(self.realized_pnl, 6),
        }


@dataclass(frozen=True)
class Fill:
    """The result of one market order: what ``trade`` reports."""

    trade_id: str
    order_id: str
    symbol: str
    side: str
    quantity: float
    price: float
    fee: float
    realized_pnl: float

    def to_data(self) -> dict[str, object]:
        """The ``trade`` payload."""
        return {
            "trade_id": self.trade_id,
            "order_id": self.order_id,
            "symbol": self.symbol,
            "side": self.side,
            "quantity": self.quantity,
            "price": self.price,
            "fee": self.fee,
            "realized_pnl": round(self.realized_pnl, 6),
        }


class Portfolio:
    """Cash, positions and counters; ``execute`` fills a market order at once."""

    def __init__(self, starting_cash: float = 100_000.0, fee_rate: float = 0.0002) -> None:
        self.starting_cash = starting_cash
        self.cash = starting_cash
        self.fee_rate = fee_rate
        self.fees = 0.0
        self.positions: dict[str, Position] = {}
        self.ticks = 0
        self.orders = 0
        self.trades = 0
        self._order_no = 0
        #: symbol -> [fills, signed quantity summed over fills]: the books' own audit trail
        self.traded: dict[str, list[float]] = {}

    # --- orders ------------------------------------------------------------------

    def next_order_id(self, run_id: str) -> str:
        self._order_no += 1
        self.orders += 1
        return f"{run_id[:8]}-o{self._order_no}"

    def execute(self, order_id: str, symbol: str, side: str, quantity: float, price: float) -> Fill:
        """Fill a market order of ``quantity`` (> 0) at ``price`` plus the fee."""
        if quantity <= 0 or price <= 0:
            raise ValueError("quantity and price must be > 0")
        if side not in ("buy", "sell"):
            raise ValueError(f"bad side {side!r}")
        signed = quantity if side == "buy" else -quantity
        notional = quantity * price
        fee = round(notional * self.fee_rate, 8)
        self.cash += -notional if side == "buy" else notional
        self.cash -= fee
        self.fees += fee
        pos = self.positions.setdefault(symbol, Position(symbol))
        realized = pos.apply(signed, price)
        self.trades += 1
        book = self.traded.setdefault(symbol, [0, 0.0])
        book[0] += 1
        book[1] += signed
        return Fill(
            trade_id=f"{order_id}-t1",
            order_id=order_id,
            symbol=symbol,
            side=side,
            quantity=quantity,
            price=price,
            fee=fee,
            realized_pnl=realized,
        )

    # --- valuation -----------------------------------------------------------------

    def position_qty(self, symbol: str) -> float:
        pos = self.positions.get(symbol)
        return pos.quantity if pos else 0.0

    def realized_pnl(self) -> float:
        """Net of fees."""
        return sum(p.realized_pnl for p in self.positions.values()) - self.fees

    def positions_value(self, prices: dict[str, float]) -> float:
        return sum(p.quantity * prices[s] for s, p in self.positions.items())

    def unrealized_pnl(self, prices: dict[str, float]) -> float:
        return sum(p.unrealized(prices[s]) for s, p in self.positions.items())

    def equity(self, prices: dict[str, float]) -> float:
        return self.cash + self.positions_value(prices)

    def to_data(self, prices: dict[str, float]) -> dict[str, object]:
        """The ``portfolio`` payload."""
        return {
            "cash": round(self.cash, 6),
            "equity": round(self.equity(prices), 6),
            "positions_value": round(self.positions_value(prices), 6),
            "realized_pnl": round(self.realized_pnl(), 6),
            "unrealized_pnl": round(self.unrealized_pnl(prices), 6),
            "fees": round(self.fees, 6),
            "trades": self.trades,
        }

    def state(self, prices: dict[str, float]) -> dict[str, object]:
        """The bot's own books for reconciliation: positions, portfolio, fills per symbol.

        Orders fill at once (market orders), so every order placed is filled; the
        counts say so rather than leaving the reader to assume it.
        """
        return {
            "positions": self._positions_out(),
            "portfolio": self.to_data(prices),
            "trades_by_symbol": {
                s: {"count": int(n), "net_quantity": round(q, 8)} for s, (n, q) in sorted(self.traded.items())
            },
            "orders": {"placed": self.orders, "filled": self.trades, "cancelled": 0, "open": 0},
        }

    def _positions_out(self) -> dict[str, dict[str, float]]:
        """Every position as /stats and the end-of-session report show it (rounded once, here)."""
        return {
            s: {
                "quantity": round(p.quantity, 8),
                "avg_price": round(p.avg_price, 6),
                "realized_pnl": round(p.realized_pnl, 6),
            }
            for s, p in sorted(self.positions.items())
        }

    def summary(self, prices: dict[str, float]) -> dict[str, object]:
        """The ``trading`` block of ``/stats``."""
        return {
            "ticks": self.ticks,
            "orders": self.orders,
            "trades": self.trades,
            "positions": self._positions_out(),
            "cash": round(self.cash, 6),
            "equity": round(self.equity(prices), 6),
            "realized_pnl": round(self.realized_pnl(), 6),
            "fees": round(self.fees, 6),
        }
