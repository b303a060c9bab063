"""Client writes share the event loop with handshakes: a bounded number per loop turn.

One symbol-less bot message (portfolio, heartbeat) goes to every client. With 1,000
clients that wakes 1,000 sender tasks at once, and asyncio runs every ready task before
it looks at the sockets again: ~40 ms of socket writes in one turn, 4 times a second,
with every handshake in flight waiting behind it. Measured (1,000 clients arriving at
200/s): connect P99 33-104 ms with the bot running, 7-15 ms with the bot paused. Letting
``per_turn`` writes through per turn and sending the rest to the next one lets the loop
poll its sockets every few milliseconds; the same writes happen, a few turns later.
"""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["WriteTurns"]


class WriteTurns:
    """``await take()`` before a client write; at most ``per_turn`` writes per loop turn.

    Writers over the share wait in arrival order on a future each; once per turn the
    next ``per_turn`` are released. A waiter costs nothing until its turn comes (no
    spinning through ``sleep(0)``, which would cost O(waiters) every turn).
    """

    def __init__(self, per_turn: int = 128) -> None:
        self.per_turn = per_turn
        self.used = 0
        self.deferred = 0  # writes sent to a later turn: how often the share mattered
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._turn_pending = False

    async def take(self) -> None:
        self._next_turn_soon()
        if self.used < self.per_turn and not self._waiters:
            self.used += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self.deferred += 1
        await waiter  # released by _next_turn, which counted it in that turn's share

    def try_take(self) -> bool:
        """``take`` for a write made from a callback: True if it may happen in this turn.

        False (counted as deferred) when this turn's share is used up or writers are
        waiting: the caller retries in a later turn (``call_soon``), after the waiters.
        """
        self._next_turn_soon()
        if self.used < self.per_turn and not self._waiters:
            self.used += 1
            return True
        self.deferred += 1
        return False

    def _next_turn_soon(self) -> None:
        # call_soon lands in the next loop turn, after the loop has polled its sockets.
        if not self._turn_pending:
            self._turn_pending = True
            asyncio.get_running_loop().call_soon(self._next_turn)

    def _next_turn(self) -> None:
        self._turn_pending = False
        self.used = 0
        while self._waiters and self.used < self.per_turn:
            waiter = self._waiters.popleft()
            if not waiter.done():  # a cancelled writer (its client left) gives its place up
                waiter.set_result(None)
                self.used += 1
        if self._waiters:
            self._next_turn_soon()
