"""The publisher side of ``/ws``: hello, welcome, envelopes, acks, takeover. No I/O.

A ``PublisherSession`` is fed what its connection received (the hello, each frame, a
timeout, a commit) and returns what to send and whether to close, as websockets'
``Protocol`` does for frames: no sockets, no awaits, no clock of its own (times are
passed in). ``Publishers`` holds what the sessions share: the token, the one live
session per run (a newer one supersedes it: closed with 4000), the sequencer, the ring,
the state and the dead letters. ``connection`` moves frames between a socket and a
session.

The frame path (``PublisherSession.receive``) is the backend's hot path: it returns
None or the error frame to send back, and hands clients a published frame overflowed
to ``Publishers.on_overflow`` (the delivery closes them with 1013), as ``Hub.lane_ready``
hands lanes over: nothing is allocated for the connection to read back.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from wscontract import Invalid, parse_frame, validate_control, validate_envelope

from .actions import Action, Close, Send, count_protocol_close, error_frame
from .batching import text_frame
from .config import Config
from .deadletter import DeadLetters
from .fanout import Client, Entry, Hub, declared_of, symbol_of
from .ingest import Ingest
from .limits import TokenBucket
from .metrics import ServerCounters
from .shared_log import REJECTED_PREFIX, LogEntry
from .state import DashboardState
from .store import Row

__all__ = [
    "INTERNAL_ERROR",
    "SQLITE_MAX_INT",
    "SUPERSEDED",
    "Committer",
    "PublisherSession",
    "Publishers",
]

log = logging.getLogger("dashboard_backend")

#: Close code for a publisher connection replaced by a newer one of the same run.
SUPERSEDED = 4000
#: Largest integer an SQLite INTEGER column holds.
SQLITE_MAX_INT = 2**63 - 1
#: The answer to a frame whose processing raised (the connection counts and logs it).
INTERNAL_ERROR = error_frame("internal", "internal error processing this frame")
EXPECTED_HELLO = Close(1008, "expected hello")


class SharedLog(Protocol):
    """What the publisher side needs of the cluster's shared log (``redis_log.RedisLog``)."""

    def submit(self, run_id: str, seq: int, msg_type: str, text: str, recv_ns: int) -> None:
        """An accepted envelope (or a rejected seq's marker) to append."""

    def reopen(self, run_id: str) -> None:
        """A publisher of ``run_id`` said hello."""


class Committer(Protocol):
    """What the publisher side needs of the group committer (``store.GroupCommitter``)."""

    def submit(self, row: Row) -> None:
        """A critical row to store."""

    def poke(self) -> None:
        """A watermark may have moved (an ephemeral seq was received)."""


def _masked(hello: dict[str, Any]) -> str:
    """A hello as it may be kept: its token hidden (a wrong token may be a near-right one)."""
    return json.dumps({**hello, "auth": "***"})


def _int_seq(obj: dict[str, Any]) -> int | None:
    seq = obj.get("seq")
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None


def _no_overflow(client: Client) -> None:
    pass


