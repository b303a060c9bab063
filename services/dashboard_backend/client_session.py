"""The client side of ``/ws/stream``: subscribe, resume, snapshot, rate limit. No I/O.

A ``ClientSession`` is fed what its connection received (the optional subscribe or its
timeout, each later frame) and returns what to send and whether to close, as
websockets' ``Protocol`` does for frames: no sockets, no awaits, times passed in.
``Clients`` holds what the sessions share (the hub, the state, the counters, the ids).
Writing the stream to the client (snapshot, replay, live frames) is the delivery's
(``delivery``); ``connection`` moves frames between a socket and a session.
"""

from __future__ import annotations

import itertools
import json
import logging

from wscontract import Invalid, parse_frame, validate_control

from .actions import Action, Close, Send, count_protocol_close, error_frame
from .config import Config
from .fanout import Client, Hub, Subscription
from .limits import TokenBucket
from .metrics import ServerCounters
from .state import DashboardState

__all__ = ["RATE_LIMITED", "SUBSCRIBE_TIMEOUT_S", "ClientSession", "Clients"]

log = logging.getLogger("dashboard_backend")

#: How long a client has to send its (optional) subscribe before the default applies.
SUBSCRIBE_TIMEOUT_S = 1.0
#: Close code for a client over its frame rate (policy violation, RFC 6455).
RATE_LIMITED = 1008


class Clients:
    """The rules every client session shares."""

    def __init__(self, config: Config, *, hub: Hub, state: DashboardState, counters: ServerCounters) -> None:
        self.config = config
        self.hub = hub
        self.state = state
        self.counters = counters
        self._ids = itertools.count(1)

    def next_id(self) -> int:
        return next(self._ids)

    def open(self, remote: str, now: float) -> ClientSession:
        """A new ``/ws/stream`` connection from ``remote`` at monotonic time ``now``: its session."""
        self.counters.client_connections_total += 1
        return ClientSession(self, remote, now)


class ClientSession:
    """One ``/ws/stream`` connection's rules: an optional subscribe, then nothing.

    After ``subscribed`` (or ``subscribe_timed_out``), ``client`` is the hub's view of
    it; ``attach`` registers it and gives the snapshot to send first.
    """

    def __init__(self, rules: Clients, remote: str, now: float) -> None:
        self.rules = rules
        self.remote = remote
        config = rules.config
        self.bucket = TokenBucket(config.client_max_msgs_per_s, config.client_msg_burst, now)
        self.sub = Subscription()
        #: ``(run_id, after_seq)`` of a resume, or None.
        self.resume: tuple[str, int] | None = None
        self.want_snapshot = True
        self.client: Client | None = None
        self.attached = False

    # --- the subscribe --------------------------------------------------------

    def subscribe_timed_out(self) -> Client:
        """No frame within ``SUBSCRIBE_TIMEOUT_S``: the default subscription (everything)."""
        return self._client()

    def receive_subscribe(self, raw: str | bytes, now: float) -> tuple[list[Action], Client]:
        """The first frame: a valid subscribe sets the filter, resume and snapshot.

        Anything else keeps the default subscription and is answered with an error frame.
        """
        rules = self.rules
        self.bucket.allow(now)
        try:
            obj = parse_frame(raw)
            if obj.get("type") != "subscribe":
                raise Invalid("bad_subscribe", "expected a subscribe frame")
            validate_control(obj)
        except Invalid as exc:
            rules.counters.bad_subscribe += 1
            return [Send(error_frame("bad_subscribe", f"{exc.detail} (default subscription kept)"))], self._client()
        resume = obj.get("resume")
        self.sub = Subscription.from_frame(obj)
        self.resume = (resume["run_id"], resume["after_seq"]) if resume else None
        self.want_snapshot = obj.get("snapshot", True)
        return [], self._client()

    def _client(self) -> Client:
        rules = self.rules
        self.client = Client(
            id=rules.next_id(), remote=self.remote, capacity=rules.config.client_queue_size, sub=self.sub
        )
        return self.client

    def attach(self) -> str | None:
        """Register the client with the hub (its replay queued); the snapshot to send first, if asked for.

        The replay and the snapshot see the same instant: nothing may run in between.
        """
        rules = self.rules
        assert self.client is not None
        resumed = rules.hub.attach(self.client, self.resume)
        self.attached = True
        head = json.dumps(rules.state.snapshot(resumed)) if self.want_snapshot else None
        return head

    # --- afterwards -----------------------------------------------------------

    def receive(self, now: float) -> Close | None:
        """A frame after the subscribe: counted and dropped; over the client's rate, close."""
        rules = self.rules
        rules.counters.client_frames_ignored += 1
        if not self.bucket.allow(now):
            rules.counters.rate_limit_closes += 1
            log.warning("client %s: over %s frames/s, closing", self.remote, rules.config.client_max_msgs_per_s)
            return Close(RATE_LIMITED, "rate limit exceeded")
        return None

    def closed(self) -> None:
        """The stream ended: the client leaves the hub (its queues with it)."""
        if self.client is not None and self.attached:
            self.rules.hub.detach(self.client)
            self.attached = False

    def close_sent(self, code: int | None) -> None:
        """The connection is gone; ``code``: the close code it sent, if any (1009, 1007 counted)."""
        count_protocol_close(self.rules.counters, code)
