"""Writing the stream to ``/ws/stream`` clients: each client's sender and the flush.

What a client gets, and in what order, is the hub's (``fanout``); this module only
writes it. Each client has a sender task for its snapshot and backlog (and for anything
a direct write cannot take); once it is parked with nothing to send, live frames are
written by ``Delivery._flush`` straight to the transports (one write per client, lanes
joined once per group, paced by a token bucket of flushes, at most the ``WriteTurns``
share per loop turn). This is the fan-out's hot path: nothing here is awaited per frame.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .batching import BatchingConnection, text_frame
from .config import Config
from .fanout import Client, Group, Hub, Outgoing
from .limits import TokenBucket
from .metrics import ServerCounters
from .turns import WriteTurns

__all__ = ["SEND_BATCH", "Delivery", "Stream"]

log = logging.getLogger("dashboard_backend")

SEND_BATCH = 512


@dataclass(eq=False, slots=True)
class Stream:
    """The delivery's side of one ``/ws/stream`` client: its connection and its sender's state."""

    ws: BatchingConnection
    client: Client
    #: Set to wake the sender task (frames it must send itself, overflow, stop).
    wake: asyncio.Event
    #: Set while the sender has nothing left to send (or has ended).
    idle: asyncio.Event
    #: The sender waits on ``wake`` with the snapshot and backlog sent: live frames may
    #: be written from ``Delivery._flush`` directly, no task involved.
    parked: bool = False
    #: In ``Delivery._dirty``: frames were queued since the last flush.
    dirty: bool = False


def _joined(frames: list[Outgoing]) -> bytes:
    """Queued frames as the bytes of one write (texts framed here, frames as they are)."""
    if len(frames) == 1:
        only = frames[0]
        return only if isinstance(only, bytes) else text_frame(only.encode())
    return b"".join(f if isinstance(f, bytes) else text_frame(f.encode()) for f in frames)


class Delivery:
    """Every client's stream, and the flush that writes live frames to them."""

    def __init__(
        self,
        config: Config,
        *,
        hub: Hub,
        counters: ServerCounters,
        write_turns: WriteTurns,
        internal: Callable[[str, BaseException], None],
        spawn: Callable[[Awaitable[Any]], None],
    ) -> None:
        self.hub = hub
        self.counters = counters
        self.write_turns = write_turns
        self._internal = internal
        self._spawn = spawn
        hub.lane_ready = self._lane_ready
        #: client id -> its stream.
        self.streams: dict[int, Stream] = {}
        #: Clients with frames queued since the last ``_flush`` (which is scheduled).
        self._dirty: list[Stream] = []
        #: Groups whose lane has frames pending since the last ``_flush``.
        self._dirty_groups: list[Group] = []
        self._flush_pending = False
        #: Paces flushes of live frames (see ``_schedule_flush``); unlimited at 0 ms.
        self._flushes = TokenBucket(
            1000 / config.client_flush_ms if config.client_flush_ms > 0 else 0,
            config.client_flush_burst,
            time.monotonic(),
        )

    # --- streams --------------------------------------------------------------

    def open(self, ws: BatchingConnection, client: Client) -> Stream:
        """``client``'s stream on ``ws``: queued frames mark it for the next flush."""
        stream = Stream(ws, client, asyncio.Event(), asyncio.Event())
        client.notify = functools.partial(self._mark, stream)
        self.streams[client.id] = stream
        return stream

    async def sender(self, stream: Stream, head: str | None) -> None:
        """Send the snapshot, then the backlog and queue; ``idle`` is set while empty.

        Parked (waiting for frames), it leaves live frames to ``_flush``, which writes
        them directly while the connection allows (joining the client to its group's
        lane) and wakes it when not.
        """
        ws, client, wake, idle = stream.ws, stream.client, stream.wake, stream.idle
        try:
            if head is not None:
                await ws.send(head)
            while True:
                wake.clear()
                if client.overflowed:
                    return
                frames = client.take(SEND_BATCH)
                if not frames:
                    idle.set()
                    stream.parked = True
                    if not client.in_lane:
                        self._mark(stream)  # the flush may let it join the lane
                    try:
                        await wake.wait()
                    finally:
                        stream.parked = False
                    continue
                idle.clear()
                await self.write_turns.take()
                await ws.send_frames(frames)
                self.counters.broadcast += len(frames)
        finally:
            idle.set()

    def kick(self, client: Client) -> None:
        """Close an overflowed client with 1013 (slow-client policy)."""
        stream = self.streams.get(client.id)
        log.warning("client %d (%s): queue full, closing with 1013", client.id, client.remote)
        if stream is not None:
            self._spawn(stream.ws.close(1013, "slow client: send queue full"))

    async def drain(self, timeout: float) -> None:
        """Wait, up to ``timeout`` in total, until every client's sender is idle."""
        while self._dirty or self._dirty_groups:  # frames queued for a flush still to come: write them now
            self._flush(share=False)
        waiting = [asyncio.ensure_future(stream.idle.wait()) for stream in self.streams.values()]
        if not waiting:
            return
        _, pending = await asyncio.wait(waiting, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("stop: %d client(s) still had frames queued after %.1fs", len(pending), timeout)

    # --- the flush ------------------------------------------------------------

    def _schedule_flush(self) -> None:
        """A flush in the next loop turn; under a sustained message rate, paced.

        Each write to a client costs a trip through the kernel's TCP stack (~7 us on
        the host measured, more than all the rest of a delivery), so when messages keep
        coming faster than one per ``client_flush_ms``, flushes are spaced that far
        apart on average and the frames meanwhile share one write per client. Bursts of
        up to ``client_flush_burst`` flushes, and any traffic slower than that pace, go
        in the next loop turn as before (a token bucket of flushes).
        """
        if not self._flush_pending:
            self._flush_pending = True
            loop = asyncio.get_running_loop()
            wait = self._flushes.reserve(time.monotonic())
            if wait <= 0:
                loop.call_soon(self._flush)
            else:
                loop.call_later(wait, self._flush)

    def _mark(self, stream: Stream) -> None:
        """``Client.notify``: frames were queued (or it overflowed); schedule a flush."""
        if not stream.dirty:
            stream.dirty = True
            self._dirty.append(stream)
            self._schedule_flush()

    def _lane_ready(self, group: Group) -> None:
        """``Hub.lane_ready``: a group's lane has frames pending; schedule a flush."""
        self._dirty_groups.append(group)
        self._schedule_flush()

    def _flush(self, share: bool = True) -> None:
        """Write what was queued since the last flush: directly, one write per client.

        First the lanes: each group's pending frames are joined once and written to each
        lane member whose sender is parked on a connection that takes direct writes;
        a member that cannot take them now leaves the lane with them in its own queue.
        Then each client with frames of its own: a parked sender on such a connection
        has them written here (and the client joins its group's lane when it may); any
        other (snapshot or replay still going, flow control paused, closing, overflowed)
        has its sender woken to send them the ordinary way. At most the ``WriteTurns``
        share per loop turn (``share``): the rest is flushed in the next turn, after the
        sockets are polled.
        """
        loop = asyncio.get_running_loop()
        self._flush_pending = True  # marks made while flushing join this flush
        try:
            deferred = self._flush_now(share)
        finally:
            self._flush_pending = False
        if deferred:  # over this turn's share: the rest in the next turn
            self._flush_pending = True
            loop.call_soon(self._flush)

    def _flush_now(self, share: bool) -> bool:
        """``_flush``'s work; True when clients are left for the next turn."""
        turns = self.write_turns
        hub = self.hub
        broadcast = 0
        groups, self._dirty_groups = self._dirty_groups, []
        for group in groups:
            frames = hub.take_lane(group)
            if not frames:
                continue
            n = len(frames)
            data = _joined(frames)
            for client in list(group.lane.values()):
                stream = self.streams.get(client.id)
                if stream is None:
                    continue
                if stream.parked and (not share or turns.try_take()) and stream.ws.direct_ok():
                    try:
                        stream.ws.transport.write(data)
                    except Exception as exc:  # the transport refused: let websockets' path report it
                        self._internal("direct write", exc)
                    else:
                        broadcast += n
                        continue
                # Not now: the frames go to its own queue, for the per-client pass below
                # (or the next turn's), or its sender.
                if not hub.demote(client, frames):
                    hub.slow_client_disconnects += 1
                    hub.detach(client)
                    self.kick(client)
                self._mark(stream)
        dirty, self._dirty = self._dirty, []
        for i, stream in enumerate(dirty):
            if share and not turns.try_take():
                self._dirty.extend(dirty[i:])
                self.counters.broadcast += broadcast
                return True
            stream.dirty = False
            client = stream.client
            if client.in_lane:
                continue
            if client.overflowed or not stream.parked:
                stream.wake.set()  # the sender sends what is queued, or ends (overflow)
                continue
            if not stream.ws.direct_ok():
                if client.queue or client.backlog:
                    stream.wake.set()
                continue
            if client.queue:
                frames = client.take_queue()
                try:
                    stream.ws.write_frames(frames)
                except Exception as exc:  # the transport refused: let websockets' path report it
                    self._internal("direct write", exc)
                    client.queue.extendleft(reversed(frames))
                    stream.wake.set()
                    continue
                broadcast += len(frames)
            hub.promote(client)
        self.counters.broadcast += broadcast
        return False
