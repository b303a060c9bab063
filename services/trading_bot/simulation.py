"""One trading tick: market -> strategy -> orders -> fills -> events.

Pure: ``step(now)`` advances the market and emits events through a callback (the
publisher core's ``produce``), which only buffers. Nothing here can wait for the
network, so trading goes on whatever the dashboard does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trading_bot.market import Market
from trading_bot.portfolio import Portfolio
from trading_bot.strategy import Strategy

__all__ = ["Emit", "Simulation"]

#: ``emit(type, data)`` -> seq
Emit = Callable[[str, dict[str, Any]], int]


class Simulation:
    """The bot's trading loop body; the caller runs ``step`` every tick interval.

    Per tick and symbol: a ``market_data``; a ``signal`` when the action changes or
    every ``signal_every`` ticks; for an order: ``order`` (new), ``trade``, ``order``
    (filled), ``position``. Then ``portfolio`` after any fill (and at least once a
    second), ``heartbeat`` every second and ``bot_status`` every five.
    """

    def __init__(
        self,
        run_id: str,
        emit: Emit,
        symbols: tuple[str, ...] | list[str] = ("BTCUSD", "ETHUSD", "SOLUSD"),
        seed: int = 42,
        starting_cash: float = 100_000.0,
        *,
        status: Callable[[], dict[str, Any]] | None = None,
        signal_every: int = 10,
        heartbeat_every: float = 1.0,
        status_every: float = 5.0,
        portfolio_every: float = 1.0,
        drawdown_alert: float = 0.02,
    ) -> None:
        self.run_id = run_id
        self._emit = emit
        self.market = Market(symbols, seed=seed)
        self.strategy = Strategy()
        self.portfolio = Portfolio(starting_cash)
        self._status = status or (lambda: {})
        self._signal_every = signal_every
        self._heartbeat_every = heartbeat_every
        self._status_every = status_every
        self._portfolio_every = portfolio_every
        self._drawdown_alert = drawdown_alert
        self._started: float | None = None
        self._last_heartbeat = -1e18
        self._last_status = -1e18
        self._last_portfolio = -1e18
        self._in_drawdown = False

    # --- the tick ------------------------------------------------------------------

    def step(self, now: float) -> None:
        """Run one tick at monotonic time ``now`` (seconds)."""
        if self._started is None:
            self._started = now
            self.emit_status("starting", now)
            self._emit(
                "alert",
                {"level": "info", "code": "bot_started", "message": f"run {self.run_id} started"},
            )
        pf = self.portfolio
        pf.ticks += 1
        tick = self.market.tick + 1
        traded = False
        for quote in self.market.step():
            self._emit("market_data", quote.to_data())
            qty = pf.position_qty(quote.symbol)
            signal, changed, intent = self.strategy.on_quote(quote.symbol, quote.price, qty, tick)
            if changed or tick % self._signal_every == 0:
                self._emit("signal", signal.to_data())
            if intent is None:
                continue
            order_id = pf.next_order_id(self.run_id)
            order = {
                "order_id": order_id,
                "symbol": intent.symbol,
                "side": intent.side,
                "quantity": intent.quantity,
                "price": quote.price,
                "order_type": "market",
                "status": "new",
            }
            self._emit("order", order)
            fill = pf.execute(order_id, intent.symbol, intent.side, intent.quantity, quote.price)
            self._emit("trade", fill.to_data())
            self._emit("order", {**order, "price": fill.price, "status": "filled"})
            self._emit("position", pf.positions[intent.symbol].to_data(quote.price))
            traded = True
        prices = self.market.prices()
        if traded or now - self._last_portfolio >= self._portfolio_every:
            self._last_portfolio = now
            self._emit("portfolio", pf.to_data(prices))
            self._check_drawdown(prices)
        if now - self._last_heartbeat >= self._heartbeat_every:
            self._last_heartbeat = now
            self._emit("heartbeat", {"uptime_s": round(now - self._started, 3), "tick": pf.ticks})
        if now - self._last_status >= self._status_every:
            self.emit_status("trading", now)

    def end_session(self) -> None:
        """Close the trading session: a last ``portfolio`` at the final prices, an alert.

        After this no tick runs, so the bot's books, the backend's state and a client's
        view can be compared exactly (the integration stage does).
        """
        self._emit("portfolio", self.portfolio.to_data(self.market.prices()))
        self._emit(
            "alert",
            {
                "level": "info",
                "code": "session_ended",
                "message": f"run {self.run_id} ended its trading session after {self.portfolio.ticks} ticks",
            },
        )

    def emit_status(self, state: str, now: float) -> None:
        """A ``bot_status`` event (``starting``, ``trading`` or ``stopping``)."""
        self._last_status = now
        data: dict[str, Any] = {"state": state, "connected": False}
        data.update(self._status())
        data["state"] = state
        self._emit("bot_status", data)

    def _check_drawdown(self, prices: dict[str, float]) -> None:
        equity = self.portfolio.equity(prices)
        start = self.portfolio.starting_cash
        down = equity < start * (1 - self._drawdown_alert)
        if down and not self._in_drawdown:
            self._emit(
                "alert",
                {
                    "level": "warning",
                    "code": "drawdown",
                    "message": f"equity {equity:.2f} is {100 * (1 - equity / start):.2f}% below starting cash",
                },
            )
        self._in_drawdown = down

    # --- views ---------------------------------------------------------------------

    def books(self) -> dict[str, Any]:
        """The bot's own positions, portfolio, fills per symbol and orders (``/api/state``)."""
        return self.portfolio.state(self.market.prices())

    def trading_stats(self) -> dict[str, Any]:
        """The ``trading`` block of ``/stats``."""
        return self.portfolio.summary(self.market.prices())
