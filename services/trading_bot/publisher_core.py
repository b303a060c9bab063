"""The publisher's protocol state machine, with no asyncio and no sockets.

Sequencing, buffering (critical outbox, bounded ephemeral queue), drop-oldest with
declared ``gap`` envelopes, resend after ``welcome``, cumulative acks and the
reconnect backoff are plain classes here, so every rule of docs/PROTOCOL.md is
tested synchronously; ``publisher.py`` only moves frames between this core and the
socket.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from wscontract import CRITICAL_TYPES, DATA_TYPES

from trading_bot import SOURCE

__all__ = [
    "Backoff",
    "Frame",
    "MemoryOutbox",
    "Outbox",
    "PublisherCore",
    "gap_data",
    "gap_ranges",
]


@dataclass(frozen=True)
class Frame:
    """One envelope ready for the wire: its seq, type and exact JSON text."""

    seq: int
    type: str
    text: str


# --- outbox interface ------------------------------------------------------------


class Outbox(Protocol):
    """Durable store of every unacked envelope, keyed by (run_id, seq).

    Critical envelopes stay until acked. Ephemeral ones are mirrored too (the bounded
    queue is at most ``queue_size`` of them), so that after a crash the next process
    can account for every seq of the old run: a dropped ephemeral envelope keeps its
    row, marked dropped (text gone), until a ``gap`` that declares it is stored.
    """

    def add(self, run_id: str, seq: int, msg_type: str, text: str) -> None: ...

    def mark_dropped(self, run_id: str, seq: int) -> None:
        """An ephemeral envelope was dropped: keep (seq, type), forget the text."""
        ...

    def forget(self, run_id: str, seqs: list[int]) -> None:
        """Remove dropped rows once a stored gap declares them."""
        ...

    def ack_upto(self, run_id: str, seq: int) -> int:
        """Forget every row of ``run_id`` with seq <= ``seq``; returns how many."""
        ...

    def pending_after(self, run_id: str, seq: int) -> list[Frame]:
        """Held (not dropped) envelopes of ``run_id`` with seq > ``seq``, in seq order."""
        ...

    def dropped_after(self, run_id: str, seq: int) -> list[tuple[int, str]]:
        """(seq, type) of dropped, not yet declared rows with seq > ``seq``."""
        ...

    def max_seq(self, run_id: str) -> int:
        """Highest seq of any row of ``run_id`` (0 when none)."""
        ...

    def depth(self, run_id: str | None = None) -> int:
        """Unacked critical envelopes of one run (or of all runs)."""
        ...

    def runs(self) -> list[str]:
        """run_ids that still have rows, oldest first."""
        ...

    def flush(self) -> None:
        """Make every change so far durable."""
        ...

    def close(self) -> None: ...


class MemoryOutbox:
    """In-memory ``Outbox`` for tests and for running without a data directory."""

    def __init__(self) -> None:
        # run_id -> seq -> (type, text or None when dropped)
        self._runs: dict[str, OrderedDict[int, tuple[str, str | None]]] = {}

    def add(self, run_id: str, seq: int, msg_type: str, text: str) -> None:
        self._runs.setdefault(run_id, OrderedDict())[seq] = (msg_type, text)

    def mark_dropped(self, run_id: str, seq: int) -> None:
        rows = self._runs.get(run_id)
        if rows and seq in rows:
            rows[seq] = (rows[seq][0], None)

    def forget(self, run_id: str, seqs: list[int]) -> None:
        rows = self._runs.get(run_id, OrderedDict())
        for seq in seqs:
            rows.pop(seq, None)

    def ack_upto(self, run_id: str, seq: int) -> int:
        rows = self._runs.get(run_id)
        freed = 0
        while rows and next(iter(rows)) <= seq:  # rows are added in seq order
            rows.popitem(last=False)
            freed += 1
        return freed

    def pending_after(self, run_id: str, seq: int) -> list[Frame]:
        rows = self._runs.get(run_id, OrderedDict())
        return sorted(
            (Frame(s, t, x) for s, (t, x) in rows.items() if s > seq and x is not None),
            key=lambda f: f.seq,
        )

    def dropped_after(self, run_id: str, seq: int) -> list[tuple[int, str]]:
        rows = self._runs.get(run_id, OrderedDict())
        return sorted((s, t) for s, (t, x) in rows.items() if s > seq and x is None)

    def max_seq(self, run_id: str) -> int:
        return max(self._runs.get(run_id) or [0])

    def depth(self, run_id: str | None = None) -> int:
        runs = [run_id] if run_id is not None else list(self._runs)
        return sum(1 for r in runs for t, _ in self._runs.get(r, OrderedDict()).values() if t in CRITICAL_TYPES)

    def runs(self) -> list[str]:
        return [r for r, rows in self._runs.items() if rows]

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


# --- gap helpers -----------------------------------------------------------------


def gap_data(drops: Iterable[tuple[int, str]], reason: str) -> dict[str, Any]:
    """The ``data`` of a gap declaring exactly ``drops`` ((seq, type) pairs)."""
    drops = list(drops)
    seqs = [s for s, _ in drops]
    counts = Counter(t for _, t in drops)
    return {
        "from_seq": min(seqs),
        "to_seq": max(seqs),
        "count": len(set(seqs)),
        "ranges": gap_ranges(seqs),
        "counts_by_type": dict(sorted(counts.items())),
        "reason": reason,
    }


def gap_ranges(seqs: Iterable[int]) -> list[list[int]]:
    """Inclusive [first, last] pairs covering exactly ``seqs`` (sorted, merged)."""
    ranges: list[list[int]] = []
    for s in sorted(set(seqs)):
        if ranges and s == ranges[-1][1] + 1:
            ranges[-1][1] = s
        else:
            ranges.append([s, s])
    return ranges


# --- backoff ---------------------------------------------------------------------


class Backoff:
    """Capped exponential backoff with equal jitter that never gives up.

    After failure n (1-based) the delay is uniform in [c/2, c], c = min(cap, base *
    2**(n-1)). The ``max_retries``-th failure in a row instead waits ``long_wait`` once
    and starts counting again. ``reset()`` after a success.

    Equal, not full, jitter: with delays down to 0 a burst of fast failures could reach
    ``max_retries`` within a few seconds of an outage and open the circuit (60 s) on a
    short one; the suite saw it once (dashboard offline for 6 s, the bot back after 66 s).
    Equal jitter keeps the retries spread (no thundering herd) and gives the circuit a
    floor: ``max_retries`` failures take at least half the sum of their ceilings.
    """

    def __init__(
        self,
        base: float,
        max_retries: int,
        cap: float = 30.0,
        long_wait: float = 60.0,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.base = base
        self.max_retries = max(1, max_retries)
        self.cap = cap
        self.long_wait = long_wait
        self._rand = rand
        self.failures = 0  # in a row, since the last success or long wait
        self.long_waits = 0

    def next_delay(self) -> float:
        """Record one failure; the seconds to wait before the next attempt."""
        self.failures += 1
        if self.failures >= self.max_retries:
            self.failures = 0
            self.long_waits += 1
            return self.long_wait
        ceiling = min(self.cap, self.base * math.pow(2.0, min(self.failures - 1, 60)))
        return ceiling / 2 + self._rand() * ceiling / 2

    def reset(self) -> None:
        self.failures = 0


# --- the core --------------------------------------------------------------------


class PublisherCore:
    """Sequencing, buffering, gaps, resend and acks for one run_id.

    Production (``produce``) never blocks and works connected or not. The glue calls
    ``on_welcome`` after a handshake and sends what it returns, then repeatedly sends
    ``next_frames()``; it feeds acks to ``on_ack`` and calls ``on_disconnect`` when the
    link drops. Frames are handed out in strictly increasing seq order per connection.
    """

    def __init__(
        self,
        run_id: str,
        outbox: Outbox,
        queue_size: int = 1000,
        *,
        buffering: bool = True,
        source: str = SOURCE,
        wall_ns: Callable[[], int] = time.time_ns,
        clock: Callable[[], float] = time.monotonic,
        gap_interval: float = 1.0,
        keep_gaps: int = 1000,
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be >= 1")
        self.run_id = run_id
        self.source = source
        self.queue_size = queue_size
        self.buffering = buffering
        self._outbox = outbox
        self._wall_ns = wall_ns
        self._clock = clock
        self._gap_interval = gap_interval
        self._keep_gaps = keep_gaps
        #: Called (no args) whenever a frame becomes ready to send while connected.
        self.listener: Callable[[], None] | None = None

        self.last_seq = 0
        self.acked_seq = 0
        self._eph: OrderedDict[int, tuple[str, str]] = OrderedDict()  # seq -> (type, text)
        self._to_send: deque[tuple[int, str, str | None]] = deque()  # text None: ephemeral
        self._pending_drops: list[tuple[int, str]] = []
        self._last_gap = -math.inf
        self.connected = False
        self._sent_upto = 0  # highest seq handed out on this connection
        self._max_sent = 0  # highest seq ever handed out (any connection)

        self.produced_by_type: Counter[str] = Counter()
        self.dropped_by_type: Counter[str] = Counter()
        self.declared_gaps: deque[dict[str, int]] = deque(maxlen=keep_gaps)
        self.declared_gaps_total = 0
        self.declared_dropped_total = 0
        self.sent_total = 0
        self.resent_total = 0
        self.acks_received = 0
        self.acks_beyond_sent = 0
        self.ack_regressions = 0
        self.restart_gaps = 0  # gaps declared for earlier runs' undeclared drops

    # --- production --------------------------------------------------------------

    def produce(self, msg_type: str, data: dict[str, Any]) -> int:
        """Assign the next seq to an event and buffer it; returns the seq."""
        if msg_type not in DATA_TYPES:
            raise ValueError(f"unknown message type {msg_type!r}")
        seq = self._produce(msg_type, data)
        self.poll()
        return seq

    def poll(self) -> None:
        """Emit a ``gap`` if drops are pending and the last one is a second old."""
        self._emit_gap(force=False)

    def commit(self) -> None:
        """Make the outbox durable (called once per simulation tick)."""
        if self.buffering:
            self._outbox.flush()

    def envelope(self, msg_type: str, seq: int, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "v": 1,
            "type": msg_type,
            "source": self.source,
            "run_id": self.run_id,
            "seq": seq,
            "ts_ns": self._wall_ns(),
            "data": data,
        }

    def _produce(self, msg_type: str, data: dict[str, Any]) -> int:
        self.last_seq += 1
        seq = self.last_seq
        self.produced_by_type[msg_type] += 1
        if not self.buffering:
            return seq
        text = json.dumps(self.envelope(msg_type, seq, data), separators=(",", ":"))
        if msg_type in CRITICAL_TYPES:
            self._outbox.add(self.run_id, seq, msg_type, text)
            if self.connected:
                self._to_send.append((seq, msg_type, text))
        else:
            self._outbox.add(self.run_id, seq, msg_type, text)
            self._eph[seq] = (msg_type, text)
            if self.connected:
                self._to_send.append((seq, msg_type, None))
            while len(self._eph) > self.queue_size:
                old_seq, (old_type, _) = self._eph.popitem(last=False)
                self._outbox.mark_dropped(self.run_id, old_seq)
                self._pending_drops.append((old_seq, old_type))
                self.dropped_by_type[old_type] += 1
        if self.connected and self.listener is not None:
            self.listener()
        return seq

    def _emit_gap(self, force: bool) -> int | None:
        if not self._pending_drops:
            return None
        now = self._clock()
        if not force and now - self._last_gap < self._gap_interval:
            return None
        drops, self._pending_drops = self._pending_drops, []
        data = gap_data(drops, "queue_overflow")
        self._last_gap = now
        seq = self._produce("gap", data)
        self._outbox.forget(self.run_id, [s for s, _ in drops])
        self.declared_gaps.append(
            {"seq": seq, "from_seq": data["from_seq"], "to_seq": data["to_seq"], "count": data["count"]}
        )
        self.declared_gaps_total += 1
        self.declared_dropped_total += data["count"]
        return seq

    # --- connection ----------------------------------------------------------------

    def on_welcome(self, acked_seq: int) -> list[Frame]:
        """Handshake done: what to (re)send first, every held seq > acked_seq in order.

        Pending drops are declared first (the ``gap`` is produced now, so it is in
        this list), then the outbox's critical and the queue's ephemeral messages are
        merged by seq.
        """
        if acked_seq < self.acked_seq:
            self.ack_regressions += 1
        self._free_upto(min(acked_seq, self.last_seq))
        self._emit_gap(force=True)
        self.commit()
        # The outbox mirrors the queue, so this is critical + ephemeral merged by seq.
        frames = self._outbox.pending_after(self.run_id, acked_seq) if self.buffering else []
        self.connected = True
        self._to_send.clear()
        self._sent_upto = max(acked_seq, 0)
        self._hand_out(frames, resend_check=True)
        return frames

    def next_frames(self, limit: int | None = None) -> list[Frame]:
        """Frames produced since the last call (connected only), in seq order."""
        if not self.connected:
            return []
        out: list[Frame] = []
        while self._to_send and (limit is None or len(out) < limit):
            seq, msg_type, text = self._to_send.popleft()
            if text is None:
                held = self._eph.get(seq)
                if held is None:
                    continue  # dropped (declared) or acked meanwhile
                text = held[1]
            out.append(Frame(seq, msg_type, text))
        self._hand_out(out, resend_check=False)
        return out

    def on_ack(self, seq: int) -> int:
        """Cumulative ack: free everything <= seq; returns how many were freed."""
        self.acks_received += 1
        if seq > self._max_sent:
            self.acks_beyond_sent += 1
            seq = self._max_sent
        return self._free_upto(seq)

    def on_disconnect(self) -> None:
        """The link is gone: keep buffering; the next welcome decides what to resend."""
        self.connected = False
        self._to_send.clear()

    def _hand_out(self, frames: list[Frame], resend_check: bool) -> None:
        for f in frames:
            if f.seq <= self._sent_upto:
                raise AssertionError(f"seq {f.seq} out of order after {self._sent_upto}")
            if resend_check and f.seq <= self._max_sent:
                self.resent_total += 1
            self._sent_upto = f.seq
        if frames:
            self._max_sent = max(self._max_sent, self._sent_upto)
            self.sent_total += len(frames)

    def _free_upto(self, seq: int) -> int:
        if seq <= self.acked_seq:
            return 0
        freed = self._outbox.ack_upto(self.run_id, seq) if self.buffering else 0
        while self._eph and next(iter(self._eph)) <= seq:  # mirrored in the outbox
            self._eph.popitem(last=False)
        self.acked_seq = seq
        return freed

    # --- runs of earlier processes ---------------------------------------------------

    def old_runs(self) -> list[str]:
        """Earlier run_ids whose critical messages are still unacked in the outbox."""
        if not self.buffering:
            return []
        return [r for r in self._outbox.runs() if r != self.run_id]

    def old_run_frames(self, run_id: str, acked_seq: int) -> list[Frame]:
        """After the welcome of an old run: free what it acked, return the rest.

        Drops the old process had not declared yet (it died within the gap interval)
        are declared now by one more ``gap`` of that run, with the next seq after its
        last stored row: every seq the backend may have seen was committed first, so
        that seq was never sent.
        """
        self._outbox.ack_upto(run_id, acked_seq)
        undeclared = self._outbox.dropped_after(run_id, acked_seq)
        if undeclared:
            seq = self._outbox.max_seq(run_id) + 1
            data = gap_data(undeclared, "publisher_restart")
            env = self.envelope("gap", seq, data)
            env["run_id"] = run_id
            self._outbox.add(run_id, seq, "gap", json.dumps(env, separators=(",", ":")))
            self._outbox.forget(run_id, [s for s, _ in undeclared])
            self.restart_gaps += 1
        self._outbox.flush()
        frames = self._outbox.pending_after(run_id, acked_seq)
        self.resent_total += len(frames)
        self.sent_total += len(frames)
        return frames

    def on_old_ack(self, run_id: str, seq: int) -> int:
        return self._outbox.ack_upto(run_id, seq)

    def old_run_depth(self, run_id: str) -> int:
        """Unacked critical envelopes of an earlier run."""
        return self._outbox.depth(run_id)

    # --- stats -----------------------------------------------------------------------

    @property
    def queue_depth(self) -> int:
        return len(self._eph)

    @property
    def outbox_depth(self) -> int:
        return self._outbox.depth() if self.buffering else 0

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped_by_type.values())

    def stats(self) -> dict[str, Any]:
        """The publisher block of ``/stats`` (plain data)."""
        return {
            "run_id": self.run_id,
            "last_seq": self.last_seq,
            "acked_seq": self.acked_seq,
            "produced_by_type": dict(sorted(self.produced_by_type.items())),
            "produced_total": sum(self.produced_by_type.values()),
            "dropped_by_type": dict(sorted(self.dropped_by_type.items())),
            "dropped_total": self.dropped_total,
            "declared_gaps": list(self.declared_gaps),
            "declared_gaps_total": self.declared_gaps_total,
            "declared_dropped_total": self.declared_dropped_total,
            "pending_drops": len(self._pending_drops),
            "queue_depth": self.queue_depth,
            "queue_size": self.queue_size,
            "outbox_depth": self.outbox_depth,
            "outbox_depth_current_run": (self._outbox.depth(self.run_id) if self.buffering else 0),
            "sent_total": self.sent_total,
            "resent_total": self.resent_total,
            "acks_received": self.acks_received,
            "acks_beyond_sent": self.acks_beyond_sent,
            "ack_regressions": self.ack_regressions,
            "restart_gaps": self.restart_gaps,
        }
