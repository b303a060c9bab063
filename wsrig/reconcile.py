"""Reconcile one finished trading session across every source that saw it.

Pure: the integration stage gathers, once the session has ended and everything is
acked, what the bot says (``/api/state``, ``/stats``, ``/metrics``), what the backend
holds (``/api/state``, ``/api/websocket/status``, ``/metrics``, ``/api/trades``,
``/api/events``) and what a dashboard client received from seq 1. This module compares
them and answers with a table of rows, each naming the two sources and their values;
every row that does not agree is a finding worded the same way. Because the bot has
stopped trading (``SYSTEM__TRADING_SESSION_S``), every comparison is exact (floats to
the six decimals both sides round to).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from wsrig.checkers import Finding
from wsrig.promtext import sample

__all__ = ["Row", "Sources", "reconcile"]

#: Order statuses that close an order.
FINAL_ORDER_STATUSES = frozenset({"filled", "cancelled", "rejected"})
POSITION_FIELDS = ("quantity", "avg_price", "realized_pnl")
PORTFOLIO_FIELDS = ("cash", "equity", "positions_value", "realized_pnl", "unrealized_pnl", "fees", "trades")
ABS_TOL = 1e-6

# Source names, as findings and the report print them.
BOT_STATE = "bot /api/state"
BOT_STATS = "bot /stats"
BOT_METRICS = "bot /metrics"
BACKEND_STATE = "backend /api/state"
BACKEND_STATUS = "backend /api/websocket/status"
BACKEND_METRICS = "backend /metrics"
BACKEND_TRADES = "backend /api/trades"
BACKEND_ORDERS = "backend /api/events (orders)"
CLIENT = "client stream"


@dataclass(frozen=True)
class Row:
    """One comparison: ``a_source`` says ``a_value``, ``b_source`` says ``b_value``."""

    check: str
    subject: str
    a_source: str
    a_value: Any
    b_source: str
    b_value: Any
    ok: bool
    #: a headline row (shown in the report even when it agrees); detail rows only on mismatch
    key: bool = True

    @property
    def name(self) -> str:
        return f"{self.check}: {self.subject}" if self.subject else self.check

    def message(self) -> str:
        return f"{self.name}: {self.a_source} = {_show(self.a_value)} but {self.b_source} = {_show(self.b_value)}"

    def serialize(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "subject": self.subject,
            "a_source": self.a_source,
            "a_value": self.a_value,
            "b_source": self.b_source,
            "b_value": self.b_value,
            "ok": self.ok,
            "key": self.key,
        }

    def finding(self) -> Finding:
        """The error finding of a row that does not agree, naming its check and both sides."""
        evidence = {k: v for k, v in self.serialize().items() if k not in ("check", "ok", "key")}
        return Finding("error", self.message(), check=self.check, evidence=evidence)


@dataclass
class Sources:
    """Everything gathered after the session, already decoded (JSON, parsed /metrics)."""

    run_id: str
    bot_state: Mapping[str, Any]
    bot_stats: Mapping[str, Any]
    bot_metrics: Mapping[str, float]
    backend_state: Mapping[str, Any]
    backend_status: Mapping[str, Any]
    backend_metrics: Mapping[str, float]
    #: stored trade envelopes of the run (``/api/trades?run_id=``)
    stored_trades: list[Mapping[str, Any]]
    #: stored order envelopes of the run (``/api/events?types=order``)
    stored_orders: list[Mapping[str, Any]]
    #: every envelope the client received, in arrival order
    stream: list[Mapping[str, Any]]
    #: envelope frames all of the backend's clients received (the stage's client only)
    clients_received: int = 0


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.8f}".rstrip("0").rstrip(".") if value == value else "nan"
    return "(missing)" if value is None else str(value)


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _tidy(value: Any) -> Any:
    """A whole float (a /metrics sample) as an int, so the table shows counts as counts."""
    return int(value) if isinstance(value, float) and value.is_integer() and abs(value) < 2**53 else value


def _same(a: Any, b: Any) -> bool:
    fa, fb = _num(a), _num(b)
    if fa is not None and fb is not None:
        return math.isclose(fa, fb, rel_tol=0.0, abs_tol=ABS_TOL)
    return bool(a == b)


class _Table:
    def __init__(self) -> None:
        self.rows: list[Row] = []

    def compare(self, check: str, subject: str, a_src: str, a: Any, b_src: str, b: Any, key: bool = True) -> None:
        a, b = _tidy(a), _tidy(b)
        self.rows.append(Row(check, subject, a_src, a, b_src, b, ok=_same(a, b) and a is not None, key=key))


# --- the stream, rebuilt as a dashboard would ---------------------------------------


def _of_run(envs: Iterable[Mapping[str, Any]], run_id: str) -> list[Mapping[str, Any]]:
    return sorted((e for e in envs if e.get("run_id") == run_id), key=lambda e: int(e.get("seq", 0)))


def _last_by_symbol(envs: list[Mapping[str, Any]], msg_type: str) -> dict[str, Mapping[str, Any]]:
    out: dict[str, Mapping[str, Any]] = {}
    for e in envs:
        if e.get("type") == msg_type:
            out[str(e["data"].get("symbol"))] = e["data"]
    return out


def _trade_books(trades: Iterable[Mapping[str, Any]]) -> dict[str, tuple[int, float]]:
    """symbol -> (fills, signed quantity summed in seq order, as the bot's books add them)."""
    books: dict[str, tuple[int, float]] = {}
    for t in trades:
        d = t["data"]
        n, q = books.get(str(d["symbol"]), (0, 0.0))
        signed = float(d["quantity"]) if d.get("side") == "buy" else -float(d["quantity"])
        books[str(d["symbol"])] = (n + 1, q + signed)
    return books


def _open_orders(orders: Iterable[Mapping[str, Any]], trades: Iterable[Mapping[str, Any]]) -> list[str]:
    """Order ids with no final status, or reported filled with no trade behind them."""
    status: dict[str, str] = {}
    for e in orders:
        d = e["data"]
        oid = str(d.get("order_id"))
        if status.get(oid) not in FINAL_ORDER_STATUSES:
            status[oid] = str(d.get("status"))
    traded = {str(t["data"].get("order_id")) for t in trades}
    out = [oid for oid, st in status.items() if st not in FINAL_ORDER_STATUSES]
    out += [oid for oid, st in status.items() if st == "filled" and oid not in traded]
    return sorted(out)


# --- the comparisons -------------------------------------------------------------------


def _orders(t: _Table, s: Sources, stream: list[Mapping[str, Any]]) -> None:
    stream_orders = [e for e in stream if e.get("type") == "order"]
    stream_trades = [e for e in stream if e.get("type") == "trade"]
    stored_orders = _of_run(s.stored_orders, s.run_id)
    bot_orders = s.bot_state.get("orders", {})
    placed = bot_orders.get("placed")
    t.compare("orders placed", "", BOT_STATE, placed, CLIENT, len({e["data"]["order_id"] for e in stream_orders}))
    t.compare(
        "orders placed", "", BOT_STATE, placed, BACKEND_ORDERS, len({e["data"]["order_id"] for e in stored_orders})
    )
    t.compare(
        "orders closed (filled + cancelled)", "", BOT_STATE, placed,
        BOT_STATE, (bot_orders.get("filled") or 0) + (bot_orders.get("cancelled") or 0),
    )  # fmt: skip
    for src, orders, trades in (
        (CLIENT, stream_orders, stream_trades),
        (BACKEND_ORDERS, stored_orders, _of_run(s.stored_trades, s.run_id)),
    ):
        open_ = _open_orders(orders, trades)
        shown = ", ".join(open_[:5]) + (f", ... ({len(open_)} in all)" if len(open_) > 5 else "")
        t.rows.append(
            Row(
                "orders without fill or cancel",
                "",
                "expected",
                0,
                src,
                f"{len(open_)} ({shown})" if open_ else 0,
                ok=not open_,
            )
        )


def _positions(t: _Table, s: Sources, stream: list[Mapping[str, Any]]) -> None:
    bot = s.bot_state.get("positions", {})
    backend = s.backend_state.get("positions", {})
    client = _last_by_symbol(stream, "position")
    for symbol in sorted(set(bot) | set(backend) | set(client)):
        for f in POSITION_FIELDS:
            b, k, c = (
                (bot.get(symbol) or {}).get(f),
                (backend.get(symbol) or {}).get(f),
                (client.get(symbol) or {}).get(f),
            )
            headline = f == "quantity"
            t.compare(f"position {f}", symbol, BOT_STATE, b, BACKEND_STATE, k, key=headline)
            t.compare(f"position {f}", symbol, BACKEND_STATE, k, CLIENT, c, key=headline)


def _trades(t: _Table, s: Sources, stream: list[Mapping[str, Any]]) -> None:
    """Sum of trades per symbol = position, in each source; fill counts agree."""
    bot_books = {
        k: (int(v["count"]), float(v["net_quantity"])) for k, v in s.bot_state.get("trades_by_symbol", {}).items()
    }
    stored = _trade_books(_of_run(s.stored_trades, s.run_id))
    client = _trade_books(e for e in stream if e.get("type") == "trade")
    bot_pos = s.bot_state.get("positions", {})
    backend_pos = s.backend_state.get("positions", {})
    client_pos = _last_by_symbol(stream, "position")
    symbols = sorted(set(bot_books) | set(stored) | set(client))
    for symbol in symbols:

        def qty(positions: Mapping[str, Any], sym: str = symbol) -> Any:
            return (positions.get(sym) or {}).get("quantity", 0.0 if sym not in positions else None)

        def net(books: Mapping[str, tuple[int, float]], sym: str = symbol) -> float:
            return round(books.get(sym, (0, 0.0))[1], 8)

        def count(books: Mapping[str, tuple[int, float]], sym: str = symbol) -> int:
            return books.get(sym, (0, 0.0))[0]

        t.compare(
            "sum of trades = position",
            symbol,
            BOT_STATE + " trades",
            net(bot_books),
            BOT_STATE + " position",
            qty(bot_pos),
        )
        t.compare(
            "sum of trades = position",
            symbol,
            BACKEND_TRADES,
            net(stored),
            BACKEND_STATE + " position",
            qty(backend_pos),
        )
        t.compare(
            "sum of trades = position", symbol, CLIENT + " trades", net(client), CLIENT + " position", qty(client_pos)
        )
        t.compare("sum of trades", symbol, BACKEND_TRADES, net(stored), CLIENT, net(client), key=False)
        t.compare("trades", symbol, BOT_STATE, count(bot_books), BACKEND_TRADES, count(stored), key=False)
        t.compare("trades", symbol, BACKEND_TRADES, count(stored), CLIENT, count(client), key=False)


def _portfolio(t: _Table, s: Sources, stream: list[Mapping[str, Any]]) -> None:
    bot = s.bot_state.get("portfolio") or {}
    backend = s.backend_state.get("portfolio") or {}
    last = [e for e in stream if e.get("type") == "portfolio"]
    client = last[-1]["data"] if last else {}
    for f in PORTFOLIO_FIELDS:
        headline = f in ("cash", "equity", "trades")
        t.compare("portfolio", f, BOT_STATE, bot.get(f), BACKEND_STATE, backend.get(f), key=headline)
        t.compare("portfolio", f, BACKEND_STATE, backend.get(f), CLIENT, client.get(f), key=headline)


def _counts(t: _Table, s: Sources, stream: list[Mapping[str, Any]]) -> None:
    """Counts agree across the bot's /stats and /metrics, the backend's status and /metrics."""
    stats = s.bot_stats
    counters = s.backend_status.get("counters", {})
    run = (s.backend_status.get("runs") or {}).get(s.run_id, {})
    last_seq = stats.get("last_seq")
    t.compare("last seq", "", BOT_STATS, last_seq, BOT_STATE, s.bot_state.get("last_seq"))
    t.compare("last seq", "", BOT_STATS, last_seq, BACKEND_STATUS + " run", run.get("last_seq"))
    t.compare("acked seq", "", BOT_STATS, stats.get("acked_seq"), BACKEND_STATUS + " run", run.get("acked_seq"))
    t.compare("acked seq = last seq", "", BOT_STATS + " acked", stats.get("acked_seq"), BOT_STATS + " last", last_seq)
    t.compare("last seq", "", BOT_STATS, last_seq, CLIENT, max((int(e["seq"]) for e in stream), default=0))

    produced = {str(k): int(v) for k, v in (stats.get("produced_by_type") or {}).items()}
    dropped = {str(k): int(v) for k, v in (stats.get("dropped_by_type") or {}).items()}
    received = {str(k): int(v) for k, v in (counters.get("received_by_type") or {}).items()}
    seen = Counter(str(e.get("type")) for e in stream)
    total = sum(produced.values())
    t.compare("produced = last seq", "", BOT_STATS + " produced", total, BOT_STATS + " last_seq", last_seq)
    t.compare(
        "sent = received + declared dropped", "", BOT_STATS + " produced", total,
        BACKEND_STATUS + " unique + declared_dropped",
        int(counters.get("unique", 0)) + int(counters.get("declared_dropped", 0)),
    )  # fmt: skip
    t.compare(
        "declared dropped",
        "",
        BOT_STATS,
        stats.get("declared_dropped_total"),
        BACKEND_STATUS,
        counters.get("declared_dropped"),
    )
    t.compare("duplicates", "", "expected", 0, BACKEND_STATUS, counters.get("duplicates"))
    t.compare("broadcast = what clients got", "", BACKEND_STATUS, counters.get("broadcast"), CLIENT, s.clients_received)
    for msg_type in sorted(set(produced) | set(received) | set(seen)):
        p, d = produced.get(msg_type, 0), dropped.get(msg_type, 0)
        t.compare(
            "sent = received + dropped",
            msg_type,
            BOT_STATS,
            p,
            BACKEND_STATUS,
            received.get(msg_type, 0) + d,
            key=False,
        )
        t.compare(
            "produced - dropped = client got", msg_type, BOT_STATS, p - d, CLIENT, seen.get(msg_type, 0), key=False
        )
        t.compare(
            "/metrics = /stats",
            msg_type,
            BOT_METRICS,
            sample(s.bot_metrics, "bot_messages_produced_total", type=msg_type),
            BOT_STATS,
            p,
            key=False,
        )
        t.compare(
            "/metrics = status", msg_type,
            BACKEND_METRICS, sample(s.backend_metrics, "dashboard_messages_received_total", type=msg_type) or 0.0,
            BACKEND_STATUS, received.get(msg_type, 0), key=False,
        )  # fmt: skip
    trading = stats.get("trading") or {}
    for metric, value in (
        ("bot_last_seq", last_seq),
        ("bot_acked_seq", stats.get("acked_seq")),
        ("bot_trades_total", trading.get("trades")),
        ("bot_orders_total", trading.get("orders")),
        ("bot_messages_sent_total", stats.get("sent_total")),
    ):
        t.compare("/metrics = /stats", metric, BOT_METRICS, sample(s.bot_metrics, metric), BOT_STATS, value)
    for metric, key in (
        ("dashboard_broadcast_total", "broadcast"),
        ("dashboard_messages_unique_total", "unique"),
        ("dashboard_declared_dropped_total", "declared_dropped"),
        ("dashboard_duplicates_total", "duplicates"),
    ):
        t.compare(
            "/metrics = status",
            metric,
            BACKEND_METRICS,
            sample(s.backend_metrics, metric),
            BACKEND_STATUS,
            counters.get(key),
        )


def reconcile(sources: Sources) -> tuple[list[Row], list[Finding]]:
    """Every comparison as a row, and one error finding per row that does not agree."""
    stream = _of_run(sources.stream, sources.run_id)
    table = _Table()
    _orders(table, sources, stream)
    _positions(table, sources, stream)
    _trades(table, sources, stream)
    _portfolio(table, sources, stream)
    _counts(table, sources, stream)
    findings = [r.finding() for r in table.rows if not r.ok]
    return table.rows, findings
