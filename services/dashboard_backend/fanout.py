"""Fan-out to ``/ws/stream`` clients: filters, bounded queues, the resume ring. No I/O.

Each client has a subscription (types, symbols), a *backlog* (snapshot and resume
replay, written once at subscribe time) and a bounded *queue* of live frames. When the
queue is full the client is marked ``overflowed``: the glue closes it with 1013 (the
documented slow-client policy) and the hub counts ``slow_client_disconnects``. Per
client and run, a frame is queued only when its seq is above the last one queued, so a
client gets each seq at most once and in order.

Resume is answered truthfully (see ``Hub.replay``): ``resumed`` is true only when the
ring can replay everything of the run after the client's ``after_seq``.
"""

from __future__ import annotations

import sys
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = ["Client", "Entry", "Group", "Hub", "Outgoing", "Subscription", "declared_of", "symbol_of"]

#: A queued frame: a text, or the text already framed for the wire (bytes).
Outgoing = str | bytes


def symbol_of(env: dict[str, Any]) -> str | None:
    """``data.symbol`` when it is a string, else None."""
    data = env.get("data")
    if isinstance(data, dict):
        sym = data.get("symbol")
        if isinstance(sym, str):
            return sym
    return None


def declared_of(env: dict[str, Any]) -> tuple[tuple[int, int], ...]:
    """The seq ranges a ``gap`` envelope declares dropped, clamped to ``[1, seq - 1]``."""
    if env.get("type") != "gap":
        return ()
    seq = env.get("seq")
    data = env.get("data")
    if not isinstance(seq, int) or not isinstance(data, dict):
        return ()
    out = []
    for pair in data.get("ranges") or ():
        if isinstance(pair, list | tuple) and len(pair) == 2 and all(type(x) is int for x in pair):
            a, b = max(pair[0], 1), min(pair[1], seq - 1)
            if a <= b:
                out.append((a, b))
    return tuple(out)


class Entry(NamedTuple):
    """One envelope as the ring keeps it: keys for filtering, original text.

    ``declared`` holds the ranges a ``gap`` declares dropped (they count as held for
    resume). A ``marker`` stands for a seq that is accounted but has nothing to send
    (a rejected envelope): it is never replayed, it only counts as held.

    The ring stores each as a plain ``tuple`` of strings and ints, which the garbage
    collector stops tracking after its first pass (it does so for exact tuples only):
    as tracked objects the ring's tens of thousands of entries were walked again by
    every full collection, each of which stops the event loop.
    """

    run_id: str
    seq: int
    type: str
    symbol: str | None
    text: str
    declared: tuple[tuple[int, int], ...] = ()
    marker: bool = False


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


def _noop_group(group: Group) -> None:
    pass


@dataclass(eq=False)
class Group:
    """The clients of one subscription (the same filter, so the same frames).

    Members in the *lane* are served from the group's one ``pending`` list: a frame is
    appended there once per message instead of once per client, and the glue writes the
    list to every lane member in one write each (``Hub.take_lane``). The others (with a
    snapshot or replay still going, flow control paused, ...) each have their own queue,
    as every client had before lanes. Which frames a client gets, and in what order, is
    the same either way: a member joins the lane only with nothing of its own queued,
    and leaves it with the lane's pending frames moved to its own queue.
    """

    sub: Subscription
    lane: dict[int, Client] = field(default_factory=dict)
    others: dict[int, Client] = field(default_factory=dict)
    pending: list[Outgoing] = field(default_factory=list)
    #: The smallest queue capacity in the lane: ``pending`` longer than that overflows.
    capacity: int = 0
    #: Lane members per queue capacity (one value, in practice), so a member joining or
    #: leaving updates ``capacity`` in O(1). Recomputing the minimum over the lane on
    #: every change cost O(members) per change: with 1,000 clients, whose lane is
    #: partly flushed and re-joined on every message, that was O(n^2) per message.
    capacities: Counter[int] = field(default_factory=Counter)

    def join_lane(self, client: Client) -> None:
        self.lane[client.id] = client
        if not self.capacities or client.capacity < self.capacity:
            self.capacity = client.capacity
        self.capacities[client.capacity] += 1

    def leave_lane(self, client_id: int) -> Client | None:
        client = self.lane.pop(client_id, None)
        if client is not None:
            left = self.capacities[client.capacity] - 1
            if left:
                self.capacities[client.capacity] = left
            else:
                del self.capacities[client.capacity]
                self.capacity = min(self.capacities, default=0)
        return client


