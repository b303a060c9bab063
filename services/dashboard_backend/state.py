"""The current dashboard state: positions, portfolio, recent trades. No I/O.

Fed with every broadcast envelope (so per run in increasing seq order); read for the
``snapshot`` frame of ``/ws/stream`` and for ``/api/state``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

__all__ = ["RECENT_TRADES", "DashboardState"]

#: How many trade envelopes the snapshot carries.
RECENT_TRADES = 100


class DashboardState:
    """Latest position per symbol, latest portfolio, the last trades, per-run seqs."""

    def __init__(self, recent: int = RECENT_TRADES) -> None:
        self.positions: dict[str, dict[str, Any]] = {}
        self.portfolio: dict[str, Any] | None = None
        self.recent_trades: deque[dict[str, Any]] = deque(maxlen=recent)
        self.runs: dict[str, int] = {}

    # --- input ----------------------------------------------------------------

    def apply(self, env: dict[str, Any]) -> None:
        """Fold one broadcast envelope into the state."""
        msg_type = env["type"]
        if msg_type == "position":
            self.positions[env["data"]["symbol"]] = env["data"]
        elif msg_type == "portfolio":
            self.portfolio = env["data"]
        elif msg_type == "trade":
            self.recent_trades.append(env)
        run_id = env["run_id"]
        if env["seq"] > self.runs.get(run_id, 0):
            self.runs[run_id] = env["seq"]

    def restore(
        self,
        positions: Iterable[dict[str, Any]],
        portfolio: dict[str, Any] | None,
        trades: Iterable[dict[str, Any]],
        runs: dict[str, int],
    ) -> None:
        """Reload from the store after a restart (position/portfolio/trade envelopes)."""
        for env in positions:
            self.positions[env["data"]["symbol"]] = env["data"]
        if portfolio is not None:
            self.portfolio = portfolio["data"]
        self.recent_trades.extend(trades)
        for run_id, seq in runs.items():
            self.runs[run_id] = max(seq, self.runs.get(run_id, 0))

    # --- output ---------------------------------------------------------------

    def snapshot(self, resumed: bool) -> dict[str, Any]:
        """The ``snapshot`` control frame (schemas/control/snapshot.schema.json)."""
        return {
            "type": "snapshot",
            "positions": dict(self.positions),
            "portfolio": self.portfolio,
            "recent_trades": list(self.recent_trades),
            "runs": dict(self.runs),
            "resumed": resumed,
        }
