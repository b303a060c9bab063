"""One fault scenario, Jepsen's shape: steady traffic -> fault -> hold -> heal -> settle -> check.

Thin glue that only drives and records: a resuming subscriber records what a dashboard
client sees, the bot's ``/stats`` is sampled before, during and after, faults are
injected through the ``Fault`` protocol, and the backend's store is read back. The
result is a ``ScenarioHistory``; ``wsrig.scenario_judge`` decides.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.client import connect
from wscontract import CRITICAL_TYPES

from wsrig import messages
from wsrig.checkers import recovery_seconds
from wsrig.clients import MAX_FRAME, get_json
from wsrig.config import RigConfig
from wsrig.faults.base import Fault
from wsrig.history import FaultWindow, Observed, observed_from_frames
from wsrig.probe import backend_status, bot_stats, progress
from wsrig.progress import frame_counters, start_ticker
from wsrig.scenario_history import ClientLog, ScenarioHistory

__all__ = ["ResumingSubscriber", "run_scenario", "stored_critical_seqs"]


class ResumingSubscriber:
    """A dashboard client that reconnects and resumes after every disconnect.

    It follows one run (``run_id``) and asks to resume right after the last seq it saw
    of that run; every frame of every connection is kept with its receive time.
    """

    def __init__(self, url: str, run_id: str, after_seq: int) -> None:
        self.url, self.run_id = url, run_id
        self.last_seq: dict[str, int] = {run_id: after_seq}
        self.frames: list[tuple[int, dict[str, Any]]] = []
        self.connections = 0
        self.resume_refused = 0
        self.refused_at: list[tuple[str, int]] = []
        self.close_codes: list[int | None] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.wait([self._task], timeout=10)

    async def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                resume = (self.run_id, self.last_seq.get(self.run_id, 0))
                async with connect(self.url, open_timeout=3, max_size=MAX_FRAME, ping_interval=1, ping_timeout=3) as ws:
                    self.connections += 1
                    await ws.send(json.dumps(messages.subscribe(resume=resume)))
                    stop = asyncio.ensure_future(self._stop.wait())
                    while not self._stop.is_set():
                        recv = asyncio.ensure_future(ws.recv())
                        done, _ = await asyncio.wait({recv, stop}, return_when=asyncio.FIRST_COMPLETED)
                        if recv not in done:
                            recv.cancel()
                            break
                        frame = json.loads(recv.result())
                        if frame.get("type") == "snapshot":
                            if frame.get("resumed") is False:
                                self.resume_refused += 1
                                self.refused_at.append(resume)
                            continue
                        if "seq" in frame and "run_id" in frame:
                            run = frame["run_id"]
                            self.last_seq[run] = max(self.last_seq.get(run, 0), int(frame["seq"]))
                        self.frames.append((time.time_ns(), frame))
                    stop.cancel()
            except Exception as exc:  # disconnected or refused while the fault holds: retry
                self.close_codes.append(getattr(getattr(exc, "rcvd", None), "code", None))
                await asyncio.sleep(0.2)

    def log(self) -> ClientLog:
        """What this client saw, as plain data for the history."""
        return ClientLog.of(self.frames, self.connections, self.refused_at, self.close_codes)

    def observed(self) -> list[Observed]:
        return observed_from_frames(self.frames)


def stored_critical_seqs(cfg: RigConfig, run_id: str) -> set[int]:
    """Seqs of the critical envelopes the backend stored for ``run_id`` (its durable history).

    ``/api/events`` (every critical type) when the backend has it, else ``/api/trades``.
    """
    try:
        body = get_json(f"{cfg.dashboard_url}/api/events?run_id={run_id}&limit=1000000")
        items = body.get("events", [])
    except RuntimeError:
        body = get_json(f"{cfg.dashboard_url}/api/trades?run_id={run_id}&limit=1000000")
        items = body.get("trades", [])
    return {int(t["seq"]) for t in items if t.get("run_id") == run_id}


async def _record_books(cfg: RigConfig, run_id: str, timeout: float) -> dict[str, Any] | None:
    """Whole-run count of critical messages: the bot's produced count at one instant with its
    ``last_seq``, whether the backend acked that seq within ``timeout``, and how many critical
    envelopes with seq <= last_seq it then had stored (None: it has no ``/api/events``)."""
    stats = await _stats(cfg)
    if not stats or stats.get("run_id") != run_id:
        return None
    last = int(stats["last_seq"])
    books: dict[str, Any] = {
        "run_id": run_id,
        "last_seq": last,
        "produced_critical": sum(int(n) for t, n in stats.get("produced_by_type", {}).items() if t in CRITICAL_TYPES),
        "timeout_s": timeout,
        "acked": False,
        "stored_upto_last": None,
    }
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = await asyncio.to_thread(backend_status, cfg)
        if int(status.get("runs", {}).get(run_id, {}).get("acked_seq", 0)) >= last:
            books["acked"] = True
            break
        await asyncio.sleep(0.2)
    else:
        return books
    try:
        body = await asyncio.to_thread(get_json, f"{cfg.dashboard_url}/api/events?run_id={run_id}&limit=1000000")
    except RuntimeError:
        return books
    books["stored_upto_last"] = len({int(e["seq"]) for e in body.get("events", []) if int(e["seq"]) <= last})
    return books


async def _stats(cfg: RigConfig) -> dict[str, Any] | None:
    try:
        return await asyncio.to_thread(bot_stats, cfg)
    except Exception:  # the bot may be down during its own crash scenario
        return None


async def _wait_settled(cfg: RigConfig, timeout: float) -> dict[str, Any]:
    """Until the bot is connected and the backend has acked all it produced up to now."""
    deadline = time.monotonic() + timeout
    target: int | None = None
    last: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        last = await _stats(cfg)
        if last and last.get("connected"):
            if target is None:
                target = int(last.get("last_seq", 0))
            if int(last.get("acked_seq", 0)) >= target and int(last.get("outbox_depth", 0)) < 50:
                return last
        await asyncio.sleep(0.25)
    raise TimeoutError(
        f"bot did not settle within {timeout:.0f}s (last /stats: {json.dumps(last)[:400] if last else None})"
    )


async def _sample_link(cfg: RigConfig, run_id: str, out: list[list[Any]], every_s: float) -> None:
    """``[t_ns, bot's link state, backend lists the bot's publisher, t_end_ns]`` every ``every_s``
    (None where an end did not answer, "" for a /stats without a link state): when each end
    declared the link dead, and when it was back."""
    while True:
        t = time.time_ns()
        try:
            bot = str((await asyncio.to_thread(bot_stats, cfg)).get("link", {}).get("state") or "")
        except Exception:
            bot = None
        try:
            status = await asyncio.to_thread(backend_status, cfg)
            backend = any(p.get("run_id") == run_id for p in status.get("publishers", []))
        except Exception:
            backend = None
        out.append([t, bot, backend, time.time_ns()])
        await asyncio.sleep(every_s)


async def run_scenario(
    cfg: RigConfig,
    name: str,
    fault: Fault,
    *,
    hold_s: float,
    recovery_bound_s: float,
    steady_s: float = 2.0,
    settle_timeout_s: float = 60.0,
    during: Callable[[], Awaitable[None]] | None = None,
    require_trades: bool = True,
    sample_link_every_s: float | None = None,
) -> ScenarioHistory:
    """Run one scenario end to end and record it; heal always runs. ``recovery_bound_s``
    is how long to wait for the stream after the heal (the judge bounds it again)."""
    start = await _wait_settled(cfg, settle_timeout_s)
    run_id = str(start["run_id"])
    sub = ResumingSubscriber(cfg.stream_url, run_id, int(start["last_seq"]))
    sub.start()
    ticker = start_ticker(lambda: frame_counters(sub.frames))  # live message and latency counters
    progress(f"{name}: steady traffic {steady_s:.0f}s (run {run_id[:8]}, seq {start['last_seq']})")
    await asyncio.sleep(steady_s)
    before = await _stats(cfg) or start
    window = FaultWindow(fault.name)
    link: list[list[Any]] = []
    sampler = None
    if sample_link_every_s:
        sampler = asyncio.create_task(_sample_link(cfg, run_id, link, sample_link_every_s))
    window.injected_ns = time.time_ns()
    during_stats: dict[str, Any] | None = None
    try:
        await asyncio.to_thread(fault.inject)
        progress(f"{name}: {fault.description}; holding {hold_s:.0f}s")
        if during is not None:
            await during()
        await asyncio.sleep(hold_s)
        during_stats = await _stats(cfg)
    finally:
        await asyncio.to_thread(fault.heal)
        window.healed_ns = time.time_ns()
    progress(f"{name}: healed; settling")
    settled_error = None
    try:
        after = await _wait_settled(cfg, settle_timeout_s)
    except TimeoutError as exc:
        settled_error = exc
        after = await _stats(cfg) or {}
    new_run = str(after.get("run_id", run_id))
    tracker = sub  # whose frames give the new run's history
    if new_run != run_id:
        # The bot restarted under a new run_id, which may have published before our
        # subscriber reconnected: a second subscriber replays that run from seq 0.
        tracker = ResumingSubscriber(cfg.stream_url, new_run, 0)
        tracker.start()
        # A restarted bot needs a few ticks before its first trade.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and int(after.get("trading", {}).get("trades", 0)) == 0:
            await asyncio.sleep(0.5)
            after = await _stats(cfg) or after
    # Let the subscriber catch up with everything acked, and see traffic after the heal.
    deadline = time.monotonic() + max(10.0, recovery_bound_s)
    while time.monotonic() < deadline and (
        tracker.last_seq.get(new_run, 0) < int(after.get("acked_seq", 0))
        or recovery_seconds(sub.observed(), window.healed_ns, {new_run}) is None
    ):
        await asyncio.sleep(0.2)
    ticker.cancel()
    if sampler is not None:
        sampler.cancel()
    await sub.stop()
    if tracker is not sub:
        await tracker.stop()
    final = await _stats(cfg) or after
    runs = [run_id] if new_run == run_id else [run_id, new_run]
    stored = {r: sorted(await asyncio.to_thread(stored_critical_seqs, cfg, r)) for r in runs}
    history = ScenarioHistory(
        name=name,
        fault=fault.name,
        injected_ns=window.injected_ns,
        healed_ns=window.healed_ns,
        run_id=run_id,
        new_run_id=new_run,
        stats={"start": start, "before": before, "during": during_stats, "after": after, "final": final},
        live=sub.log(),
        replay=tracker.log() if tracker is not sub else None,
        stored=stored,
        books=await _record_books(cfg, new_run, settle_timeout_s),
        settle_error=str(settled_error) if settled_error else None,
        require_trades=require_trades,
        link=link,
    )
    progress(f"{name}: recorded {len(sub.frames)} frame(s); judging")
    return history
