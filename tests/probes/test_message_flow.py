"""Message-flow stage: schema validity, per-run order, snapshot, filters, resume, counts."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
import wscontract

from wsrig import messages
from wsrig.checkers import check_counts_agree, check_gap_declarations, check_stream
from wsrig.clients import Subscriber
from wsrig.probe import backend_state, backend_status, bot_stats, progress, run
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


def test_every_frame_validates(window, record):
    """Every frame the backend forwards passes the contract's schemas."""
    assert window.snapshot is not None, "no snapshot frame"
    wscontract.validate_control(window.snapshot)
    invalid = []
    for _, frame in window.frames:
        try:
            wscontract.validate_envelope(frame)
        except wscontract.Invalid as exc:
            invalid.append(f"seq {frame.get('seq')} ({frame.get('type')}, run {str(frame.get('run_id'))[:8]}): {exc}")
    record.measure("invalid_frames", len(invalid), 0)
    for line in invalid[:10]:  # each names the seq, type, run, field and the validator's message
        record.finding("error", f"INVALID FRAME on the client stream: {line}")
    assert not invalid, f"{len(invalid)} invalid frame(s), first: {invalid[:3]}"


def test_order_no_gaps_no_duplicates(window, record, limits, bot_run_id):
    """Per run_id: seqs strictly increasing, no duplicate, no gap that was not declared."""
    observed = window.observed()
    reports = check_stream(observed)
    assert bot_run_id in reports, f"no envelope of the bot's run {bot_run_id} observed"
    rep = reports[bot_run_id]
    record.metrics["stream"] = rep.serialize()
    record.measure("envelopes_observed", rep.received, int(limits["min_messages"]), op=">=")
    record.measure("duplicated", len(rep.duplicated), 0)
    record.measure("reordered", len(rep.reordered), 0)
    record.measure("undeclared_gaps", len(rep.undeclared_gaps), 0)
    gap_findings = check_gap_declarations(f for _, f in window.frames if f.get("type") == "gap")
    for f in rep.findings() + gap_findings:
        record.finding(f.severity, f.message)
    assert rep.received >= int(limits["min_messages"]), f"only {rep.received} envelopes in the window"
    assert rep.ok and not gap_findings, "; ".join(f.message for f in rep.findings() + gap_findings)


def test_every_type_seen(window, record, limits):
    """Every required message type appears in live traffic."""
    seen = Counter(f.get("type") for _, f in window.frames)
    record.metrics["types_seen"] = dict(seen)
    missing = sorted(set(limits["required_types"]) - set(seen))
    record.measure("required_types_missing", len(missing), 0)
    assert not missing, f"types never seen in {limits['window_s']} s: {missing}"


def test_snapshot_matches_api_state(cfg, record):
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
    record.metrics["snapshot_positions"] = len(snapshot["positions"])
    assert snapshot["positions"] == state["positions"], "snapshot positions differ from /api/state"
    assert snapshot["portfolio"] == state["portfolio"], "snapshot portfolio differs from /api/state"


def test_type_and_symbol_filters(cfg, record, bot_run_id):
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
    wrong = [f for _, f in sub.frames if f.get("type") not in types or f.get("data", {}).get("symbol") != symbol]
    record.metrics["filtered_frames"] = len(sub.frames)
    record.measure("filter_violations", len(wrong), 0)
    assert not wrong, f"{len(wrong)} frame(s) outside the filter types={types} symbol={symbol}: {wrong[:2]}"


def test_resume_gets_exactly_the_missed_messages(cfg, record, limits, bot_run_id):
    """A client that disconnects and resumes gets exactly what a client that stayed received."""
    away = float(limits["resume_gap_s"])

    async def body() -> tuple[list[int], list[int], bool]:
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
        assert second.snapshot is not None, "no snapshot on resume"
        stop = max(f["seq"] for _, f in second.frames if f.get("run_id") == bot_run_id)
        mine = [f["seq"] for _, f in first.frames + second.frames if f.get("run_id") == bot_run_id]
        theirs = [f["seq"] for _, f in witness.frames if f.get("run_id") == bot_run_id and f["seq"] <= stop]
        lo = min(mine)
        return mine, [s for s in theirs if s >= lo], bool(second.snapshot.get("resumed", True))

    mine, theirs, resumed = run(body())
    record.metrics["resume_messages_compared"] = len(theirs)
    assert resumed, "backend says the resume point is no longer in its ring buffer"
    assert len(mine) == len(set(mine)), "resumed client received duplicates"
    assert mine == theirs, (
        f"resumed history differs from the witness: {len(mine)} vs {len(theirs)} envelopes; first difference near seq {next((a for a, b in zip(mine, theirs, strict=False) if a != b), None)}"
    )


def test_bot_and_backend_counts_agree(cfg, record, bot_run_id):
    """The bot's /stats and the backend's status agree on what was produced and acknowledged."""
    before = bot_stats(cfg)
    status = backend_status(cfg)
    after = bot_stats(cfg)
    findings = check_counts_agree(before, status, after)
    record.metrics["bot_last_seq"] = after.get("last_seq")
    record.metrics["bot_acked_seq"] = after.get("acked_seq")
    record.metrics["backend_acked_seq"] = status.get("runs", {}).get(bot_run_id, {}).get("acked_seq")
    record.metrics["ack_lag"] = int(after.get("last_seq", 0)) - int(after.get("acked_seq", 0))
    for f in findings:
        record.finding(f.severity, f.message)
    assert not findings, "; ".join(f.message for f in findings)
