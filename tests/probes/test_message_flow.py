"""Message-flow stage: schema validity, per-run order, snapshot, filters, resume, counts.

Each probe drives and records what it observed in a ``ProbeHistory``;
``wsrig.judges`` decides (and ``wsrig judge`` can again, offline).
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from wsrig import messages
from wsrig.clients import Subscriber
from wsrig.probe import backend_state, backend_status, bot_stats, progress, record_probe, run
from wsrig.scenario_history import trim_frame
from wsrig.wait import wait_until

pytestmark = pytest.mark.message_flow


@pytest.fixture(scope="module")
def window(cfg, limits, bot_run_id):
    """Frames one subscriber received over the observation window of live traffic."""
    seconds = float(limits["window_s"])

    async def body() -> Subscriber:
        sub = Subscriber(cfg.stream_url)
        await sub.connect()
        for i in range(int(seconds)):
            await asyncio.sleep(1)
            if (i + 1) % 5 == 0:
                progress(f"observing live traffic: {i + 1}/{int(seconds)} s, {len(sub.frames)} envelopes")
        await sub.close()
        return sub

    return run(body())


def test_every_frame_validates(window, record, limits):
    """Every frame the backend forwards passes the contract's schemas."""
    record_probe(record, limits, "frames_valid", snapshot=window.snapshot, frames=window.frames)


def test_order_no_gaps_no_duplicates(window, record, limits, bot_run_id):
    """Per run_id: seqs strictly increasing, no duplicate, no gap that was not declared."""
    frames = [(t, trim_frame(f)) for t, f in window.frames]
    record_probe(record, limits, "order", frames=frames, bot_run_id=bot_run_id)


def test_every_type_seen(window, record, limits):
    """Every required message type appears in live traffic."""
    record_probe(record, limits, "types_seen", types=dict(Counter(f.get("type") for _, f in window.frames)))


def test_snapshot_matches_api_state(cfg, record, limits):
    """The snapshot a new subscriber gets equals /api/state taken around it (retried until quiet)."""

    def attempt() -> tuple[dict, dict] | None:
        before = backend_state(cfg)

        async def snap() -> dict:
            async with Subscriber(cfg.stream_url, messages.subscribe(types=["heartbeat"])) as sub:
                await sub.wait_for(lambda s: s.snapshot is not None, 5, "snapshot")
                assert sub.snapshot is not None
                return sub.snapshot

        snapshot = run(snap())
        after = backend_state(cfg)
        if (before["positions"], before["portfolio"]) != (after["positions"], after["portfolio"]):
            return None  # state moved during the attempt; try again
        return snapshot, after

    snapshot, state = wait_until(attempt, timeout=30, interval=0.1, what="a quiet moment to compare snapshot and state")
    keep = ("positions", "portfolio")
    record_probe(
        record,
        limits,
        "snapshot_matches_state",
        snapshot={k: snapshot.get(k) for k in keep},
        state={k: state.get(k) for k in keep},
    )


def test_type_and_symbol_filters(cfg, record, limits, bot_run_id):
    """A subscriber asking for some types and one symbol gets only those."""
    state = backend_state(cfg)
    symbol = sorted(state["positions"])[0] if state["positions"] else "BTCUSD"
    types = ["market_data", "trade"]

    async def body() -> Subscriber:
        async with Subscriber(cfg.stream_url, messages.subscribe(types=types, symbols=[symbol], snapshot=False)) as sub:
            await sub.wait_for(
                lambda s: sum(1 for _, f in s.frames if f.get("type") == "market_data") >= 10, 15, "filtered traffic"
            )
            return sub

    sub = run(body())
    seen = [(f.get("type"), (f.get("data") or {}).get("symbol")) for _, f in sub.frames]
    record_probe(record, limits, "filters", types=types, symbol=symbol, frames=seen)


def test_resume_gets_exactly_the_missed_messages(cfg, record, limits, bot_run_id):
    """A client that disconnects and resumes gets exactly what a client that stayed received."""
    away = float(limits["resume_gap_s"])

    async def body() -> tuple[list[int], list[int], bool, bool]:
        async with Subscriber(cfg.stream_url, messages.subscribe(snapshot=False)) as witness:
            first = Subscriber(cfg.stream_url, messages.subscribe(snapshot=False))
            await first.connect()
            await first.wait_for(lambda s: any(f.get("run_id") == bot_run_id for _, f in s.frames), 10, "live traffic")
            await asyncio.sleep(1)
            await first.close()
            last = max(f["seq"] for _, f in first.frames if f.get("run_id") == bot_run_id)
            await asyncio.sleep(away)
            second = Subscriber(cfg.stream_url, messages.subscribe(resume=(bot_run_id, last)))
            await second.connect()
            await asyncio.sleep(2)
            await second.close()
            await asyncio.sleep(0.5)
        stop = max((f["seq"] for _, f in second.frames if f.get("run_id") == bot_run_id), default=last)
        mine = [f["seq"] for _, f in first.frames + second.frames if f.get("run_id") == bot_run_id]
        theirs = [f["seq"] for _, f in witness.frames if f.get("run_id") == bot_run_id and f["seq"] <= stop]
        lo = min(mine)
        snapshot = second.snapshot is not None
        resumed = bool(second.snapshot.get("resumed", True)) if second.snapshot else False
        return mine, [s for s in theirs if s >= lo], snapshot, resumed

    mine, theirs, snapshot, resumed = run(body())
    record_probe(record, limits, "resume", mine=mine, theirs=theirs, snapshot=snapshot, resumed=resumed)


def test_bot_and_backend_counts_agree(cfg, record, limits, bot_run_id):
    """The bot's /stats and the backend's status agree on what was produced and acknowledged."""
    before = bot_stats(cfg)
    status = backend_status(cfg)
    after = bot_stats(cfg)
    record_probe(
        record, limits, "counts_agree", bot_before=before, backend={"runs": status.get("runs", {})}, bot_after=after
    )
