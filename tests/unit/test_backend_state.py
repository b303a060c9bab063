"""Tests for dashboard_backend.state: positions, portfolio, trades, snapshot."""

from __future__ import annotations

from typing import Any

from dashboard_backend.state import DashboardState
from wscontract import validate_control

RUN = "run-0000-aaaa"


def env(seq: int, msg_type: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "v": 1,
        "type": msg_type,
        "source": "test",
        "run_id": RUN,
        "seq": seq,
        "ts_ns": 1,
        "data": data,
    }


def trade(seq: int) -> dict[str, Any]:
    return env(
        seq,
        "trade",
        {
            "trade_id": f"t{seq}",
            "order_id": f"o{seq}",
            "symbol": "BTC",
            "side": "buy",
            "quantity": 1,
            "price": 10.0,
        },
    )


def test_snapshot_holds_latest_state_and_validates():
    """Latest position per symbol and portfolio win; the snapshot matches its schema."""
    st = DashboardState()
    st.apply(env(1, "position", {"symbol": "BTC", "quantity": 1, "avg_price": 10}))
    st.apply(env(2, "position", {"symbol": "BTC", "quantity": 2, "avg_price": 11}))
    st.apply(env(3, "position", {"symbol": "ETH", "quantity": -1, "avg_price": 5}))
    st.apply(env(4, "portfolio", {"cash": 1, "equity": 2, "realized_pnl": 0, "unrealized_pnl": 0}))
    st.apply(trade(5))
    snap = st.snapshot(resumed=True)
    validate_control(snap)
    assert snap["positions"]["BTC"]["quantity"] == 2
    assert snap["positions"]["ETH"]["quantity"] == -1
    assert snap["portfolio"]["equity"] == 2
    assert [t["seq"] for t in snap["recent_trades"]] == [5]
    assert snap["runs"] == {RUN: 5}


def test_recent_trades_keeps_only_the_last_ones():
    """The trade ring keeps the newest N trades in order."""
    st = DashboardState(recent=3)
    for seq in range(1, 8):
        st.apply(trade(seq))
    assert [t["seq"] for t in st.snapshot(True)["recent_trades"]] == [5, 6, 7]


def test_empty_snapshot_validates():
    """A snapshot before any data has null portfolio and validates."""
    snap = DashboardState().snapshot(resumed=False)
    validate_control(snap)
    assert snap["portfolio"] is None and snap["resumed"] is False