@dataclass(eq=False)
class Client:
    """One subscriber's queues; the glue drains it with ``take``."""

    id: int
    remote: str
    capacity: int
    sub: Subscription = field(default_factory=Subscription)
    notify: Callable[[], None] = _noop
    backlog: deque[str] = field(default_factory=deque)
    queue: deque[Outgoing] = field(default_factory=deque)
    last_sent: dict[str, int] = field(default_factory=dict)
    overflowed: bool = False
    #: Its subscription's group, while attached; ``in_lane``: served from the group.
    group: Group | None = None
    in_lane: bool = False

    def offer(self, entry: Entry, frame: bytes | None = None) -> bool:
        """Queue ``entry`` if it matches and is new to this client; False on overflow.

        ``frame``, when given, is ``entry.text`` already framed for the wire (the same
        bytes for every client): it is queued instead of the text.
        """
        # Subscription.matches, inlined: this runs once per client per message.
        sub = self.sub
        if self.overflowed or (sub.types is not None and entry.type not in sub.types):
            return True
        symbol = entry.symbol
        if sub.symbols is not None and symbol is not None and symbol not in sub.symbols:
            return True
        run_id, seq = entry.run_id, entry.seq
        last_sent = self.last_sent
        if seq <= last_sent.get(run_id, 0):
            return True
        queue = self.queue
        if len(queue) >= self.capacity:
            self.overflowed = True
            self.notify()
            return False
        queue.append(entry.text if frame is None else frame)
        last_sent[run_id] = seq
        self.notify()
        return True

    def take(self, max_frames: int) -> list[Outgoing]:
        """Up to ``max_frames`` frames to send, backlog first."""
        out: list[Outgoing] = []
        for q in (self.backlog, self.queue):
            while q and len(out) < max_frames:
                out.append(q.popleft())
        return out

    def take_queue(self) -> list[Outgoing]:
        """Every live frame queued (the backlog must be empty: it goes first)."""
        out = list(self.queue)
        self.queue.clear()
        return out

    @property
    def depth(self) -> int:
        lane = len(self.group.pending) if self.in_lane and self.group is not None else 0
        return len(self.backlog) + len(self.queue) + lane


def _covers(ranges: list[tuple[int, int]], lo: int, hi: int) -> bool:
    """Whether the union of the inclusive ``ranges`` contains every int in ``[lo, hi]``."""
    need = lo
    for a, b in sorted(ranges):
        if need > hi:
            break
        if a > need:
            return False
        need = max(need, b + 1)
    return need > hi


