"""A moving-average crossover strategy over the random walk.

Pure: it sees prices and the current position and answers with a signal and, now and
then, an order intent. Tuned so that, at the default tick rate, orders flow steadily
(a few per second over three symbols) and a short test window sees many trades.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

__all__ = ["OrderIntent", "Signal", "Strategy"]


@dataclass(frozen=True)
class Signal:
    """A strategy decision for one symbol."""

    symbol: str
    action: str  # buy | sell | hold
    strength: float
    reason: str

    def to_data(self) -> dict[str, object]:
        """The ``signal`` payload."""
        return {
            "symbol": self.symbol,
            "action": self.action,
            "strength": self.strength,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class OrderIntent:
    """A market order the strategy wants placed."""

    symbol: str
    side: str  # buy | sell
    quantity: float


class _SymbolState:
    def __init__(self, slow: int) -> None:
        self.prices: deque[float] = deque(maxlen=slow)
        self.action = "hold"
        self.last_order_tick = -(10**9)


class Strategy:
    """Fast/slow moving-average crossover with a target notional per symbol.

    ``buy`` targets a long position of ``target_notional``; ``sell`` a short one of the
    same size; ``hold`` keeps the position. An order is the difference between the
    target and the current position, at most one per ``cooldown`` ticks per symbol.
    """

    def __init__(
        self,
        fast: int = 3,
        slow: int = 8,
        threshold: float = 0.0002,
        target_notional: float = 5_000.0,
        cooldown: int = 8,
    ) -> None:
        if not 0 < fast < slow:
            raise ValueError("need 0 < fast < slow")
        self._fast = fast
        self._slow = slow
        self._threshold = threshold
        self._target_notional = target_notional
        self._cooldown = cooldown
        self._state: dict[str, _SymbolState] = {}
        self._tick = 0

    def on_quote(
        self, symbol: str, price: float, position_qty: float, tick: int
    ) -> tuple[Signal, bool, OrderIntent | None]:
        """Feed one price; returns (signal, whether the action changed, order or None)."""
        st = self._state.setdefault(symbol, _SymbolState(self._slow))
        st.prices.append(price)
        if len(st.prices) < self._slow:
            return Signal(symbol, "hold", 0.0, "warming up"), False, None
        prices = list(st.prices)
        fast = sum(prices[-self._fast :]) / self._fast
        slow = sum(prices) / len(prices)
        spread = (fast - slow) / slow
        if spread > self._threshold:
            action = "buy"
        elif spread < -self._threshold:
            action = "sell"
        else:
            action = "hold"
        strength = round(min(1.0, abs(spread) / (10 * self._threshold)), 4)
        reason = f"ma{self._fast}={fast:.4f} ma{self._slow}={slow:.4f}"
        signal = Signal(symbol, action, strength, reason)
        changed = action != st.action
        st.action = action
        order = None
        if action != "hold" and tick - st.last_order_tick >= self._cooldown:
            target = self._target_notional / price
            if action == "sell":
                target = -target
            delta = round(target - position_qty, 6)
            # Only trade when far enough from target (avoid dust re-balancing).
            if abs(delta) * price >= 0.25 * self._target_notional:
                side = "buy" if delta > 0 else "sell"
                order = OrderIntent(symbol, side, abs(delta))
                st.last_order_tick = tick
        return signal, changed, order