class Publishers:
    """The rules every publisher session shares, and the live session of each run."""

    def __init__(
        self,
        config: Config,
        *,
        ingest: Ingest,
        hub: Hub,
        state: DashboardState,
        dead_letters: DeadLetters,
        counters: ServerCounters,
        envelope_ok: Callable[[dict[str, Any]], bool],
    ) -> None:
        self.config = config
        self.ingest = ingest
        self.hub = hub
        self.state = state
        self.dead_letters = dead_letters
        self.counters = counters
        #: True only for a valid envelope; otherwise validate_envelope decides (and words
        #: the error): the same verdicts at a fraction of jsonschema's cost (fastcheck).
        self.envelope_ok = envelope_ok
        #: The group committer, once the store is open (``Backend.start``).
        self.committer: Committer | None = None
        #: A client a published frame overflowed (the delivery closes it with 1013).
        self.on_overflow: Callable[[Client], None] = _no_overflow
        #: run_id -> its live session (one per run: a newer hello supersedes it).
        self.by_run: dict[str, PublisherSession] = {}
        #: Redis mode (docs/CLUSTER.md): accepted envelopes go to the shared log, and come
        #: back through ``apply`` on every replica. None on a single node.
        self.log: SharedLog | None = None

    def __len__(self) -> int:
        return len(self.by_run)

    def get(self, run_id: str) -> PublisherSession | None:
        return self.by_run.get(run_id)

    def sessions(self) -> list[PublisherSession]:
        return list(self.by_run.values())

    def open(self, remote: str, now: float) -> PublisherSession:
        """A new ``/ws`` connection from ``remote`` at monotonic time ``now``: its session."""
        self.counters.publisher_connections_total += 1
        return PublisherSession(self, remote, now)

    def reject(
        self,
        code: str,
        detail: str,
        raw: str | bytes,
        *,
        source: str = "publisher",
        run_id: object = None,
        seq: object = None,
        own: bool = False,
    ) -> bool:
        """Count a rejected frame and keep it as a dead letter. ``own``: it is of the
        publisher's own run, so its seq counts as accounted; returns whether that seq was new."""
        self.dead_letters.add(code, detail, raw, source=source, run_id=run_id, seq=seq)
        if own and isinstance(run_id, str) and isinstance(seq, int):
            if self.log is not None:
                # Counted and accounted by every replica when the log hands it back.
                self.log.submit(run_id, seq, REJECTED_PREFIX + code, "", 0)
                return False
            return self.ingest.reject(code, run_id, seq)
        self.ingest.reject(code)
        return False

    def apply(self, entry: LogEntry) -> None:
        """Redis mode: one entry of the shared log, in log order, on every replica.

        The steps ``PublisherSession.receive`` takes for a new frame on a single node
        (sequencer, store, state, clients), fed from the log instead, so every replica
        stores, serves and resumes the same stream; the receive time is the ingesting
        replica's. A rejected seq's entry is counted and accounted as a rejection.
        """
        run_id, seq = entry.run_id, entry.seq
        code = entry.rejected
        if code is not None:
            if self.ingest.reject(code, run_id, seq):
                self.hub.skip(run_id, seq)
            return
        text = entry.text
        obj = json.loads(text)
        decision = self.ingest.accept(obj)
        if decision.pending:
            assert self.committer is not None
            ts_col = min(int(obj["ts_ns"]), SQLITE_MAX_INT)
            self.committer.submit((run_id, seq, entry.type, ts_col, entry.recv_ns, text))
        if decision.broadcast:
            self.state.apply(obj)
            hub = self.hub
            frame = text_frame(text.encode()) if hub.clients else None
            for client in hub.publish(Entry(run_id, seq, entry.type, symbol_of(obj), text, declared_of(obj)), frame):
                self.on_overflow(client)

    def duplicate(self, run_id: str, msg_type: str) -> None:
        """Redis mode: the log already held a (run_id, seq) this replica received."""
        c = self.ingest.counters
        c.received += 1
        c.received_by_type[msg_type] += 1
        c.duplicates += 1


