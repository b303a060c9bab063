"""The backend's numbers, each declared once: the status JSON's ``counters`` and ``/metrics``.

``SERIES`` lists every number the backend reports: where it sits in the status JSON
(``/api/websocket/status`` -> ``counters``), its Prometheus name, kind and help, and where
its value comes from (a read of the live ``Backend``). ``counters_json`` builds the status
JSON's block from it and ``BackendCollector`` the exposition (prometheus-client, in a
registry the backend owns), so the two cannot disagree: a new number is one more entry
in ``SERIES`` and nothing else. The hot paths keep incrementing plain ints in the counter objects
(``ServerCounters`` here, ``IngestCounters``, the hub, the committer, ...): nothing is
read until a scrape or a status request.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Literal

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

if TYPE_CHECKING:
    from .server import Backend

__all__ = [
    "CONTENT_TYPE",
    "SERIES",
    "BackendCollector",
    "Series",
    "ServerCounters",
    "counters_json",
    "exposition",
    "registry_for",
    "rss_bytes",
]

#: What ``generate_latest`` writes: the text format 0.0.4 (prometheus-client's own
#: ``MetricsHandler`` pairs the two; its ``CONTENT_TYPE_LATEST`` names format 1.0.0).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

Kind = Literal["counter", "gauge"]


@dataclass
class ServerCounters:
    """Counts kept outside the sequencer (its own live in ``IngestCounters``): by the
    session rules, the connection layer and the HTTP API.

    Plain ints, incremented on the hot paths; ``SERIES`` declares how each one is
    reported (status JSON key, Prometheus name), and they are read only then.
    """

    broadcast: int = 0
    auth_failures: int = 0
    oversize_closes: int = 0
    publisher_connections_total: int = 0
    client_connections_total: int = 0
    publisher_takeovers: int = 0
    bad_subscribe: int = 0
    origin_rejected: int = 0
    internal_errors: int = 0
    bad_requests: int = 0
    #: TCP connections dropped because the upgrade (or a publisher's hello) did not
    #: complete within ``handshake_timeout``.
    handshake_timeouts: int = 0
    #: WebSocket handshakes refused with 503 at ``max_connections``.
    connections_refused: int = 0
    #: Clients closed with 1008 for sending over their frame rate.
    rate_limit_closes: int = 0
    #: Times a publisher's reader paused to hold it to its frame rate.
    publisher_throttled: int = 0
    #: Connections closed with 1007 (a text frame that is not UTF-8).
    invalid_utf8_closes: int = 0
    #: Client frames after the subscribe (ignored: clients only ever send one).
    client_frames_ignored: int = 0
    http_requests: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class Series:
    """One number the backend reports (with ``label``: one value per label value)."""

    #: Its key in the status JSON's ``counters`` (None: only in ``/metrics``).
    key: str | None
    #: Its name in ``/metrics`` exactly as exposed (None: only in the status JSON).
    name: str | None
    kind: Kind
    help: str
    #: Where the value comes from: the live backend -> a number (None: not exposed now),
    #: or with ``label`` a ``Mapping`` label value -> number.
    read: Callable[[Backend], Any]
    #: The label of a labelled family (``type``, ``code``, ...).
    label: str | None = None

    def __post_init__(self) -> None:
        if self.name is not None and self.kind == "counter" and not self.name.endswith("_total"):
            # prometheus-client appends _total to a counter's name: the declared name
            # would not be the exposed one.
            raise ValueError(f"counter {self.name} must end with _total")

    def family(self) -> CounterMetricFamily | GaugeMetricFamily:
        """An empty metric family of this series (``add_metric`` fills it)."""
        assert self.name is not None
        labels = [self.label] if self.label else None
        if self.kind == "counter":
            return CounterMetricFamily(self.name, self.help, labels=labels)
        return GaugeMetricFamily(self.name, self.help, labels=labels)


def rss_bytes() -> int | None:
    """Resident memory of this process, from /proc (None where unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _committer(name: str) -> Callable[[Backend], int]:
    """A count of the group committer (0 before it starts)."""

    def read(b: Backend) -> int:
        return getattr(b.committer, name) if b.committer is not None else 0

    return read


def _shared_log(name: str) -> Callable[[Backend], Any]:
    """A number of the shared log (Redis mode); 0 on a single node."""

    def read(b: Backend) -> Any:
        return getattr(b.log, name) if b.log is not None else 0

    return read


def _per_generation(name: str, digits: int | None = None) -> Callable[[Backend], dict[str, float]]:
    """One of ``GcWatch``'s per-generation lists as generation -> value."""

    def read(b: Backend) -> dict[str, float]:
        values = getattr(b.gc, name)
        return {str(g): (v if digits is None else round(v, digits)) for g, v in enumerate(values)}

    return read


def _c(
    key: str | None, name: str | None, help_: str, read: Callable[[Backend], Any], label: str | None = None
) -> Series:
    return Series(key, name, "counter", help_, read, label)


def _g(
    key: str | None, name: str | None, help_: str, read: Callable[[Backend], Any], label: str | None = None
) -> Series:
    return Series(key, name, "gauge", help_, read, label)


def _ingest(name: str) -> Callable[[Backend], Any]:
    """A count of the sequencer (``ingest.IngestCounters``)."""
    return attrgetter(f"ingest.counters.{name}")


def _glue(name: str) -> Callable[[Backend], Any]:
    """A count of ``ServerCounters`` (sessions, connections, HTTP API)."""
    return attrgetter(f"counters.{name}")


#: Every number the backend reports, in exposition order (the status JSON's keys follow
#: the same order). Add a number here and only here.
SERIES: tuple[Series, ...] = (
    _c("received", None, "Valid envelopes received (duplicates included).", _ingest("received")),
    _c(
        "received_by_type",
        "dashboard_messages_received_total",
        "Valid envelopes received, by type (duplicates included).",
        _ingest("received_by_type"),
        label="type",
    ),
    _c("unique", "dashboard_messages_unique_total", "New envelopes (not duplicates).", _ingest("unique")),
    _c(
        "broadcast",
        "dashboard_broadcast_total",
        "Envelope frames delivered to clients.",
        _glue("broadcast"),
    ),
    _c("duplicates", "dashboard_duplicates_total", "Duplicate envelopes dropped.", _ingest("duplicates")),
    _c("late", "dashboard_late_total", "New envelopes older than the last broadcast.", _ingest("late")),
    _c("rejected", None, "Rejected frames.", _ingest("rejected")),
    _c(
        "rejected_by_code",
        "dashboard_rejected_total",
        "Rejected frames, by error code.",
        _ingest("rejected_by_code"),
        label="code",
    ),
    _c("gaps_declared", "dashboard_gaps_declared_total", "Gap envelopes received.", _ingest("gaps_declared")),
    _c(
        "declared_dropped",
        "dashboard_declared_dropped_total",
        "Seqs declared dropped.",
        _ingest("declared_dropped"),
    ),
    _c("auth_failures", "dashboard_auth_failures_total", "Rejected hellos.", _glue("auth_failures")),
    _c("oversize_closes", "dashboard_oversize_closes_total", "Closes with 1009.", _glue("oversize_closes")),
    _c(
        "origin_rejected",
        "dashboard_origin_rejected_total",
        "Handshakes refused (403) for their Origin.",
        _glue("origin_rejected"),
    ),
    _c(
        "handshake_timeouts",
        "dashboard_handshake_timeouts_total",
        "Connections dropped mid-handshake.",
        _glue("handshake_timeouts"),
    ),
    _c(
        "connections_refused",
        "dashboard_connections_refused_total",
        "Handshakes refused (503) at the limit.",
        _glue("connections_refused"),
    ),
    _c(
        "rate_limit_closes",
        "dashboard_rate_limit_closes_total",
        "Clients closed (1008) over their rate.",
        _glue("rate_limit_closes"),
    ),
    _c(
        "publisher_throttled",
        "dashboard_publisher_throttled_total",
        "Publisher reader pauses (rate).",
        _glue("publisher_throttled"),
    ),
    _c(
        "invalid_utf8_closes",
        "dashboard_invalid_utf8_closes_total",
        "Closes with 1007.",
        _glue("invalid_utf8_closes"),
    ),
    _c("bad_requests", "dashboard_bad_requests_total", "Malformed HTTP requests.", _glue("bad_requests")),
    _c(
        "slow_client_disconnects",
        "dashboard_slow_client_disconnects_total",
        "Clients closed with 1013.",
        attrgetter("hub.slow_client_disconnects"),
    ),
    _c("committed", "dashboard_committed_total", "Critical envelopes committed.", _committer("committed")),
    _c("commit_batches", "dashboard_commit_batches_total", "Group-commit transactions.", _committer("batches")),
    _c("commit_errors", None, "Group-commit transactions that failed (and were retried).", _committer("errors")),
    _g("commit_pending", None, "Critical envelopes waiting for the next commit.", _committer("depth")),
    _c("internal_errors", "dashboard_internal_errors_total", "Internal errors.", _glue("internal_errors")),
    _c(
        "publisher_connections_total",
        "dashboard_publisher_connections_total",
        "Publisher connections accepted.",
        _glue("publisher_connections_total"),
    ),
    _c(
        "client_connections_total",
        "dashboard_client_connections_total",
        "Client connections accepted.",
        _glue("client_connections_total"),
    ),
    _c(
        "publisher_takeovers", None, "Publishers replaced by a newer one of the same run.", _glue("publisher_takeovers")
    ),
    _c("bad_subscribe", None, "Clients whose first frame was not a valid subscribe.", _glue("bad_subscribe")),
    _c(
        "client_frames_ignored",
        None,
        "Client frames after the subscribe (ignored).",
        _glue("client_frames_ignored"),
    ),
    _g(None, "dashboard_publishers", "Live publishers.", lambda b: len(b.publishers)),
    _g(None, "dashboard_clients", "Live clients.", lambda b: len(b.hub.clients)),
    _g(
        None,
        "dashboard_run_acked_seq",
        "Accounted watermark per run.",
        lambda b: {r: v.acked_seq for r, v in b.ingest.runs().items()},
        label="run_id",
    ),
    _c(
        None,
        "dashboard_client_writes_deferred_total",
        "Client writes moved to a later loop turn so sockets get polled (turns.WriteTurns).",
        attrgetter("write_turns.deferred"),
    ),
    _c(
        None,
        "dashboard_gc_pauses_total",
        "Garbage-collector runs, by generation.",
        _per_generation("count"),
        label="generation",
    ),
    _c(
        None,
        "dashboard_gc_pause_seconds_total",
        "Time the event loop stood still for the collector, by generation.",
        _per_generation("total_s", 6),
        label="generation",
    ),
    _g(
        None,
        "dashboard_gc_pause_max_seconds",
        "Longest collector pause since start, by generation.",
        _per_generation("max_s", 6),
        label="generation",
    ),
    _g(None, "dashboard_rss_bytes", "Resident memory.", lambda b: rss_bytes()),
    # --- the shared log (Redis mode, docs/CLUSTER.md; 0 on a single node) ---
    _c(
        "redis_appends",
        "dashboard_redis_appends_total",
        "Envelopes appended to the shared log (Redis mode).",
        _shared_log("appends"),
    ),
    _c(
        "redis_append_failures",
        "dashboard_redis_append_failures_total",
        "Appends that failed or timed out: not acked, their publisher closed 1013 (Redis mode).",
        _shared_log("append_failures"),
    ),
    _c(
        "redis_duplicates",
        "dashboard_redis_duplicates_total",
        "Appends of a (run_id, seq) the shared log already held (Redis mode).",
        _shared_log("duplicates"),
    ),
    _c(
        "redis_append_batches",
        "dashboard_redis_append_batches_total",
        "Append pipelines sent (one per event-loop turn with appends; Redis mode).",
        _shared_log("append_batches"),
    ),
    _c(
        "redis_applied",
        "dashboard_redis_applied_total",
        "Shared-log entries this replica applied (replay and tail; Redis mode).",
        _shared_log("applied"),
    ),
    _c(
        "redis_read_failures",
        "dashboard_redis_read_failures_total",
        "Reads of the shared log that failed (Redis mode).",
        _shared_log("read_failures"),
    ),
    _g(
        "redis_tail_lag_ms",
        "dashboard_redis_tail_lag_ms",
        "Now minus Redis's time of the last entry applied, at that read (Redis mode).",
        _shared_log("tail_lag_ms"),
    ),
    _g(
        "redis_connected",
        "dashboard_redis_connected",
        "1 while the last command to Redis succeeded (Redis mode; 0 on a single node).",
        lambda b: int(b.log.connected) if b.log is not None else 0,
    ),
)

_EXPOSED = tuple(s for s in SERIES if s.name is not None)


def counters_json(backend: Backend) -> dict[str, Any]:
    """The status JSON's ``counters``: every series that has a key, read now."""
    out: dict[str, Any] = {}
    for s in SERIES:
        if s.key is not None:
            value = s.read(backend)
            out[s.key] = dict(value) if s.label else value
    return out


def _samples(s: Series, value: Any) -> Iterator[tuple[list[str], Any]]:
    if s.label:
        for label_value, n in sorted(value.items()):
            yield [str(label_value)], n
    else:
        yield [], value


class BackendCollector:
    """A prometheus-client collector reading ``SERIES`` off the live backend at each scrape."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def describe(self) -> Iterator[Metric]:
        """The families without samples: lets the registry check the names once."""
        for s in _EXPOSED:
            yield s.family()

    def collect(self) -> Iterator[Metric]:
        for s in _EXPOSED:
            value = s.read(self._backend)
            if value is None:  # e.g. no /proc: the family is left out, as it always was
                continue
            family = s.family()
            for labels, n in _samples(s, value):
                family.add_metric(labels, n)
            yield family


def registry_for(backend: Backend) -> CollectorRegistry:
    """A registry of the backend's own (not prometheus-client's global one)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BackendCollector(backend))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    """The ``/metrics`` body."""
    return generate_latest(registry)


def _check_unique(series: tuple[Series, ...]) -> None:
    for attr in ("key", "name"):
        seen = [getattr(s, attr) for s in series if getattr(s, attr) is not None]
        dupes = sorted({v for v in seen if seen.count(v) > 1})
        if dupes:
            raise ValueError(f"{attr} declared twice: {dupes}")


_check_unique(SERIES)
