"""The cluster's shared log as data: the append script, log entries, readiness. No I/O.

In Redis mode (``SYSTEM__REDIS_URL`` set; docs/CLUSTER.md) every accepted envelope is
appended to one Redis Stream by ``APPEND_LUA``, atomically and idempotently by
(run_id, seq), and every replica feeds the stream, in log order, to the same path a
publisher's frame takes on a single node. This module holds what that needs without a
socket: the script, the fields of an entry and their reading back, and the rule that
says whether a replica may call itself ready (``LogHealth``). ``redis_log`` is the glue.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = [
    "APPEND_LUA",
    "LOG_KEY",
    "PRESENCE_KEY",
    "PRESENCE_MAX_AGE_S",
    "PRESENCE_S",
    "cluster_view",
    "REJECTED_PREFIX",
    "LogEntry",
    "LogHealth",
    "append_args",
    "append_keys",
    "entry_of",
    "id_ms",
    "seen_key",
]

#: The stream every replica appends to and tails.
LOG_KEY = "wsrig:log"
#: The hash of each replica's latest presence report (its publishers and client count).
PRESENCE_KEY = "wsrig:replicas"
#: How often a replica reports its presence and reads the others'.
PRESENCE_S = 0.1
#: A report older than this is of a replica that is gone (killed, cut from Redis).
PRESENCE_MAX_AGE_S = 1.0
#: ``type`` of an entry that stands for a rejected seq of the publisher's own run: the
#: seq is accounted (acks pass it, resume counts it held) but there is nothing to send.
REJECTED_PREFIX = "!"

#: KEYS[1] the run's seen-hash, KEYS[2] the stream; ARGV seq, run_id, type, payload,
#: receive time (ns). Returns the new entry's id, or 0 for a (run_id, seq) already in the
#: log: HSETNX and XADD run as one, so no crash or race can store a seq twice or mark a
#: seq seen that is not in the stream.
APPEND_LUA = """
if redis.call('HSETNX', KEYS[1], ARGV[1], 1) == 0 then
  return 0
end
return redis.call('XADD', KEYS[2], '*', 'run', ARGV[2], 'seq', ARGV[1], 'type', ARGV[3], 'p', ARGV[4], 'r', ARGV[5])
"""


def seen_key(run_id: str) -> str:
    """The hash of the seqs of ``run_id`` already in the log."""
    return f"wsrig:seen:{run_id}"


def append_keys(run_id: str) -> list[str]:
    return [seen_key(run_id), LOG_KEY]


def append_args(run_id: str, seq: int, msg_type: str, text: str, recv_ns: int) -> list[str | int]:
    return [seq, run_id, msg_type, text, recv_ns]


class LogEntry(NamedTuple):
    """One log entry read back: what the fan-out path needs of it."""

    id: str
    run_id: str
    seq: int
    type: str
    #: The envelope's text exactly as the publisher sent it ("" for a rejected seq).
    text: str
    #: When the ingesting replica received it (``/api/receive_times`` on every replica).
    recv_ns: int

    @property
    def rejected(self) -> str | None:
        """The error code of a rejected seq's entry, None for an envelope."""
        return self.type[len(REJECTED_PREFIX) :] if self.type.startswith(REJECTED_PREFIX) else None


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def entry_of(entry_id: bytes | str, fields: dict[bytes, bytes] | dict[str, str]) -> LogEntry:
    """A stream entry (id and field map, as XRANGE/XREAD return them) as a ``LogEntry``."""
    f = {_s(k): _s(v) for k, v in fields.items()}
    return LogEntry(_s(entry_id), f["run"], int(f["seq"]), f["type"], f.get("p", ""), int(f.get("r", "0") or 0))


def id_ms(entry_id: str) -> int:
    """The millisecond time part of a stream id (Redis's clock when it was added)."""
    return int(entry_id.partition("-")[0])


@dataclass
class LogHealth:
    """Whether this replica is in step with the log, from the times things last worked.

    Times are monotonic seconds passed in. The replica is *ready* once it has replayed
    the log, and while its last successful read of the stream is at most ``bound`` ago
    and it was caught up (a read returned less than a full batch) at most ``bound`` ago.
    An append that failed with nothing working since makes it unready at once. Not
    ready after the replay is *lost*: nothing it appends can be confirmed, so it acks
    nothing, and what it would serve may be stale, so its clients are closed (1013) to
    reconnect through the balancer to a replica that is in step.
    """

    bound: float
    replayed: bool = False
    #: the last successful read of the stream (a tail read, or the replay's last chunk)
    last_read: float | None = None
    #: the last read that found the tail caught up (fewer entries than asked for)
    caught_up: float | None = None
    #: the last append that Redis confirmed, and the last one that failed
    last_append_ok: float | None = None
    last_append_failed: float | None = None

    def read(self, now: float, full: bool) -> None:
        """A read of the stream succeeded at ``now``; ``full``: it returned a whole batch."""
        self.last_read = now
        if not full:
            self.caught_up = now

    def ready(self, now: float) -> bool:
        if not self.replayed or self.last_read is None or self.caught_up is None:
            return False
        if now - self.last_read > self.bound or now - self.caught_up > self.bound:
            return False
        failed = self.last_append_failed
        # An append failed and nothing worked since: Redis does not take writes.
        if failed is None or failed < self.last_read:
            return True
        return self.last_append_ok is not None and self.last_append_ok > failed

    def lost(self, now: float) -> bool:
        """Out of step after having replayed: close the clients, refuse new ones, ack nothing."""
        return self.replayed and not self.ready(now)


def cluster_view(reports: dict[str, str], now: float, max_age: float = PRESENCE_MAX_AGE_S) -> dict[str, Any]:
    """The cluster as the status API shows it, from each replica's presence report.

    ``reports``: replica id -> its JSON report ``{"t": wall time, "publishers": [...],
    "client_count": n}``. Reports older than ``max_age`` (a replica killed or cut from
    Redis) and unreadable ones are left out. Publishers are listed with their replica.
    """
    publishers: list[dict[str, Any]] = []
    replicas: dict[str, dict[str, Any]] = {}
    clients = 0
    for replica, raw in sorted(reports.items()):
        try:
            report = json.loads(raw)
            age = now - float(report["t"])
            count = int(report["client_count"])
            pubs = list(report["publishers"])
        except (ValueError, KeyError, TypeError):
            continue
        if age > max_age:
            continue
        clients += count
        publishers.extend({**p, "replica": replica} for p in pubs)
        replicas[replica] = {"client_count": count, "publisher_count": len(pubs), "age_ms": round(age * 1000, 1)}
    return {"publishers": publishers, "client_count": clients, "replicas": replicas}