class Hub:
    """All subscribers plus the ring of recent envelopes used for resume."""

    def __init__(self, ring_size: int) -> None:
        self.ring_size = ring_size
        #: Recent entries as plain tuples (see ``Entry``), oldest first.
        self.ring: deque[tuple[Any, ...]] = deque()
        self.clients: dict[int, Client] = {}
        #: run_id -> highest seq known to exist: broadcast here or before this process.
        self.last: dict[str, int] = {}
        #: run_id -> the ``last`` restored at start (what earlier processes knew).
        self.restored: dict[str, int] = {}
        self.slow_client_disconnects = 0
        #: Subscription -> its clients (see ``Group``).
        self.groups: dict[Subscription, Group] = {}
        #: Called when a group's lane gets its first pending frame (the glue flushes it).
        self.lane_ready: Callable[[Group], None] = _noop_group

    # --- publishing -----------------------------------------------------------

    def _remember(self, entry: Entry) -> None:
        if len(self.ring) >= self.ring_size:
            self.ring.popleft()
        run_id, seq, msg_type, symbol, text, declared, marker = entry
        # One shared copy of the strings every entry of a run repeats: ~180 of ~600 bytes
        # per entry, about 9 MB for a full ring of 50,000.
        symbol = None if symbol is None else sys.intern(symbol)
        self.ring.append((sys.intern(run_id), seq, sys.intern(msg_type), symbol, text, declared, marker))

    def publish(self, entry: Entry, frame: bytes | None = None) -> list[Client]:
        """Remember ``entry`` and queue it to matching clients; return the overflowed.

        ``frame`` is ``entry.text`` framed once for every client (see ``Client.offer``).
        Per group: the filter is checked once, the frame appended once for the lane, and
        offered to each other member. Per run, published seqs only increase (``Ingest``
        broadcasts nothing at or below the last broadcast), which is why lane members
        need no per-client seq check (see ``promote``).
        """
        self._remember(entry)
        run_id, seq, msg_type, symbol = entry.run_id, entry.seq, entry.type, entry.symbol
        if seq > self.last.get(run_id, 0):
            self.last[run_id] = seq
        item = entry.text if frame is None else frame
        overflowed: list[Client] = []
        for group in self.groups.values():
            sub = group.sub
            if sub.types is not None and msg_type not in sub.types:
                continue
            if sub.symbols is not None and symbol is not None and symbol not in sub.symbols:
                continue
            if group.lane:
                pending = group.pending
                pending.append(item)
                if len(pending) == 1:
                    self.lane_ready(group)
                elif len(pending) > group.capacity:
                    # The lane was not flushed for a whole queue's worth: each member
                    # gets the frames in its own queue, where the one over overflows.
                    for client in list(group.lane.values()):
                        if self.demote(client, pending):
                            client.notify()  # a larger queue took them: its glue sends them
                        else:
                            overflowed.append(client)
                    pending.clear()
            for client in group.others.values():
                if not client.offer(entry, frame):
                    overflowed.append(client)
        for client in overflowed:
            self.slow_client_disconnects += 1
            self._forget(client)
        return overflowed

    # --- lanes (see ``Group``) ----------------------------------------------------

    def take_lane(self, group: Group) -> list[Outgoing]:
        """The frames pending for ``group``'s lane, in order; the lane starts empty again."""
        pending, group.pending = group.pending, []
        return pending

    def promote(self, client: Client) -> bool:
        """Serve ``client`` from its group's lane from now on, if it can join; whether it did.

        Only with nothing of its own queued or due (backlog, queue, overflow), at a lane
        boundary (the lane has nothing pending, so the client gets no frame twice), and
        when no run's seq it has seen is above the highest published (a resume that
        claims more than this process knows keeps the per-client seq check).
        """
        group = client.group
        if (
            group is None
            or client.in_lane
            or client.overflowed
            or client.backlog
            or client.queue
            or group.pending
            or client.id not in group.others
        ):
            return False
        last = self.last
        for run_id, seq in client.last_sent.items():
            if seq > last.get(run_id, 0):
                return False
        del group.others[client.id]
        group.join_lane(client)
        client.in_lane = True
        return True

    def demote(self, client: Client, frames: list[Outgoing]) -> bool:
        """Take ``client`` out of the lane, ``frames`` (the lane's, unsent) into its queue.

        False when they do not all fit: the client is then overflowed (slow-client policy).
        """
        group = client.group
        if group is not None and group.leave_lane(client.id) is not None:
            group.others[client.id] = client
        client.in_lane = False
        # Every seq published so far is behind it: the per-client check resumes from there.
        client.last_sent.update(self.last)
        queue = client.queue
        for item in frames:
            if len(queue) >= client.capacity:
                client.overflowed = True
                client.notify()
                return False
            queue.append(item)
        return True

    def skip(self, run_id: str, seq: int) -> None:
        """``seq`` of ``run_id`` was rejected: accounted, nothing to send. Keep a marker.

        Ignored for seqs at or below what a previous process knew of the run (it may
        have broadcast a valid envelope with that seq). A *late* seq (new but below the
        last broadcast) must not be skipped at all: an earlier process may have sent it.
        """
        if seq > self.restored.get(run_id, 0):
            self._remember(Entry(run_id, seq, "", None, "", marker=True))

    def restore_last(self, run_id: str, seq: int) -> None:
        """Seqs up to ``seq`` of ``run_id`` existed before this process started."""
        if seq > self.last.get(run_id, 0):
            self.last[run_id] = seq
        if seq > self.restored.get(run_id, 0):
            self.restored[run_id] = seq

    def refill(self, entries: Iterable[Entry]) -> None:
        """Put stored envelopes back in the ring (at start, before anything is published).

        Per run they must come in increasing seq order, as ``publish`` would have.
        """
        for entry in entries:
            self._remember(entry)

    # --- subscribers ----------------------------------------------------------

    def replay(self, run_id: str, after_seq: int, sub: Subscription) -> tuple[list[Entry], bool]:
        """Ring entries of ``run_id`` with seq > ``after_seq`` matching ``sub``; complete?

        The rule for *complete* (the snapshot's ``resumed``): let ``L`` be the highest
        seq of the run known to exist (broadcast by this process, or restored from the
        store's watermarks after a restart). The replay is complete when every seq in
        ``(after_seq, L]`` is *held*: a ring entry of the run, a seq declared dropped by
        a ``gap`` in the ring, or a marker (rejected, nothing to send). A seq missing
        from the ring (evicted, or broadcast by an earlier process and not stored, as
        ephemeral envelopes are) makes it incomplete, whatever the client's filter: the
        hub cannot know whether the missing envelope would have matched.

        ``after_seq >= L`` is complete (nothing is missing; a client may have seen more
        than a crashed process persisted). A run the hub has never heard of is complete
        only for ``after_seq == 0``: with ``after_seq > 0`` the client saw seqs this
        process knows nothing about (a lost data dir, say), so it cannot vouch that the
        seqs after them will all arrive.
        """
        entries: list[Entry] = []
        held: list[tuple[int, int]] = []
        for row in self.ring:
            e_run, seq, e_type, symbol, _text, declared, marker = row
            if e_run != run_id or seq <= after_seq:
                continue
            held.append((seq, seq))
            held.extend(declared)
            if not marker and sub.matches(e_type, symbol):
                entries.append(Entry._make(row))
        entries.sort(key=lambda e: e.seq)
        last = self.last.get(run_id)
        if last is None:
            return entries, after_seq <= 0
        return entries, _covers(held, after_seq + 1, last)

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
        group = self.groups.get(client.sub)
        if group is None:
            group = self.groups[client.sub] = Group(client.sub)
        group.others[client.id] = client
        client.group = group
        client.in_lane = False
        return resumed

    def detach(self, client: Client) -> None:
        self._forget(client)

    def _forget(self, client: Client) -> None:
        self.clients.pop(client.id, None)
        group = client.group
        if group is not None:
            group.leave_lane(client.id)
            group.others.pop(client.id, None)
            if not group.lane and not group.others and self.groups.get(group.sub) is group:
                del self.groups[group.sub]
        client.in_lane = False
