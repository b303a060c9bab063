"""Defect backend-slow-fanout: the backend waits 200 ms before each write to a client.

A deliberate slowdown for the load stage's self-test: nothing is lost or reordered,
the stream just arrives late, so only the latency threshold (config/thresholds.toml,
``sustained_p99_ms``) can catch it. Ingest, storage and acks are untouched.

Both write paths wait: the flush that writes live frames straight to the clients'
transports (scheduled 200 ms late), and a client's own sender (snapshot, backlog,
a paused connection). Until session 8 only the sender waited, which live frames no
longer take: the defect slowed nothing and the self-test reported it NOT CAUGHT.
"""

from _edit import replace_once

replace_once(
    "backend-slow-fanout",
    "/app/dashboard_backend/delivery.py",
    [
        (
            "                loop.call_soon(self._flush)\n            else:\n                loop.call_later(wait, self._flush)\n",
            "                loop.call_later(0.2, self._flush)  # DEFECT: slow fan-out\n"
            "            else:\n"
            "                loop.call_later(wait + 0.2, self._flush)  # DEFECT: slow fan-out\n",
        ),
        (
            "                idle.clear()\n",
            "                idle.clear()\n                await asyncio.sleep(0.2)  # DEFECT: slow fan-out\n",
        ),
    ],
    "Delivery._schedule_flush and Delivery.sender (200 ms before each write)",
)
