"""Defect backend-one-write-lock: every client write goes through one lock.

A common way to "make writes safe": one lock around each client's send, held while the
send waits for that client's socket to drain. A client that reads nothing (or slowly)
then holds every other client's frames behind its full socket. Here the direct writes
of ``Delivery._flush`` are turned off (``direct_ok`` says no, so every frame goes through a
client's sender) and each sender writes under one module-wide lock. Nothing is lost or
reordered; the slow client is still cut by the queue policy: only the other clients'
latency while it is slow shows the defect.
"""

from _edit import replace_once

replace_once(
    "backend-one-write-lock",
    "/app/dashboard_backend/batching.py",
    [
        (
            "        protocol = self.protocol\n        return (\n",
            "        return False  # DEFECT: no direct writes, every frame through a sender\n"
            "        protocol = self.protocol\n        return (\n",
        )
    ],
    "BatchingConnection.direct_ok always False",
)
replace_once(
    "backend-one-write-lock",
    "/app/dashboard_backend/delivery.py",
    [
        (
            "                await ws.send_frames(frames)\n",
            "                async with _ONE_WRITE_LOCK:  # DEFECT: one lock around every client write\n"
            "                    await ws.send_frames(frames)\n",
        ),
        (
            "\n@dataclass(eq=False, slots=True)\nclass Stream:",
            "\n_ONE_WRITE_LOCK = asyncio.Lock()  # DEFECT\n\n\n@dataclass(eq=False, slots=True)\nclass Stream:",
        ),
    ],
    "Delivery.sender writes under one module-wide lock",
)
