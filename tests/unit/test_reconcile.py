"""Tests of wsrig.reconcile: a consistent session agrees; each inconsistency is named."""

from __future__ import annotations

import copy

from _session_fixtures import finished_session as _session

from wsrig.promtext import parse_metrics
from wsrig.reconcile import Sources, reconcile


def _errors(sources: Sources) -> list[str]:
    return [f.message for f in reconcile(sources)[1]]


def test_consistent_session_has_no_finding():
    """Every row of a consistent session agrees, and the table covers each source."""
    rows, findings = reconcile(_session())
    assert findings == [], [f.message for f in findings]
    sources = {r.a_source for r in rows} | {r.b_source for r in rows}
    for name in ("bot /api/state", "backend /api/state", "client stream", "backend /api/trades", "bot /metrics"):
        assert any(name in s for s in sources), name


def test_stored_trade_with_wrong_quantity_is_named():
    """A backend that stored one trade with a wrong quantity: symbol, sources and values named."""
    s = _session()
    s.stored_trades = copy.deepcopy(s.stored_trades)
    s.stored_trades[0]["data"]["quantity"] = 20.0
    errors = _errors(s)
    assert any(
        "BTCUSD" in m and "backend /api/trades = 19.5" in m and "backend /api/state position = 1.5" in m for m in errors
    ), errors
    assert any("BTCUSD" in m and "client stream = 1.5" in m for m in errors), errors


def test_backend_position_differs_from_bot():
    """Backend position quantity differing from the bot's books names both values."""
    s = _session()
    s.backend_state = copy.deepcopy(s.backend_state)
    s.backend_state["positions"]["ETHUSD"]["quantity"] = -2.0
    errors = _errors(s)
    assert any(
        m.startswith("position quantity: ETHUSD: bot /api/state = -3 but backend /api/state = -2") for m in errors
    ), errors


def test_order_without_fill_or_cancel():
    """An order the client saw only as new (no fill, no cancel) is named with its id."""
    s = _session()
    s.stream = [e for e in s.stream if not (e["type"] == "order" and e["data"]["status"] == "filled" and e["seq"] == 3)]
    errors = _errors(s)
    assert any("orders without fill or cancel" in m and "client stream = 1 (" in m for m in errors), errors


def test_portfolio_mismatch_between_bot_and_backend():
    """A backend portfolio with other cash than the bot's own is reported with both values."""
    s = _session()
    s.backend_state = copy.deepcopy(s.backend_state)
    s.backend_state["portfolio"]["cash"] += 1.0
    errors = _errors(s)
    assert any(m.startswith("portfolio: cash: bot /api/state =") for m in errors), errors


def test_counts_broadcast_and_metrics_disagree():
    """Broadcast count not matching what clients got, and /metrics not matching /stats, are findings."""
    s = _session()
    s.clients_received -= 2
    s.bot_metrics = {**s.bot_metrics, 'bot_messages_produced_total{type="trade"}': 2.0}
    errors = _errors(s)
    assert any(m.startswith("broadcast = what clients got") for m in errors), errors
    assert any(m.startswith("/metrics = /stats: trade: bot /metrics = 2 but bot /stats = 3") for m in errors), errors


def test_lost_message_breaks_sent_equals_received():
    """A backend that received one message less than the bot sent breaks sent = received + dropped."""
    s = _session()
    s.backend_status = copy.deepcopy(s.backend_status)
    s.backend_status["counters"]["unique"] -= 1
    s.backend_status["counters"]["received_by_type"]["heartbeat"] = 0
    errors = _errors(s)
    assert any(m.startswith("sent = received + declared dropped") for m in errors), errors
    assert any(m.startswith("sent = received + dropped: heartbeat: bot /stats = 1 but") for m in errors), errors


def test_parse_metrics_keeps_labels():
    """Prometheus text -> samples keyed by name and labels; comments skipped."""
    m = parse_metrics('# HELP x y\n# TYPE x counter\nx{type="a"} 3\ny 1.5\nbad line\n')
    assert m == {'x{type="a"}': 3.0, "y": 1.5}
