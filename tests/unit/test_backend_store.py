"""Tests for dashboard_backend.store: group commit, reopen, restore queries."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from dashboard_backend.ingest import Ingest
from dashboard_backend.store import GroupCommitter, Row, Store

RUN = "run-0000-aaaa"


def row(seq: int, msg_type: str = "trade", run_id: str = RUN, **data: Any) -> Row:
    env = {
        "v": 1,
        "type": msg_type,
        "source": "test",
        "run_id": run_id,
        "seq": seq,
        "ts_ns": seq,
        "data": data or {"symbol": "BTC", "trade_id": f"t{seq}"},
    }
    return (run_id, seq, msg_type, seq, seq, json.dumps(env))


def committer(store: Store, ing: Ingest, commits: list[dict[str, list[int]]]) -> GroupCommitter:
    def on_commit(by_run: dict[str, list[int]], marks: dict[str, tuple[int, int]]) -> None:
        for run_id, seqs in by_run.items():
            ing.committed(run_id, seqs)
        ing.mark_persisted(marks)
        if by_run:
            commits.append(by_run)

    return GroupCommitter(
        store,
        0.005,
        projected=ing.projected_watermark,
        last_seq=ing.last_broadcast,
        changed=ing.changed_watermarks,
        on_commit=on_commit,
    )


def test_group_commit_batches_and_reopen_restores(tmp_path):
    """Rows submitted together commit in one batch; a reopened store gives them back."""
    ing = Ingest()
    store = Store(tmp_path)
    commits: list[dict[str, list[int]]] = []

    async def go() -> None:
        gc = committer(store, ing, commits)
        task = asyncio.create_task(gc.run())
        for seq in range(1, 51):
            env = json.loads(row(seq)[5])
            assert ing.accept(env).pending
            gc.submit(row(seq))
        for _ in range(200):
            if ing.watermark(RUN) == 50:
                break
            await asyncio.sleep(0.005)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await gc.close()
        assert gc.batches == 1 and gc.committed == 50

    asyncio.run(go())
    assert ing.watermark(RUN) == 50
    assert commits == [{RUN: list(range(1, 51))}]
    store.close()

    again = Store(tmp_path)
    restored = again.load()
    assert restored.runs == {RUN: (50, 50)}
    assert restored.committed_above == {}
    assert [t["seq"] for t in restored.trades] == list(range(1, 51))
    assert len(again.trades(RUN)) == 50 and len(again.trades(limit=7)) == 7
    again.close()


def test_duplicate_rows_are_ignored(tmp_path):
    """INSERT OR IGNORE keeps the first copy of a (run_id, seq)."""
    store = Store(tmp_path)
    store.write([row(1)], {RUN: (1, 1)})
    store.write([row(1, symbol="ETH"), row(2)], {RUN: (2, 2)})
    trades = [json.loads(t) for t in store.trades()]
    assert [t["seq"] for t in trades] == [1, 2]
    assert trades[0]["data"]["symbol"] == "BTC"
    assert store.count_events() == 2
    store.close()


def test_watermark_never_goes_backwards(tmp_path):
    """An older watermark written later does not lower the stored one."""
    store = Store(tmp_path)
    store.write([], {RUN: (10, 12)})
    store.write([], {RUN: (5, 6)})
    assert store.load().runs == {RUN: (10, 12)}
    store.close()


def test_load_rebuilds_state_and_seqs_above_watermark(tmp_path):
    """Latest position per symbol, latest portfolio and stored seqs above the mark reload."""
    store = Store(tmp_path)
    store.write(
        [
            row(1, "position", symbol="BTC", quantity=1, avg_price=1),
            row(2, "position", symbol="ETH", quantity=1, avg_price=1),
            row(3, "position", symbol="BTC", quantity=2, avg_price=1),
            row(4, "portfolio", cash=1, equity=1, realized_pnl=0, unrealized_pnl=0),
            row(6, "trade"),
        ],
        {RUN: (4, 6)},
    )
    restored = store.load()
    by_symbol = {p["data"]["symbol"]: p["data"]["quantity"] for p in restored.positions}
    assert by_symbol == {"BTC": 2, "ETH": 1}
    assert restored.portfolio is not None and restored.portfolio["seq"] == 4
    assert restored.committed_above == {RUN: [6]}
    store.close()


def test_poke_persists_ephemeral_progress(tmp_path):
    """With no critical traffic, a poke gets the moved watermark written (and durable)."""
    ing = Ingest()
    store = Store(tmp_path)
    ing.accept(
        {
            "v": 1,
            "type": "heartbeat",
            "source": "t",
            "run_id": RUN,
            "seq": 1,
            "ts_ns": 1,
            "data": {"uptime_s": 0},
        }
    )

    async def go() -> None:
        gc = committer(store, ing, [])
        task = asyncio.create_task(gc.run())
        gc.poke()
        for _ in range(100):
            if ing.durable_watermark(RUN) == 1:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await gc.close()

    asyncio.run(go())
    assert store.load().runs == {RUN: (1, 1)}
    store.close()


def test_load_returns_the_most_recent_rows_for_the_ring(tmp_path):
    """``load(ring=N)``: the N most recently stored rows, in (run_id, seq) order."""
    store = Store(tmp_path)
    store.write([row(5, run_id="run-b"), row(1), row(2)], {RUN: (2, 2), "run-b": (5, 5)})
    store.write([row(4), row(6, run_id="run-b"), row(3)], {RUN: (4, 4), "run-b": (6, 6)})
    assert store.load().recent == []
    recent = store.load(ring=4).recent
    assert [(r, s, t) for r, s, t, _ in recent] == [
        (RUN, 2, "trade"),
        (RUN, 3, "trade"),
        (RUN, 4, "trade"),
        ("run-b", 6, "trade"),
    ]
    assert json.loads(recent[0][3])["seq"] == 2
    store.close()


def test_events_filters_by_run_types_and_seq(tmp_path):
    """``events``: every stored type, filtered by run, types and after_seq, ordered by seq."""
    store = Store(tmp_path)
    store.write(
        [
            row(3, "gap", from_seq=1, to_seq=1, count=1, ranges=[[1, 1]], reason="queue_overflow"),
            row(2, "order", symbol="BTC"),
            row(4, "trade"),
            row(1, "trade", run_id="run-b"),
        ],
        {RUN: (4, 4)},
    )

    def seqs(**kw: Any) -> list[tuple[str, int]]:
        return [(json.loads(t)["type"], json.loads(t)["seq"]) for t in store.events(**kw)]

    assert seqs(run_id=RUN) == [("order", 2), ("gap", 3), ("trade", 4)]
    assert seqs(run_id=RUN, types=["trade", "gap"], after_seq=2) == [("gap", 3), ("trade", 4)]
    assert seqs(run_id=RUN, limit=1) == [("order", 2)]
    assert seqs(types=["trade"]) == [("trade", 4), ("trade", 1)]  # (run_id, seq) order
    assert seqs(run_id=RUN, types=[]) == []
    store.close()
