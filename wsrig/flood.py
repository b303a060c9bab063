"""One hostile connection per endpoint flooding the backend, run in a separate process.

Thin asyncio glue for the security stage. It runs in its own process so the flood's
CPU does not stall the rig's own event loop, where the *victim* client measures
latency: the figure must be the backend's doing, not the rig's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import time
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from wsrig import messages
from wsrig.clients import Publisher

__all__ = ["flood", "start_flood_process"]


async def flood(ingest_url: str, stream_url: str, token: str, seconds: float) -> dict[str, Any]:
    """Flood for ``seconds``: a publisher (valid + invalid frames) and a client (junk frames)."""
    sent = {"publisher": 0, "client": 0}

    async def publisher() -> int | None:
        async with Publisher(ingest_url, token, messages.new_run_id("flood")) as pub:
            junk = json.dumps({"type": "market_data", "seq": "no"})
            end = time.monotonic() + seconds
            with contextlib.suppress(ConnectionClosed):
                while time.monotonic() < end and sent["publisher"] < 2_000_000:
                    for _ in range(50):
                        if sent["publisher"] % 2:
                            await pub.publish("market_data")
                        else:
                            await pub.send_raw(junk)
                        sent["publisher"] += 1
                    await asyncio.sleep(0)
            return pub.close_code

    async def client() -> int | None:
        async with connect(stream_url, open_timeout=10) as ws:
            await ws.send(json.dumps(messages.subscribe(types=[], snapshot=False)))
            end = time.monotonic() + seconds
            with contextlib.suppress(ConnectionClosed):
                while time.monotonic() < end and sent["client"] < 2_000_000:
                    await ws.send("flood")
                    sent["client"] += 1
                    if sent["client"] % 50 == 0:
                        await asyncio.sleep(0)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5):
                        while True:
                            await ws.recv()
            return ws.close_code

    t0 = time.time_ns()
    pub_code, client_code = await asyncio.gather(publisher(), client())
    return {
        "start_ns": t0,
        "end_ns": time.time_ns(),
        "publisher_frames": sent["publisher"],
        "client_frames": sent["client"],
        "publisher_close": pub_code,
        "client_close": client_code,
    }


#: The flood shares the rig's cores with the client that measures its effect; niced, the
#: attacker takes only what the measuring client leaves, so the client's own loop lag
#: stays the system's doing (seen: 450 ms loop lag in the normal client with both at nice 0
#: on one pinned core).
FLOOD_NICE = 15


def _main(queue: Any, start_at: float, args: tuple[str, str, str, float]) -> None:
    with contextlib.suppress(OSError):
        os.nice(FLOOD_NICE)
    time.sleep(max(0.0, start_at - time.time()))
    try:
        queue.put(asyncio.run(flood(*args)))
    except Exception as exc:  # reported to the parent, which turns it into a finding
        queue.put({"error": f"{type(exc).__name__}: {exc}"})


def start_flood_process(
    ingest_url: str, stream_url: str, token: str, seconds: float, start_at: float
) -> tuple[Any, Any]:
    """Start the flood in a new process at wall-clock ``start_at``; returns (process, result queue).

    Call it with no event loop running (the process is forked).
    """
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_main, args=(queue, start_at, (ingest_url, stream_url, token, seconds)), daemon=True)
    proc.start()
    return proc, queue
