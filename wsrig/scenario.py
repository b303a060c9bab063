"""One fault scenario, Jepsen's shape: steady traffic -> fault -> hold -> heal -> settle -> check.

Thin glue: a resuming subscriber records what a dashboard client sees, the bot's
``/stats`` is sampled before, during and after, faults are injected through the
``Fault`` protocol, and the pure checkers judge the three histories.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import connect
from wscontract import CRITICAL_TYPES

from wsrig import messages
from wsrig.checkers import Finding, check_delivery, check_gap_declarations, check_trading_continued, recovery_seconds
from wsrig.clients import MAX_FRAME, get_json
from wsrig.config import RigConfig
from wsrig.faults.base import Fault, FaultWindow
from wsrig.history import Observed, Produced, SeqSet, observed_from_frames
from wsrig.probe import backend_status, bot_stats, progress
from wsrig.progress import frame_counters, start_ticker

__all__ = ["ResumingSubscriber", "ScenarioResult", "run_scenario", "stored_critical_seqs"]


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

    def observed(self) -> list[Observed]:
        return observed_from_frames(self.frames)

    def excused(self) -> dict[str, SeqSet]:
        """Seqs the backend said it could not replay: from each refused resume point to
        the next seq this subscriber saw of that run."""
        out: dict[str, SeqSet] = {}
        seen = self.observed()
        for run_id, after in self.refused_at:
            later = [o.seq for o in seen if o.run_id == run_id and o.seq > after]
            # nothing later seen: the refusal covers everything after the resume point
            end = min(later) - 1 if later else 2**53
            out.setdefault(run_id, SeqSet()).add_range(after + 1, end)
        return out


@dataclass
class ScenarioResult:
    """One row of the fault table."""

    name: str
    fault: str
    window: FaultWindow
    lost: int = 0
    duplicated: int = 0
    reordered: int = 0
    undeclared_drops: int = 0
    declared_dropped: int = 0
    unexpected: int = 0
    recovery_s: float | None = None
    trading_continued: bool = False
    findings: list[Finding] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    # (receive time Unix s, end-to-end latency ms) of every frame the live subscriber
    # saw: the report's latency-over-time chart, not part of the verdict
    latency_samples: list[tuple[float, float]] = field(default_factory=list, repr=False)

    @property
    def passed(self) -> bool:
        """Derived from the findings, so a probe that adds one cannot forget the verdict."""
        return not any(f.severity == "error" for f in self.findings)

    def serialize(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "fault": self.fault,
            "passed": self.passed,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "reordered": self.reordered,
            "undeclared_drops": self.undeclared_drops,
            "declared_dropped": self.declared_dropped,
            "unexpected": self.unexpected,
            "recovery_s": None if self.recovery_s is None else round(self.recovery_s, 3),
            "trading_continued": self.trading_continued,
            "fault_window": self.window.serialize(),
            "findings": [f.serialize() for f in self.findings],
            **self.extra,
        }


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


async def _critical_books(cfg: RigConfig, run_id: str, timeout: float) -> Finding | None:
    """Whole-run check: critical messages the bot produced = critical messages stored.

    The bot's ``/stats`` gives produced counts by type at one instant together with its
    ``last_seq``; once the backend has acked that seq, exactly that many critical
    envelopes with seq <= last_seq must be in the backend's store.
    """
    stats = await _stats(cfg)
    if not stats or stats.get("run_id") != run_id:
        return None
    last = int(stats["last_seq"])
    produced = sum(int(n) for t, n in stats.get("produced_by_type", {}).items() if t in CRITICAL_TYPES)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = await asyncio.to_thread(backend_status, cfg)
        if int(status.get("runs", {}).get(run_id, {}).get("acked_seq", 0)) >= last:
            break
        await asyncio.sleep(0.2)
    else:
        return Finding("error", f"backend did not ack seq {last} of run {run_id[:8]} within {timeout:.0f}s")
    try:
        body = await asyncio.to_thread(get_json, f"{cfg.dashboard_url}/api/events?run_id={run_id}&limit=1000000")
    except RuntimeError:
        return Finding("warning", "backend has no /api/events: whole-run critical count not checked")
    stored = {int(e["seq"]) for e in body.get("events", []) if int(e["seq"]) <= last}
    if len(stored) != produced:
        return Finding(
            "error",
            f"run {run_id[:8]}: bot produced {produced} critical message(s) up to seq {last}, "
            f"backend stored {len(stored)} ({produced - len(stored)} LOST critical)",
        )
    return None


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
) -> ScenarioResult:
    """Run one scenario end to end and judge it; heal always runs."""
    start = await _wait_settled(cfg, settle_timeout_s)
    run_id = str(start["run_id"])
    sub = ResumingSubscriber(cfg.stream_url, run_id, int(start["last_seq"]))
    sub.start()
    ticker = start_ticker(lambda: frame_counters(sub.frames))  # live message and latency counters
    progress(f"{name}: steady traffic {steady_s:.0f}s (run {run_id[:8]}, seq {start['last_seq']})")
    await asyncio.sleep(steady_s)
    before = await _stats(cfg) or start
    window = FaultWindow(fault.name)
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
    await sub.stop()
    if tracker is not sub:
        await tracker.stop()
    final = await _stats(cfg) or after

    result = ScenarioResult(name, fault.name, window)
    result.latency_samples = [(recv / 1e9, (recv - int(f["ts_ns"])) / 1e6) for recv, f in sub.frames if "ts_ns" in f]
    live = sub.observed()  # what one client saw live (recovery time)
    observed = [o for o in live if o.run_id != new_run or tracker is sub]
    if tracker is not sub:
        observed += tracker.observed()
    produced = []
    if new_run == run_id:
        produced.append(
            Produced(
                run_id,
                first_seq=int(start["last_seq"]) + 1,
                last_seq=int(final.get("last_seq", 0)),
                judge_upto=int(after.get("acked_seq", 0)),
            )
        )
    else:  # bot crashed: judge the old run up to what it had produced, the new one from 1
        old_last = max([int(before.get("last_seq", 0))] + [o.seq for o in observed if o.run_id == run_id])
        produced.append(Produced(run_id, first_seq=int(start["last_seq"]) + 1, last_seq=old_last))
        produced.append(
            Produced(
                new_run, first_seq=1, last_seq=int(final.get("last_seq", 0)), judge_upto=int(after.get("acked_seq", 0))
            )
        )
    stored = {p.run_id: await asyncio.to_thread(stored_critical_seqs, cfg, p.run_id) for p in produced}
    runs = {p.run_id for p in produced}
    reports = check_delivery(
        produced, [o for o in observed if o.run_id in runs], stored, {**sub.excused(), **tracker.excused()}
    )
    for rep in reports.values():
        result.lost += len(rep.lost)
        result.duplicated += len(rep.duplicated)
        result.reordered += len(rep.reordered)
        result.undeclared_drops += len(rep.undeclared_drops)
        result.declared_dropped += rep.declared_dropped
        result.unexpected += len(rep.unexpected)
        result.extra["missed_on_refused_resume"] = (
            result.extra.get("missed_on_refused_resume", 0) + rep.missed_on_refused_resume
        )
        result.findings += rep.findings()
    result.findings += check_gap_declarations({"seq": o.seq, "data": o.data} for o in observed if o.type == "gap")
    books = await _critical_books(cfg, new_run, settle_timeout_s)
    if books is not None:
        result.findings.append(books)
    result.recovery_s = recovery_seconds(live, window.healed_ns, {new_run})
    if new_run == run_id:
        trading_ok, trading_finding = check_trading_continued(before, during_stats or {}, require_trades)
    else:  # the bot itself restarted: its new process must be trading again
        trading_ok, trading_finding = check_trading_continued(
            {"trading": {"ticks": 0, "trades": 0}}, after, require_trades
        )
    result.trading_continued = trading_ok
    if trading_finding:
        result.findings.append(Finding("error", f"during the fault: {trading_finding.message}"))
    if settled_error:
        result.findings.append(Finding("error", str(settled_error)))
    if result.recovery_s is None:
        result.findings.append(Finding("error", "no message observed after heal"))
    elif result.recovery_s > recovery_bound_s:
        result.findings.append(Finding("error", f"recovery {result.recovery_s:.1f}s > bound {recovery_bound_s:.0f}s"))
    result.extra.update(
        run_id=run_id[:8],
        new_run_id=new_run[:8] if new_run != run_id else None,
        observed=len(observed),
        subscriber_reconnects=max(0, sub.connections - 1),
        resume_refused=sub.resume_refused,
        bot_reconnects=int(after.get("reconnects", 0)) - int(before.get("reconnects", 0))
        if new_run == run_id
        else None,
        dropped_by_bot=int(after.get("dropped_total", 0)) - int(before.get("dropped_total", 0))
        if new_run == run_id
        else None,
    )
    progress(
        f"{name}: {'PASS' if result.passed else 'FAIL'} lost={result.lost} dup={result.duplicated} reord={result.reordered} recovery={result.recovery_s}"
    )
    return result
