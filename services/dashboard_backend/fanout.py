"""Fan-out to ``/ws/stream`` clients: filters, bounded queues, the resume ring. No I/O.

Each client has a subscription (types, symbols), a *backlog* (snapshot and resume
replay, written once at subscribe time) and a bounded *queue* of live frames. When the
queue is full the client is marked ``overflowed``: the glue closes it with 1013 (the
documented slow-client policy) and the hub counts ``slow_client_disconnects``. Per
client and run, a frame is queued only when its seq is above the last one queued, so a
client gets each seq at most once and in order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Client", "Entry", "Hub", "Subscription", "symbol_of"]


def symbol_of(env: dict[str, Any]) -> str | None:
    """``data.symbol`` when it is a string, else None."""
    data = env.get("data")
    if isinstance(data, dict):
        sym = data.get("symbol")
        if isinstance(sym, str):
            return sym
    return None


@dataclass(frozen=True, slots=True)
class Entry:
    """One broadcast envelope as the ring keeps it: keys for filtering, original text."""

    run_id: str
    seq: int
    type: str
    symbol: str | None
    text: str


@dataclass(frozen=True, slots=True)
class Subscription:
    """A client's filter; ``None`` means everything. No symbol passes a symbol filter."""

    types: frozenset[str] | None = None
    symbols: frozenset[str] | None = None

    @classmethod
    def from_frame(cls, frame: dict[str, Any]) -> Subscription:
        """From a validated ``subscribe`` frame."""
        types = frame.get("types")
        symbols = frame.get("symbols")
        return cls(
            types=frozenset(types) if types is not None else None,
            symbols=frozenset(symbols) if symbols is not None else None,
        )

    def matches(self, msg_type: str, symbol: str | None) -> bool:
        if self.types is not None and msg_type not in self.types:
            return False
        return self.symbols is None or symbol is None or symbol in self.symbols


def _noop() -> None:
    pass


@dataclass(eq=False)
class Client:
    """One subscriber's queues; the glue drains it with ``take``."""

    id: int
    remote: str
    capacity: int
    sub: Subscription = field(default_factory=Subscription)
    notify: Callable[[], None] = _noop
    backlog: deque[str] = field(default_factory=deque)
    queue: deque[str] = field(default_factory=deque)
    last_sent: dict[str, int] = field(default_factory=dict)
    overflowed: bool = False

    def offer(self, entry: Entry) -> bool:
        """Queue ``entry`` if it matches and is new to this client; False on overflow."""
        if self.overflowed or not self.sub.matches(entry.type, entry.symbol):
            return True
        if entry.seq <= self.last_sent.get(entry.run_id, 0):
            return True
        if len(self.queue) >= self.capacity:
            self.overflowed = True
            self.notify()
            return False
        self.queue.append(entry.text)
        self.last_sent[entry.run_id] = entry.seq
        self.notify()
        return True

    def take(self, max_frames: int) -> list[str]:
        """Up to ``max_frames`` frames to send, backlog first."""
        out: list[str] = []
        for q in (self.backlog, self.queue):
            while q and len(out) < max_frames:
                out.append(q.popleft())
        return out

    @property
    def depth(self) -> int:
        return len(self.backlog) + len(self.queue)


class Hub:
    """All subscribers plus the ring of recent envelopes used for resume."""

    def __init__(self, ring_size: int) -> None:
        self.ring_size = ring_size
        self.ring: deque[Entry] = deque()
        self.clients: dict[int, Client] = {}
        #: run_id -> highest seq the ring no longer holds (evicted or from before start).
        self.floor: dict[str, int] = {}
        self.slow_client_disconnects = 0

    # --- publishing -----------------------------------------------------------

    def publish(self, entry: Entry) -> list[Client]:
        """Remember ``entry`` and queue it to matching clients; return the overflowed."""
        if len(self.ring) >= self.ring_size:
            old = self.ring.popleft()
            if old.seq > self.floor.get(old.run_id, 0):
                self.floor[old.run_id] = old.seq
        self.ring.append(entry)
        overflowed = [c for c in self.clients.values() if not c.offer(entry)]
        for client in overflowed:
            self.slow_client_disconnects += 1
            del self.clients[client.id]
        return overflowed

    def restore_floor(self, run_id: str, seq: int) -> None:
        """Seqs up to ``seq`` of ``run_id`` were broadcast before this process started."""
        if seq > self.floor.get(run_id, 0):
            self.floor[run_id] = seq

    # --- subscribers ----------------------------------------------------------

    def replay(self, run_id: str, after_seq: int, sub: Subscription) -> tuple[list[Entry], bool]:
        """Ring entries of ``run_id`` with seq > ``after_seq`` matching ``sub``; complete?"""
        entries = [e for e in self.ring if e.run_id == run_id and e.seq > after_seq and sub.matches(e.type, e.symbol)]
        return entries, after_seq >= self.floor.get(run_id, 0)

    def attach(self, client: Client, resume: tuple[str, int] | None = None) -> bool:
        """Register ``client``; with ``resume`` put the replay in its backlog first.

        Returns whether the replay is complete (the snapshot's ``resumed``).
        """
        resumed = True
        if resume is not None:
            run_id, after_seq = resume
            entries, resumed = self.replay(run_id, after_seq, client.sub)
            client.backlog.extend(e.text for e in entries)
            last = entries[-1].seq if entries else 0
            client.last_sent[run_id] = max(after_seq, last, client.last_sent.get(run_id, 0))
        self.clients[client.id] = client
        return resumed

    def detach(self, client: Client) -> None:
        self.clients.pop(client.id, None)