class PublisherSession:
    """One ``/ws`` connection's rules: a hello first, then envelopes of its run only."""

    def __init__(self, rules: Publishers, remote: str, now: float) -> None:
        self.rules = rules
        self.remote = remote
        #: Set by the hello: the run this connection publishes.
        self.run_id: str | None = None
        self.connected_at = ""
        #: The highest seq acked (the welcome's ``acked_seq`` first).
        self.last_ack = 0
        #: The hello was accepted: frames are envelopes now.
        self.accepted = False
        #: A newer connection of the same run took over: read nothing more.
        self.superseded = False
        config = rules.config
        self.bucket = TokenBucket(config.publisher_max_msgs_per_s, config.publisher_msg_burst, now)

    # --- the hello ------------------------------------------------------------

    def hello_timed_out(self) -> list[Action]:
        """No first frame within ``handshake_timeout``."""
        self.rules.counters.handshake_timeouts += 1
        return [EXPECTED_HELLO]

    def receive_hello(self, raw: str | bytes, now: datetime) -> tuple[list[Action], PublisherSession | None]:
        """The first frame: a valid hello with the right token opens the session.

        Returns what to send (the welcome, or an error and a close) and the session
        this one supersedes, whose connection is to be closed with ``SUPERSEDED``.
        ``now`` is the wall-clock time of the hello (``connected_at``).
        """
        rules = self.rules
        try:
            obj = parse_frame(raw)
        except Invalid as exc:
            rules.reject(exc.code, exc.detail, raw, source="hello")
            return [
                Send(error_frame("expected_hello", f"first frame must be a hello: {exc.detail}")),
                EXPECTED_HELLO,
            ], None
        if obj.get("type") != "hello":
            rules.reject("expected_hello", "first frame must be a hello", raw, source="hello")
            return [Send(error_frame("expected_hello", "first frame must be a hello")), EXPECTED_HELLO], None
        auth = obj.get("auth")
        token = rules.config.auth_token
        if not isinstance(auth, str) or not hmac.compare_digest(auth.encode("utf-8", "replace"), token.encode()):
            rules.counters.auth_failures += 1
            # counted as an auth failure, not as a rejected frame; kept all the same
            rules.dead_letters.add(
                "auth_failed", "authentication failed", _masked(obj), source="hello", run_id=obj.get("run_id")
            )
            log.warning("publisher from %s: authentication failed", self.remote)
            return [Close(1008, "authentication failed")], None
        try:
            validate_control(obj)
        except Invalid as exc:
            rules.reject(exc.code, exc.detail, _masked(obj), source="hello", run_id=obj.get("run_id"))
            return [Send(error_frame(exc.code, exc.detail)), Close(1008, "invalid hello")], None
        run_id: str = obj["run_id"]
        old = rules.by_run.get(run_id)
        if old is not None:
            old.superseded = True
            rules.counters.publisher_takeovers += 1
        self.run_id = run_id
        self.connected_at = now.isoformat(timespec="milliseconds")
        self.last_ack = rules.ingest.durable_watermark(run_id)
        self.accepted = True
        rules.by_run[run_id] = self
        if rules.log is not None:
            rules.log.reopen(run_id)
        log.info("publisher %s connected from %s (acked_seq=%d)", run_id, self.remote, self.last_ack)
        welcome = {"type": "welcome", "run_id": run_id, "acked_seq": self.last_ack}
        return [Send(json.dumps(welcome))], old

    # --- envelopes ------------------------------------------------------------

    def throttle(self, now: float) -> float:
        """Seconds to read nothing before the next frame (its rate), 0 within it.

        Over its rate the connection pauses: TCP backpressure slows the sender and
        nothing is dropped.
        """
        wait = self.bucket.reserve(now)
        if wait > 0:
            self.rules.counters.publisher_throttled += 1
        return wait

    def receive(self, raw: str | bytes, recv_ns: int) -> str | None:
        """Process one publisher frame received at ``recv_ns``; return an error frame to send back, if any."""
        rules = self.rules
        try:
            obj = parse_frame(raw)
        except Invalid as exc:
            rules.reject(exc.code, exc.detail, raw, run_id=self.run_id)
            return error_frame(exc.code, exc.detail)
        seq = _int_seq(obj)
        run_id: Any = obj.get("run_id")
        try:
            if not rules.envelope_ok(obj):
                validate_envelope(obj)
        except Invalid as exc:
            if rules.reject(exc.code, exc.detail, raw, run_id=run_id, seq=seq, own=run_id == self.run_id):
                assert isinstance(run_id, str) and seq is not None
                rules.hub.skip(run_id, seq)
            return error_frame(exc.code, exc.detail, seq)
        if run_id != self.run_id:
            rules.reject("run_mismatch", "envelope run_id is not this hello's", raw, run_id=run_id, seq=seq)
            return error_frame("run_mismatch", f"envelope run_id {run_id!r} is not this hello's", seq)
        assert seq is not None
        text = raw if isinstance(raw, str) else raw.decode()
        if rules.log is not None:
            # Redis mode: stored, sequenced and fanned out when the log hands it back (``apply``).
            rules.log.submit(run_id, seq, obj["type"], text, recv_ns)
            return None
        decision = rules.ingest.accept(obj)
        msg_type: str = obj["type"]
        if decision.pending:
            assert rules.committer is not None
            # The contract bounds ts_ns below only; SQLite's INTEGER stops at 2**63 - 1, and
            # one row that cannot be written would fail every later group commit. The
            # column is clamped; the stored text keeps what was sent.
            ts_col = min(int(obj["ts_ns"]), SQLITE_MAX_INT)
            rules.committer.submit((run_id, seq, msg_type, ts_col, recv_ns, text))
        if decision.broadcast:
            rules.state.apply(obj)
            entry = Entry(run_id, seq, msg_type, symbol_of(obj), text, declared_of(obj))
            # Framed once, the same bytes for every client (see batching).
            hub = rules.hub
            frame = text_frame(text.encode()) if hub.clients else None
            for client in hub.publish(entry, frame):
                rules.on_overflow(client)
        return None

    # --- acks and the end -----------------------------------------------------

    def ack(self) -> str | None:
        """The ack frame to send when the durable watermark moved past the last ack."""
        assert self.run_id is not None
        wm = self.rules.ingest.durable_watermark(self.run_id)
        if wm > self.last_ack:
            self.last_ack = wm
            return json.dumps({"type": "ack", "run_id": self.run_id, "seq": wm})
        return None

    def closed(self) -> None:
        """The connection is gone: the session leaves ``by_run``, unless a newer one took its place."""
        rules = self.rules
        if self.run_id is not None and rules.by_run.get(self.run_id) is self:
            del rules.by_run[self.run_id]

    def close_sent(self, code: int | None, reason: str) -> None:
        """The close the connection sent, if any (``code`` None: none).

        A frame websockets refused (1009, 1007) never reached ``receive``: the dead
        letter keeps the reason, not the bytes.
        """
        letter = count_protocol_close(self.rules.counters, code)
        if letter is not None:
            self.rules.dead_letters.add(letter, f"closed {code}: {reason}", b"")
