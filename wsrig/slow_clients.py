"""One slow client harms no other: drive the scenario and record it (``SlowClientHistory``).

The rig's publisher sends 4 KB frames on a fixed schedule, each stamped with its intended
send time, so a delay anywhere after the schedule shows in the latency. Normal clients
read all of it, first alone (the baseline), then, in the same run, while one client
reads nothing and another reads slowly. The backend's client list is read throughout, so
when the non-reading client was cut is measured, not assumed. The slow clients subscribe
to the rig's symbol plus a marker symbol of their own, which is how the client list
names them. ``scenario_judge.judge_slow_client`` decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from wsrig import messages
from wsrig.clients import Publisher, Subscriber
from wsrig.config import RigConfig
from wsrig.looplag import watch_loop
from wsrig.probe import backend_status, bot_stats, progress
from wsrig.scenario_history import ClientLog, SlowClientHistory
from wsrig.wait import settle

__all__ = ["run_slow_clients"]

SYMBOL = "WSRIGSLOW"
NON_READER = "WSRIG-NON-READER"
SLOW_READER = "WSRIG-SLOW-READER"
PADDING = 4096
WARM_UP_S = 1.0
POLL_S = 0.2


async def _send_on_schedule(pub: Publisher, rate: float, start: int, stop: asyncio.Event) -> None:
    """Open loop: frame *i* is due at ``start`` + i/rate and stamped with that time, sent or late."""
    data = dict(messages.SAMPLE_DATA["market_data"], symbol=SYMBOL, padding="x" * PADDING)
    period, i = 1e9 / rate, 0
    while not stop.is_set():
        due = start + int(i * period)
        ahead = due - time.time_ns()
        if ahead > 0:
            await asyncio.sleep(ahead / 1e9)
            continue
        await pub.publish("market_data", data, ts_ns=due)
        i += 1


def _depth(status: dict[str, Any], marker: str) -> int | None:
    """The queue depth of the client subscribed with ``marker``; None when not listed."""
    for client in status.get("clients", []):
        if marker in (client.get("symbols") or []):
            return int(client.get("queue_depth", 0))
    return None


async def _poll(cfg: RigConfig, polls: list[list[Any]], stop: asyncio.Event) -> None:
    """``[t_ns, answered, non-reader depth, slow-reader depth, slow_client_disconnects]`` every ``POLL_S``."""
    while not stop.is_set():
        t = time.time_ns()
        try:
            status = await asyncio.to_thread(backend_status, cfg)
        except Exception:  # an unanswered status is recorded as such, not as a cut
            polls.append([t, False, None, None, None])
        else:
            disconnects = int(status.get("counters", {}).get("slow_client_disconnects", 0))
            polls.append([t, True, _depth(status, NON_READER), _depth(status, SLOW_READER), disconnects])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), POLL_S)


async def _slow_client(cfg: RigConfig, marker: str) -> ClientConnection:
    """A client whose library reads ahead by one message at most: what it does not take stays in the socket."""
    ws = await connect(cfg.stream_url, max_queue=1, max_size=2**24, ping_interval=None)
    await ws.send(json.dumps(messages.subscribe(symbols=[SYMBOL, marker], snapshot=False)))
    return ws


async def _read_slowly(ws: ClientConnection, rate: float, read: dict[str, Any]) -> None:
    with contextlib.suppress(ConnectionClosed):
        while True:
            await ws.recv()
            read["frames"] += 1
            await asyncio.sleep(1 / rate)
    read["close_code"] = ws.close_code


async def run_slow_clients(cfg: RigConfig, limits: dict[str, Any]) -> SlowClientHistory:
    rate, reader_rate = float(limits["slow_client_rate"]), float(limits["slow_reader_rate"])
    baseline_s, hold_s = float(limits["slow_client_baseline_s"]), float(limits["slow_client_hold_s"])
    settle_s = float(limits["settle_timeout_s"])
    status_before = await asyncio.to_thread(backend_status, cfg)
    bot_before = await asyncio.to_thread(bot_stats, cfg)
    polls: list[list[Any]] = []
    stop_sending, stop_polling = asyncio.Event(), asyncio.Event()
    read: dict[str, Any] = {"frames": 0, "close_code": None}
    async with contextlib.AsyncExitStack() as stack:
        lag = await stack.enter_async_context(watch_loop("others and slow clients"))
        others = [
            await stack.enter_async_context(Subscriber(cfg.stream_url, messages.subscribe(snapshot=False)))
            for _ in range(int(limits["slow_client_others"]))
        ]
        pub = await stack.enter_async_context(Publisher(cfg.ingest_url, cfg.auth_token))
        first_seq = pub.seq + 1
        poller = asyncio.create_task(_poll(cfg, polls, stop_polling))
        schedule_start = time.time_ns()
        sender = asyncio.create_task(_send_on_schedule(pub, rate, schedule_start, stop_sending))
        progress(f"slow_subscriber: {len(others)} clients alone for {baseline_s:.0f}s at {rate:g} frames/s")
        await asyncio.sleep(WARM_UP_S)
        baseline = [time.time_ns()]
        await asyncio.sleep(baseline_s)
        baseline.append(time.time_ns())
        non_reader, slow_reader = await asyncio.gather(_slow_client(cfg, NON_READER), _slow_client(cfg, SLOW_READER))
        reader = asyncio.create_task(_read_slowly(slow_reader, reader_rate, read))
        harm = [time.time_ns()]
        progress(f"slow_subscriber: one client reads nothing, one {reader_rate:g} frames/s, for {hold_s:.0f}s")
        await asyncio.sleep(hold_s)
        harm.append(time.time_ns())
        stop_sending.set()
        await sender
        reader.cancel()
        for ws in (non_reader, slow_reader):
            ws.transport.abort()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        last_seq = pub.seq
        # Everything sent is acked and reaches the others (or the judge says what did not).
        await settle(lambda: pub.acked >= last_seq, settle_s)

        def everyone_has(seq: int) -> bool:
            return all(
                any(f.get("run_id") == pub.run_id and f.get("seq", 0) >= seq for _, f in reversed(o.frames))
                for o in others
            )

        await settle(lambda: everyone_has(last_seq), settle_s)
        read_until = time.time_ns()
        stop_polling.set()
        await poller
        logs = [
            ClientLog.of([(t, f) for t, f in o.frames if f.get("run_id") == pub.run_id], 1, [], [o.close_code])
            for o in others
        ]
        run_id = pub.run_id
    return SlowClientHistory(
        name="slow_subscriber",
        produced={"run_id": run_id, "first_seq": first_seq, "last_seq": last_seq},
        rate=rate,
        reader_rate=reader_rate,
        baseline=baseline,
        harm=harm,
        others=logs,
        polls=polls,
        slow_reader=read,
        status_before=status_before,
        status_after=await asyncio.to_thread(backend_status, cfg),
        bot_before=bot_before,
        bot_after=await asyncio.to_thread(bot_stats, cfg),
        rig=[lag.health().serialize()],
        schedule_start_ns=schedule_start,
        read_until_ns=read_until,
    )
