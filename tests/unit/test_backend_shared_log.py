"""The backend's Redis mode (docs/CLUSTER.md): the shared log's rules with plain data,
the append script against a real ``redis-server``, and replicas sharing one log.

The Redis parts start Debian's ``redis-server`` on a random 127.0.0.1 port (no
persistence) and are skipped, saying why, where the binary is absent
(``scripts/setup_env.sh`` installs it).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from dashboard_backend.shared_log import (
    APPEND_LUA,
    LOG_KEY,
    LogHealth,
    append_args,
    append_keys,
    cluster_view,
    entry_of,
    id_ms,
    seen_key,
)
from test_backend_server import (
    TIMEOUT,
    envelope,
    http_get,
    is_critical,
    publisher,
    recv_json,
    running,
    subscribe,
    wait_ack,
)
from websockets.exceptions import ConnectionClosed

RUN = "run-1111-2222-3333"

# --- the rules, plain data ----------------------------------------------------------


def test_a_log_entry_reads_back_as_the_fanout_gets_it():
    text = envelope(5)
    fields = {b"run": RUN.encode(), b"seq": b"5", b"type": b"trade", b"p": text.encode(), b"r": b"123"}
    entry = entry_of(b"1700000000123-0", fields)
    assert (entry.run_id, entry.seq, entry.type, entry.text, entry.recv_ns) == (RUN, 5, "trade", text, 123)
    assert entry.rejected is None and entry.id == "1700000000123-0"
    assert id_ms(entry.id) == 1700000000123
    marker = entry_of("1-0", {"run": RUN, "seq": "7", "type": "!schema_violation", "p": "", "r": "0"})
    assert marker.rejected == "schema_violation" and marker.text == ""


def test_the_append_script_is_called_with_the_run_s_keys_and_the_raw_text():
    assert append_keys(RUN) == [f"wsrig:seen:{RUN}", LOG_KEY]
    assert append_args(RUN, 3, "order", "{...}", 9) == [3, RUN, "order", "{...}", 9]


def test_readiness_needs_the_replay_then_recent_reads_caught_up():
    h = LogHealth(bound=1.0)
    assert not h.ready(0.0) and not h.lost(0.0)  # before the replay: unready, not lost
    h.read(0.0, full=True)
    assert not h.ready(0.1)
    h.replayed = True
    assert not h.ready(0.1)  # never caught up yet
    h.read(0.2, full=False)
    assert h.ready(0.5) and not h.lost(0.5)
    assert h.ready(1.2) and not h.ready(1.21)  # no read for longer than the bound
    assert h.lost(1.3)
    h.read(1.4, full=True)  # reads again, but a whole batch: still catching up
    assert not h.ready(1.4)
    h.read(1.5, full=False)
    assert h.ready(1.5)
    h.read(2.0, full=True)  # behind again (whole batches) ...
    h.read(2.4, full=True)
    assert h.ready(2.4) and not h.ready(2.6)  # ... for longer than the bound: unready


def test_a_failed_append_makes_the_replica_unready_until_something_works():
    h = LogHealth(bound=1.0, replayed=True)
    h.read(0.0, full=False)
    h.last_append_failed = 0.1
    assert not h.ready(0.2) and h.lost(0.2)
    h.last_append_ok = 0.3
    assert h.ready(0.4)
    h.last_append_failed = 0.5
    assert not h.ready(0.6)
    h.read(0.7, full=False)  # a read after the failure: Redis answers again
    assert h.ready(0.8)


def test_the_cluster_view_sums_live_replicas_and_leaves_out_stale_ones():
    pub = {"run_id": RUN, "remote": "10.0.0.5:4000", "connected_at": "x"}
    reports = {
        "1": json.dumps({"t": 100.0, "publishers": [pub], "client_count": 3}),
        "2": json.dumps({"t": 99.5, "publishers": [], "client_count": 4}),
        "3": json.dumps({"t": 90.0, "publishers": [pub], "client_count": 50}),  # killed 10 s ago
        "4": "not json",
    }
    view = cluster_view(reports, now=100.2, max_age=1.0)
    assert view["client_count"] == 7
    assert view["publishers"] == [{**pub, "replica": "1"}]
    assert set(view["replicas"]) == {"1", "2"} and view["replicas"]["2"]["age_ms"] == 700.0


# --- a real redis-server --------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no redis-server on this host (Debian package redis-server; scripts/setup_env.sh installs it)")
    port = _free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("redis-server did not answer PING within 10 s")
            time.sleep(0.05)
    client.close()
    try:
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
        proc.wait(5)


def test_the_append_script_stores_a_run_s_seq_once(redis_server):
    url, _ = redis_server
    r = redis.Redis.from_url(url)
    script = r.register_script(APPEND_LUA)
    text = envelope(1)
    first = script(keys=append_keys(RUN), args=append_args(RUN, 1, "order", text, 42))
    again = script(keys=append_keys(RUN), args=append_args(RUN, 1, "order", "another text", 43))
    other_run = script(keys=append_keys("run-2"), args=append_args("run-2", 1, "order", text, 44))
    assert isinstance(first, bytes) and again == 0 and isinstance(other_run, bytes)
    rows = r.xrange(LOG_KEY)
    assert len(rows) == 2 and r.hget(seen_key(RUN), "1") == b"1"
    entry = entry_of(*rows[0])
    assert (entry.run_id, entry.seq, entry.type, entry.text, entry.recv_ns) == (RUN, 1, "order", text, 42)
    r.close()


def _redis_mode(url: str, replica: str, **more: Any) -> dict[str, Any]:
    return {"redis_url": url, "replica_id": replica, "redis_timeout_s": 0.5, "redis_stale_s": 0.5, **more}


async def _until(what: str, check: Any, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def _ready(b: Any) -> bool:
    return (await http_get(b, "/ready"))[0] == 200


def test_replicas_share_one_log_acks_dedup_resume_and_replay(redis_server, tmp_path):
    """Publisher on A, clients on B: the same stream; a resend to B is a duplicate;
    a client resumes on the other replica; a replica started later replays the log."""
    url, _ = redis_server

    async def go() -> None:
        async with (
            running(tmp_path / "a", **_redis_mode(url, "1")) as a,
            running(tmp_path / "b", **_redis_mode(url, "2")) as b,
        ):
            await _until("A ready", lambda: _ready(a))
            await _until("B ready", lambda: _ready(b))
            watcher, snap = await subscribe(b)
            assert snap["runs"] == {}
            pub, acked = await publisher(a)
            assert acked == 0
            for seq in range(1, 31):
                await pub.send(envelope(seq))
            await wait_ack(pub, 30)
            got = [json.loads(await asyncio.wait_for(watcher.recv(), TIMEOUT))["seq"] for _ in range(30)]
            assert got == list(range(1, 31))
            first, _ = await subscribe(a, snapshot=False)
            for seq in range(31, 41):
                await pub.send(envelope(seq))
            await wait_ack(pub, 40)
            seen = [json.loads(await asyncio.wait_for(first.recv(), TIMEOUT))["seq"] for _ in range(5)]
            await first.close()
            # the same client resumes on the other replica: exactly the rest
            second, snap2 = await subscribe(b, resume={"run_id": RUN, "after_seq": seen[-1]})
            assert snap2["resumed"] is True
            rest = [json.loads(await asyncio.wait_for(second.recv(), TIMEOUT))["seq"] for _ in range(40 - seen[-1])]
            assert seen + rest == list(range(31, 41))
            # the publisher moves to B and resends what it holds: duplicates, stored once
            await pub.close()
            pub_b, acked_b = await publisher(b)
            assert acked_b == 40
            for seq in range(35, 43):
                await pub_b.send(envelope(seq))
            await wait_ack(pub_b, 42)
            status_b = (await http_get(b, "/api/websocket/status"))[1]
            assert status_b["replica"] == "2"
            # the cluster's publishers and clients, whichever replica answers
            await asyncio.sleep(0.3)
            for backend in (a, b):
                status = (await http_get(backend, "/api/websocket/status"))[1]
                assert [p["run_id"] for p in status["publishers"]] == [RUN]
                assert status["publishers"][0]["replica"] == "2"
                assert status["client_count"] == 2 and set(status["replicas"]) == {"1", "2"}
            assert status_b["counters"]["redis_duplicates"] == 6
            assert status_b["counters"]["redis_appends"] == 2
            assert status_b["counters"]["duplicates"] == 6
            live = [json.loads(await asyncio.wait_for(second.recv(), TIMEOUT))["seq"] for _ in range(2)]
            assert live == [41, 42]
            critical = [s for s in range(1, 43) if is_critical(s)]
            for backend in (a, b):
                await _until(
                    "stored events",
                    lambda backend=backend: _count_events(backend, len(critical)),
                )
            events_a = (await http_get(a, f"/api/events?run_id={RUN}"))[1]["events"]
            events_b = (await http_get(b, f"/api/events?run_id={RUN}"))[1]["events"]
            assert events_a == events_b and [e["seq"] for e in events_a] == critical
            times_a = (await http_get(a, f"/api/receive_times?run_id={RUN}"))[1]["recv_ns"]
            assert times_a == (await http_get(b, f"/api/receive_times?run_id={RUN}"))[1]["recv_ns"]
            state_a = (await http_get(a, "/api/state"))[1]
            assert (await http_get(b, "/api/state"))[1]["positions"] == state_a["positions"]
            # a replica started now replays the whole log before it is ready
            async with running(tmp_path / "c", **_redis_mode(url, "3")) as c:
                await _until("C ready", lambda: _ready(c))
                state_c = (await http_get(c, "/api/state"))[1]
                assert state_c["positions"] == state_a["positions"]
                assert state_c["runs"][RUN]["broadcast_seq"] == 42
                late, snap3 = await subscribe(c, resume={"run_id": RUN, "after_seq": 20})
                assert snap3["resumed"] is True
                replay = [json.loads(await asyncio.wait_for(late.recv(), TIMEOUT))["seq"] for _ in range(22)]
                assert replay == list(range(21, 43))
                await late.close()
            for ws in (watcher, second, pub_b):
                await ws.close()

    asyncio.run(asyncio.wait_for(go(), 60))


async def _count_events(backend: Any, n: int) -> bool:
    return (await http_get(backend, f"/api/events?run_id={RUN}"))[1].get("count") == n


def test_a_replica_that_loses_redis_stops_acking_closes_and_is_unready(redis_server, tmp_path):
    """Redis stopped (SIGSTOP, as a pause): no ack, the publisher closed 1013, clients
    closed 1013, /ready 503, data 503; after SIGCONT it catches up and is ready again."""
    url, proc = redis_server

    async def go() -> None:
        async with running(tmp_path / "a", **_redis_mode(url, "1")) as a:
            await _until("ready", lambda: _ready(a))
            client, _ = await subscribe(a, snapshot=False)
            pub, _ = await publisher(a)
            await pub.send(envelope(1))
            await wait_ack(pub, 1)
            assert json.loads(await asyncio.wait_for(client.recv(), TIMEOUT))["seq"] == 1
            proc.send_signal(signal.SIGSTOP)
            try:
                await pub.send(envelope(2))
                frames = []
                with pytest.raises(ConnectionClosed):
                    while True:
                        frames.append(await recv_json(pub))
                assert pub.close_code == 1013
                assert not [f for f in frames if f.get("type") == "ack"], frames
                with pytest.raises(ConnectionClosed):
                    while True:
                        await asyncio.wait_for(client.recv(), TIMEOUT)
                assert client.close_code == 1013
                assert (await http_get(a, "/ready"))[0] == 503
                assert (await http_get(a, "/api/state"))[0] == 503
                status = (await http_get(a, "/api/websocket/status"))[1]
                assert status["counters"]["redis_append_failures"] >= 1
                assert status["counters"]["redis_connected"] == 0
            finally:
                proc.send_signal(signal.SIGCONT)
            await _until("ready again", lambda: _ready(a), timeout=10)
            pub2, acked = await publisher(a)
            # seq 2 reached Redis once it woke up (its pipeline was already sent), or not:
            # either way the welcome reports only what the log holds, and a resend is a duplicate.
            await pub2.send(envelope(2))
            await pub2.send(envelope(3))
            await wait_ack(pub2, 3)
            status = (await http_get(a, "/api/websocket/status"))[1]
            assert status["runs"][RUN]["acked_seq"] == 3
            await pub2.close()

    asyncio.run(asyncio.wait_for(go(), 60))
