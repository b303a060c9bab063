"""Tests of trading_bot.simulation: the events one tick produces."""

from __future__ import annotations

import json
from collections import Counter

from trading_bot.publisher_core import MemoryOutbox, PublisherCore
from trading_bot.simulation import Simulation
from wscontract import validate_envelope


def run_sim(ticks: int, interval: float = 0.1) -> tuple[list[tuple[str, dict]], Simulation]:
    events: list[tuple[str, dict]] = []

    def emit(t: str, d: dict) -> int:
        events.append((t, d))
        return len(events)

    sim = Simulation("run-sim-00001", emit, status=lambda: {"connected": True, "queue_depth": 3})
    for i in range(ticks):
        sim.step(i * interval)
    return events, sim


def test_event_mix_and_cadence():
    """Per tick one market_data per symbol; heartbeat 1/s; bot_status 1/5s; orders flow."""
    events, sim = run_sim(300)  # 30 s
    c = Counter(t for t, _ in events)
    assert c["market_data"] == 900
    assert 29 <= c["heartbeat"] <= 31 and 6 <= c["bot_status"] <= 8
    assert c["trade"] >= 30 and c["order"] == 2 * c["trade"] == 2 * c["position"]
    assert c["signal"] > 0 and c["portfolio"] > 0 and c["alert"] >= 1
    assert sim.portfolio.ticks == 300 and sim.portfolio.trades == c["trade"]


def test_order_lifecycle_sequence():
    """Each order is new -> trade -> filled -> position, for the same order_id."""
    events, _ = run_sim(200)
    for i, (t, d) in enumerate(events):
        if t == "order" and d["status"] == "new":
            trade, filled, pos = events[i + 1], events[i + 2], events[i + 3]
            assert trade[0] == "trade" and trade[1]["order_id"] == d["order_id"]
            assert filled[0] == "order" and filled[1]["status"] == "filled"
            assert filled[1]["order_id"] == d["order_id"]
            assert pos[0] == "position" and pos[1]["symbol"] == d["symbol"]


def test_positions_equal_sum_of_trades():
    """Each symbol's position equals the sum of its signed trade quantities."""
    events, sim = run_sim(500)
    signed: Counter[str] = Counter()
    for t, d in events:
        if t == "trade":
            signed[d["symbol"]] += d["quantity"] if d["side"] == "buy" else -d["quantity"]
    for symbol, pos in sim.portfolio.positions.items():
        assert abs(pos.quantity - signed[symbol]) < 1e-6


def test_every_event_validates_through_the_core():
    """Every event of a real run, wrapped by the core, validates against the contract."""
    core = PublisherCore("run-sim-00002", MemoryOutbox(), 100_000)
    sim = Simulation(core.run_id, core.produce)
    for i in range(100):
        sim.step(i * 0.1)
    sim.emit_status("stopping", 10.0)
    frames = core.on_welcome(0)
    assert len(frames) == core.last_seq
    for f in frames:
        validate_envelope(json.loads(f.text))
