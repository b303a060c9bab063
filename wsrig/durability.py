"""Acked means durable: critical traffic at full speed, the backend SIGKILLed mid-stream.

Jepsen's first question, asked cheaply. A publisher of the rig's own (its own run_id)
keeps every critical envelope until the backend acks it, as the contract's outbox does,
and resends the unacked ones after each reconnect. While it sends, the backend is killed
at a random point, several times; after each restart the publisher goes on. At the end
the backend's store is read back. This module only drives and records: the result is a
``DurabilityHistory``; ``wsrig.scenario_judge.judge_durability`` decides.
"""

from __future__ import annotations

import asyncio
import json
import random
import time

from websockets.exceptions import ConnectionClosed

from wsrig import messages
from wsrig.clients import Publisher, get_json, publisher_session
from wsrig.config import RigConfig
from wsrig.probe import progress
from wsrig.scenario_history import DurabilityHistory
from wsrig.stack import DockerStack

__all__ = ["run_durability"]

#: A critical type that touches no position or portfolio (the bot's state stays its own).
TYPE = "alert"


async def _send_until_dead(pub: Publisher, outbox: dict[int, str], next_seq: int, window: int) -> int:
    """Send new envelopes, at most ``window`` unacked, until the connection dies; the next seq."""
    try:
        while True:
            while next_seq - pub.acked <= window:
                text = json.dumps(messages.envelope(pub.run_id, next_seq, TYPE))
                outbox[next_seq] = text
                await pub.send_raw(text)
                next_seq += 1
            await pub.wait_ack(next_seq - window, 5.0)
    except Exception:  # the kill closed the connection under us (or acks stopped): the segment ends
        return next_seq


async def _read_after_ack(cfg: RigConfig, pub: Publisher, reads: list[list[int]], every_s: float) -> None:
    """While a segment runs: the newest acked seq, read back from the store at once.

    ``[acked, seq the store returned first after acked - 1 (0: none)]``; a read that fails
    (the backend is being killed) is no sample. Acked means stored at the instant of the
    ack, not some milliseconds later.
    """
    last = 0
    while True:
        await asyncio.sleep(every_s)
        acked = pub.acked
        if acked <= last:
            continue
        last = acked
        url = f"{cfg.dashboard_url}/api/events?run_id={pub.run_id}&after_seq={acked - 1}&limit=1"
        try:
            body = await asyncio.to_thread(get_json, url, 2.0)
        except Exception:
            continue
        events = body.get("events", [])
        reads.append([acked, int(events[0]["seq"]) if events else 0])


async def run_durability(
    cfg: RigConfig,
    stack: DockerStack,
    *,
    kills: int,
    segment_s: tuple[float, float],
    window: int,
    restart_timeout_s: float,
    read_every_s: float = 0.1,
    seed: int | None = None,
    service: str = "",
    name: str = "acked_durable",
) -> DurabilityHistory:
    """``kills`` segments of full-speed critical traffic, each ended by a SIGKILL of the backend
    (or of ``service``: the cluster's Redis) at a random moment in ``segment_s``; then one
    last session that waits for every ack. ``read_every_s`` 0: no read right after an ack (in
    a cluster the read may reach a replica a few ms behind the one that acked)."""
    seed = random.randrange(2**31) if seed is None else seed
    rng = random.Random(seed)
    run_id = messages.new_run_id("durable")
    service = service or cfg.dashboard_service
    outbox: dict[int, str] = {}  # seq -> text, until acked
    next_seq = 1
    history = DurabilityHistory(name=name, run_id=run_id, seed=seed, window=window, kills=[])
    for k in range(kills + 1):
        deadline = time.monotonic() + restart_timeout_s
        while True:
            # A cluster's replica may close a fresh session with 1013 while it catches up with
            # the log after Redis's restart: open again and resend, until the deadline.
            pub = await publisher_session(cfg.ingest_url, cfg.auth_token, run_id, restart_timeout_s)
            welcome = int((pub.welcome or {}).get("acked_seq", 0))
            if history.kills and history.kills[-1]["welcome_acked"] is None:
                history.kills[-1]["welcome_acked"] = welcome
            for seq in [s for s in outbox if s <= welcome]:
                del outbox[seq]
            try:
                for seq in sorted(outbox):  # the outbox: everything not acked, in order
                    await pub.send_raw(outbox[seq])
                if k == kills:
                    await pub.wait_ack(next_seq - 1, restart_timeout_s)
                break
            except (ConnectionClosed, ConnectionError) as exc:  # closed under us (ConnectionError: by wait_ack)
                await pub.__aexit__(None, None, None)
                for seq in [s for s in outbox if s <= pub.acked]:
                    del outbox[seq]
                if time.monotonic() > deadline:
                    history.settle_error = f"the publisher's session kept closing for {restart_timeout_s:.0f}s: {exc}"
                    break
                await asyncio.sleep(0.5)
            except Exception as exc:
                history.settle_error = f"not every envelope was acked within {restart_timeout_s:.0f}s: {exc}"
                break
        if k == kills:
            history.final_acked = pub.acked
            await pub.__aexit__(None, None, None)
            break
        at = rng.uniform(*segment_s)
        progress(f"{name}: kill {k + 1}/{kills} of {service} in {at:.2f}s (seq {next_seq - 1} sent)")

        async def kill_later(delay: float = at) -> int:
            await asyncio.sleep(delay)
            await asyncio.to_thread(stack.kill, service)
            return time.time_ns()

        killer = asyncio.create_task(kill_later())
        reader = None
        if read_every_s > 0:
            reader = asyncio.create_task(_read_after_ack(cfg, pub, history.read_after_ack, read_every_s))
        next_seq = await _send_until_dead(pub, outbox, next_seq, window)
        killed_ns = await killer
        if reader is not None:
            reader.cancel()
        await pub.__aexit__(None, None, None)  # acks read before the process died are all in
        history.kills.append(
            {"at_ns": killed_ns, "acked_before": pub.acked, "sent_before": next_seq - 1, "welcome_acked": None}
        )
        for seq in [s for s in outbox if s <= pub.acked]:
            del outbox[seq]
        await asyncio.to_thread(stack.start, service)
    history.sent = next_seq - 1
    url = f"{cfg.dashboard_url}/api/events?run_id={run_id}&limit=1000000"
    deadline = time.monotonic() + restart_timeout_s
    while True:  # a cluster's replica still catching up with the log answers 503 until it is in step
        try:
            body = await asyncio.to_thread(get_json, url, restart_timeout_s)
            break
        except (RuntimeError, OSError):  # an HTTP error status, or the balancer's port refusing
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)
    history.stored = [int(e["seq"]) for e in body.get("events", []) if e.get("run_id", run_id) == run_id]
    return history
