"""The bot's ``/metrics``, each series declared once, read from the ``/stats`` dict.

``/stats`` is the bot's status JSON; ``SERIES`` declares every number ``/metrics``
exposes: its Prometheus name, kind and help, and where in ``/stats`` its value is
(``path``). ``StatsCollector`` reads one ``/stats`` dict per scrape and yields the
families (prometheus-client, in a registry of the bot's own), so ``/metrics`` and
``/stats`` cannot disagree. ``STATS_ONLY`` names the numbers of ``/stats`` deliberately
not exposed; a unit test fails on a number of ``/stats`` that is in neither.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from wscontract import DATA_TYPES

__all__ = ["CONTENT_TYPE", "SERIES", "STATS_ONLY", "Series", "StatsCollector", "registry_for", "render"]

#: What ``generate_latest`` writes: the text format 0.0.4 (prometheus-client's own
#: ``MetricsHandler`` pairs the two; its ``CONTENT_TYPE_LATEST`` names format 1.0.0).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

Kind = Literal["counter", "gauge"]
Stats = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Series:
    """One series of ``/metrics`` and where its value is in ``/stats``."""

    name: str
    kind: Kind
    help: str
    #: Keys into ``/stats`` (``("trading", "ticks")`` is ``stats["trading"]["ticks"]``).
    path: tuple[str, ...]
    #: With a label: the value at ``path`` maps label value -> count, and every value
    #: in ``fill`` is exposed (0 when absent).
    label: str | None = None
    fill: frozenset[str] = frozenset()
    #: The value when ``/stats`` has no number there (None: the family is left out).
    default: int | None = None
    #: A flag: exposed as 1 when truthy, else 0.
    flag: bool = False

    def __post_init__(self) -> None:
        if self.kind == "counter" and not self.name.endswith("_total"):
            # prometheus-client appends _total to a counter's name: the declared name
            # would not be the exposed one.
            raise ValueError(f"counter {self.name} must end with _total")

    def lookup(self, stats: Stats) -> Any:
        """The raw value at ``path`` (None when missing)."""
        value: Any = stats
        for key in self.path:
            if not isinstance(value, Mapping):
                return None
            value = value.get(key)
        return value

    def samples(self, stats: Stats) -> list[tuple[list[str], float]] | None:
        """``(label values, value)`` pairs as exposed, or None to leave the family out."""
        raw = self.lookup(stats)
        if self.label is not None:
            counts = raw if isinstance(raw, Mapping) else {}
            return [([k], int(counts.get(k, 0))) for k in sorted(self.fill | set(counts))]
        if self.flag:
            return [([], 1 if raw else 0)]
        if not _is_number(raw):
            return None if self.default is None else [([], self.default)]
        return [([], _six_digits(raw))]

    def family(self) -> CounterMetricFamily | GaugeMetricFamily:
        """An empty metric family of this series."""
        labels = [self.label] if self.label else None
        if self.kind == "counter":
            return CounterMetricFamily(self.name, self.help, labels=labels)
        return GaugeMetricFamily(self.name, self.help, labels=labels)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _six_digits(value: float) -> float:
    """Floats to six significant digits, as the hand-written exposition (``:g``) had them."""
    return float(f"{value:g}") if isinstance(value, float) else value


def _by_type(name: str, help_: str, key: str) -> Series:
    return Series(name, "counter", help_, (key,), label="type", fill=frozenset(DATA_TYPES))


#: Every series of ``/metrics``, in exposition order. Add one here and only here.
SERIES: tuple[Series, ...] = (
    _by_type("bot_messages_produced_total", "Envelopes produced (seq assigned), by type.", "produced_by_type"),
    _by_type(
        "bot_messages_dropped_total",
        "Ephemeral envelopes dropped by queue overflow (declared in gaps), by type.",
        "dropped_by_type",
    ),
    Series("bot_messages_sent_total", "counter", "Frames handed to the socket.", ("sent_total",)),
    Series("bot_messages_resent_total", "counter", "Frames sent again after reconnect.", ("resent_total",)),
    Series("bot_gaps_declared_total", "counter", "Gap envelopes produced.", ("declared_gaps_total",)),
    Series("bot_reconnects_total", "counter", "Successful handshakes after the first.", ("reconnects",)),
    Series("bot_connect_failures_total", "counter", "Failed connection attempts.", ("connect_failures",)),
    Series("bot_last_seq", "gauge", "Highest seq produced in this run.", ("last_seq",)),
    Series("bot_acked_seq", "gauge", "Highest seq acked by the backend.", ("acked_seq",)),
    Series("bot_queue_depth", "gauge", "Ephemeral messages held (unsent + unacked).", ("queue_depth",)),
    Series("bot_outbox_depth", "gauge", "Critical messages awaiting ack (all runs).", ("outbox_depth",)),
    Series("bot_uptime_seconds", "gauge", "Seconds since start.", ("uptime_s",)),
    Series("bot_rss_bytes", "gauge", "Resident set size.", ("rss_bytes",)),
    Series("bot_open_fds", "gauge", "Open file descriptors.", ("open_fds",)),
    Series("bot_connected", "gauge", "1 while connected to the backend.", ("connected",), flag=True),
    Series("bot_ticks_total", "counter", "Simulation ticks.", ("trading", "ticks"), default=0),
    Series("bot_orders_total", "counter", "Orders placed.", ("trading", "orders"), default=0),
    Series("bot_trades_total", "counter", "Trades (fills).", ("trading", "trades"), default=0),
    Series("bot_equity", "gauge", "Portfolio equity.", ("trading", "equity")),
    Series("bot_cash", "gauge", "Portfolio cash.", ("trading", "cash")),
)

#: Numbers in ``/stats`` that ``/metrics`` does not expose, as paths (a ``*`` stands for
#: any key of a mapping). A new number in ``/stats`` goes in ``SERIES`` or here.
STATS_ONLY: frozenset[tuple[str, ...]] = frozenset(
    {
        ("produced_total",),  # the sum of bot_messages_produced_total
        ("dropped_total",),  # the sum of bot_messages_dropped_total
        ("declared_dropped_total",),
        ("pending_drops",),
        ("queue_size",),  # configuration
        ("outbox_depth_current_run",),
        ("acks_received",),
        ("acks_beyond_sent",),
        ("ack_regressions",),
        ("restart_gaps",),
        ("connections",),
        ("connect_attempts",),
        ("auth_failures",),
        ("errors_received", "*"),
        ("backoff_failures_in_row",),
        ("next_retry_in_s",),
        ("old_runs_pending", "*"),
        ("old_runs_delivered",),
        ("link", "since"),
        ("link", "backoff_s"),
        ("tick_errors",),
        ("max_tick_lag_ms",),
        ("trading", "positions", "*", "quantity"),
        ("trading", "positions", "*", "avg_price"),
        ("trading", "positions", "*", "realized_pnl"),
        ("trading", "realized_pnl"),
        ("trading", "fees"),
    }
)


class StatsCollector:
    """A prometheus-client collector: ``SERIES`` read from one ``/stats`` dict per scrape."""

    def __init__(self, stats: Callable[[], Stats]) -> None:
        self._stats = stats

    def describe(self) -> Iterator[Metric]:
        """The families without samples: lets the registry check the names once."""
        for s in SERIES:
            yield s.family()

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        for s in SERIES:
            samples = s.samples(stats)
            if samples is None:
                continue
            family = s.family()
            for labels, value in samples:
                family.add_metric(labels, value)
            yield family


def registry_for(stats: Callable[[], Stats]) -> CollectorRegistry:
    """A registry of the bot's own (not prometheus-client's global one) over ``stats``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatsCollector(stats))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The ``/metrics`` body."""
    return generate_latest(registry)


if len({s.name for s in SERIES}) != len(SERIES):
    raise ValueError("a series is declared twice")
