"""Tests of services/fault_proxy/faultproxy.py: pure config and timing math, then real sockets on 127.0.0.1.

The module is standalone (it is copied alone into a container), so it is loaded from its
path rather than imported through the wsrig package.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import random
import socket
import sys
import time
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "services" / "fault_proxy" / "faultproxy.py"
_SPEC = importlib.util.spec_from_file_location("faultproxy", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
fp = importlib.util.module_from_spec(_SPEC)
sys.modules["faultproxy"] = fp  # dataclasses look the module up by name
_SPEC.loader.exec_module(fp)

TIMEOUT = 8.0
"""Upper bound for any one socket test, so a hang fails instead of blocking the suite."""


# ---------------------------------------------------------------- FaultConfig


def test_default_config_is_pass_through():
    """The default config shapes nothing and blackholes nothing in either direction."""
    cfg = fp.FaultConfig()
    for direction in ("up", "down"):
        assert not cfg.shapes(direction)
        assert not cfg.blackholes(direction)
    assert cfg.describe() == "none"


def test_merge_is_partial_and_keeps_other_fields():
    """A partial update changes only the fields it names."""
    cfg = fp.FaultConfig().merged({"latency_ms": 200, "jitter_ms": 50})
    cfg = cfg.merged({"bandwidth_kbps": 64})
    assert (cfg.latency_ms, cfg.jitter_ms, cfg.bandwidth_kbps) == (200, 50, 64)
    assert cfg.direction == "both" and not cfg.blackhole


def test_merge_null_restores_default():
    """A null value puts that one field back to its default."""
    cfg = fp.FaultConfig(latency_ms=100, blackhole=True).merged({"latency_ms": None})
    assert cfg.latency_ms == 0 and cfg.blackhole


def test_merge_does_not_mutate_original():
    """Merging returns a new config; the old snapshot stays as it was."""
    old = fp.FaultConfig()
    old.merged({"latency_ms": 5})
    assert old.latency_ms == 0


@pytest.mark.parametrize(
    "patch, words",
    [
        ({"latncy_ms": 1}, "unknown field"),
        ({"latency_ms": -1}, "latency_ms"),
        ({"latency_ms": "100"}, "number"),
        ({"latency_ms": True}, "number"),
        ({"jitter_ms": float("inf")}, "jitter_ms"),
        ({"bandwidth_kbps": 10**12}, "bandwidth_kbps"),
        ({"blackhole": 1}, "true or false"),
        ({"direction": "sideways"}, "direction"),
        ([1, 2], "JSON object"),
    ],
)
def test_merge_rejects_bad_input(patch, words):
    """Unknown fields, wrong types and out-of-range values raise with a clear message."""
    with pytest.raises(fp.FaultConfigError, match=words):
        fp.FaultConfig().merged(patch)


def test_direction_limits_directional_faults():
    """direction=up shapes and blackholes only client->upstream."""
    cfg = fp.FaultConfig(latency_ms=10, blackhole=True, direction="up")
    assert cfg.shapes("up") and cfg.blackholes("up")
    assert not cfg.shapes("down") and not cfg.blackholes("down")


def test_to_dict_round_trips_through_merge():
    """GET /faults output can be POSTed back unchanged."""
    cfg = fp.FaultConfig(latency_ms=7, direction="down", reject_new=True)
    assert fp.FaultConfig().merged(cfg.to_dict()) == cfg


# ---------------------------------------------------------------- timing math


def test_schedule_adds_latency():
    """Without jitter a chunk leaves exactly latency_ms after it arrived."""
    cfg = fp.FaultConfig(latency_ms=100)
    assert fp.schedule(cfg, now=10.0, last_release=0.0, size=10) == pytest.approx(10.1)


def test_schedule_jitter_bounds_and_clamp():
    """Jitter moves the delay by at most jitter_ms, never below zero."""
    cfg = fp.FaultConfig(latency_ms=100, jitter_ms=50)
    assert fp.schedule(cfg, 0.0, 0.0, 1, jitter_u=1.0) == pytest.approx(0.15)
    assert fp.schedule(cfg, 0.0, 0.0, 1, jitter_u=-1.0) == pytest.approx(0.05)
    wild = fp.FaultConfig(latency_ms=10, jitter_ms=100)
    assert fp.schedule(wild, 5.0, 0.0, 1, jitter_u=-1.0) == 5.0


def test_schedule_never_reorders():
    """A chunk whose jitter would overtake the previous one waits for it instead."""
    cfg = fp.FaultConfig(latency_ms=100, jitter_ms=80)
    first = fp.schedule(cfg, 0.000, 0.0, 1, jitter_u=1.0)  # leaves at 0.18
    second = fp.schedule(cfg, 0.001, first, 1, jitter_u=-1.0)  # would leave at 0.021
    assert second == first
    rng = random.Random(1)
    last = 0.0
    for i in range(1000):
        release = fp.schedule(cfg, i * 0.001, last, 1, jitter_u=rng.uniform(-1, 1))
        assert release >= last
        last = release


def test_token_bucket_full_bucket_passes_burst_immediately():
    """A full bucket lets its depth through at once."""
    bucket = fp.TokenBucket.for_kbps(64, now=0.0)
    assert bucket.rate == 8000
    assert bucket.reserve(int(bucket.capacity), 0.0) == 0.0


def test_token_bucket_debt_delays_at_the_rate():
    """Beyond the burst, bytes wait size/rate seconds; later chunks queue behind the debt."""
    bucket = fp.TokenBucket(rate=1000.0, capacity=100.0, tokens=100.0, stamp=0.0)
    assert bucket.reserve(1100, 0.0) == pytest.approx(1.0)
    assert bucket.reserve(500, 0.0) == pytest.approx(1.5)
    # debt paid off at 1.5 s; by 2.0 s the bucket is full again (100 B), so 400 B wait
    assert bucket.reserve(500, 2.0) == pytest.approx(2.4)


def test_token_bucket_refill_is_capped():
    """A long idle period refills at most the bucket depth, not unlimited credit."""
    bucket = fp.TokenBucket(rate=1000.0, capacity=100.0, tokens=0.0, stamp=0.0)
    assert bucket.reserve(1100, 100.0) == pytest.approx(101.0)


def test_schedule_bandwidth_then_latency():
    """With both faults, a chunk leaves latency after the bucket lets it onto the wire."""
    cfg = fp.FaultConfig(latency_ms=100, bandwidth_kbps=8)  # 1000 B/s
    bucket = fp.TokenBucket(rate=1000.0, capacity=0.0, tokens=0.0, stamp=0.0)
    assert fp.schedule(cfg, 0.0, 0.0, 500, bucket) == pytest.approx(0.6)


def test_piece_size_bounds():
    """Bandwidth pieces are at least MIN_BURST and at most one read chunk."""
    assert fp.piece_size(1) == fp.MIN_BURST
    assert fp.piece_size(10**8) == fp.CHUNK


def test_parse_hostport():
    """host:port, [v6]:port and bad values."""
    assert fp.parse_hostport("dashboard-backend:8000") == ("dashboard-backend", 8000)
    assert fp.parse_hostport("[::1]:9") == ("::1", 9)
    for bad in ("nohost", ":80", "h:99999", "h:x"):
        with pytest.raises(ValueError):
            fp.parse_hostport(bad)


# ---------------------------------------------------------------- control API routing (no I/O)


def test_handle_request_routes_and_errors():
    """Known paths answer, unknown ones 404, wrong methods 405, bad JSON 400."""
    proxy = fp.ProxyServer("127.0.0.1", 1)
    assert proxy.handle_request("GET", "/health", b"") == (200, {"status": "ok"})
    assert proxy.handle_request("GET", "/nope", b"")[0] == 404
    assert proxy.handle_request("PUT", "/faults", b"")[0] == 405
    status, body = proxy.handle_request("POST", "/faults", b"{not json")
    assert status == 400 and "invalid JSON" in body["error"]
    status, body = proxy.handle_request("POST", "/reset", b'{"hard": true}')
    assert status == 400 and "hard" in body["error"]
    status, body = proxy.handle_request("POST", "/faults", b'{"latency_ms": 5}')
    assert status == 200 and body["latency_ms"] == 5
    assert proxy.handle_request("DELETE", "/faults", b"")[1] == fp.FaultConfig().to_dict()


# ---------------------------------------------------------------- socket helpers


def run(coro):
    """Run one async test body with an overall deadline."""
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


@contextlib.asynccontextmanager
async def rig():
    """An echo upstream and a proxy in front of it, all on 127.0.0.1 free ports."""
    echo = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = echo.sockets[0].getsockname()[1]
    proxy = await fp.start_proxy("127.0.0.1", 0, "127.0.0.1", port, "127.0.0.1", 0)
    try:
        yield proxy
    finally:
        await proxy.close()
        echo.close()
        await echo.wait_closed()


async def connect(proxy):
    return await asyncio.open_connection("127.0.0.1", proxy.listen_port)


async def http(proxy, method: str, path: str, body: object = None) -> tuple[int, dict]:
    """One control request; ``body`` bytes are sent raw, anything else as JSON."""
    raw = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.control_port)
    head = f"{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {len(raw)}\r\n\r\n"
    writer.write(head.encode() + raw)
    response = await reader.read()
    writer.close()
    status_line, _, rest = response.partition(b"\r\n")
    assert b"Connection: close" in rest
    return int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2])


async def read_n(reader: asyncio.StreamReader, n: int, timeout: float = 5.0) -> bytes:
    return await asyncio.wait_for(reader.readexactly(n), timeout)


async def closed_by_peer(reader: asyncio.StreamReader) -> bool:
    """True once the peer has reset or closed the connection."""
    try:
        return await asyncio.wait_for(reader.read(100), 2.0) == b""
    except ConnectionResetError:
        return True


# ---------------------------------------------------------------- socket tests


def test_pass_through_echoes_bytes():
    """With no faults 1 MiB goes up and comes back intact, and stats count it."""

    async def body():
        async with rig() as proxy:
            reader, writer = await connect(proxy)
            payload = bytes(random.Random(0).randbytes(1 << 20))
            writer.write(payload)
            assert await read_n(reader, len(payload)) == payload
            _, stats = await http(proxy, "GET", "/stats")
            assert stats["bytes_up"] == stats["bytes_down"] == len(payload)
            assert stats["connections_open"] == 1 and stats["connections_total"] == 1
            writer.close()

    run(body())


def test_latency_delays_round_trip_and_keeps_order():
    """100 ms latency each way makes a round trip >= ~200 ms; 50 jittered writes stay in order."""

    async def body():
        async with rig() as proxy:
            status, faults = await http(proxy, "POST", "/faults", {"latency_ms": 100})
            assert status == 200 and faults["latency_ms"] == 100
            reader, writer = await connect(proxy)
            start = time.monotonic()
            writer.write(b"ping")
            assert await read_n(reader, 4) == b"ping"
            assert time.monotonic() - start >= 0.19

            await http(proxy, "POST", "/faults", {"jitter_ms": 90})
            expected = b""
            for i in range(50):
                msg = b"%03d;" % i
                expected += msg
                writer.write(msg)
                await writer.drain()
                await asyncio.sleep(0.002)
            assert await read_n(reader, len(expected)) == expected
            writer.close()

    run(body())


def test_blackhole_discards_but_keeps_connection_then_heals():
    """Blackhole forwards nothing yet keeps the socket open; after DELETE /faults data flows."""

    async def body():
        async with rig() as proxy:
            reader, writer = await connect(proxy)
            writer.write(b"hi")
            assert await read_n(reader, 2) == b"hi"
            assert (await http(proxy, "POST", "/faults", {"blackhole": True}))[0] == 200
            writer.write(b"lost")
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(reader.read(100), 0.3)
            assert not reader.at_eof()
            _, stats = await http(proxy, "GET", "/stats")
            assert stats["bytes_discarded"] == 4 and stats["connections_open"] == 1
            status, faults = await http(proxy, "DELETE", "/faults")
            assert status == 200 and faults == fp.FaultConfig().to_dict()
            writer.write(b"back")
            assert await read_n(reader, 4) == b"back"
            writer.close()

    run(body())


def test_blackhole_holds_fin_until_heal():
    """A FIN sent into a blackhole is not lost: it reaches upstream once the fault is lifted."""

    async def body():
        async with rig() as proxy:
            reader, writer = await connect(proxy)
            await http(proxy, "POST", "/faults", {"blackhole": True, "direction": "up"})
            writer.write_eof()
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(reader.read(100), 0.2)
            await http(proxy, "DELETE", "/faults")
            assert await closed_by_peer(reader)  # the echo server saw EOF and closed
            writer.close()

    run(body())


def test_reset_aborts_and_reject_new_until_cleared():
    """POST /reset kills open connections; reject_new RSTs new ones until DELETE /faults."""

    async def body():
        async with rig() as proxy:
            reader, writer = await connect(proxy)
            writer.write(b"x")
            assert await read_n(reader, 1) == b"x"
            status, answer = await http(proxy, "POST", "/reset", {"reject_new": True})
            assert status == 200 and answer == {"reset": 1, "reject_new": True}
            assert await closed_by_peer(reader)
            writer.close()

            reader, writer = await connect(proxy)  # the kernel accepts, the proxy RSTs
            assert await closed_by_peer(reader)
            writer.close()
            _, stats = await http(proxy, "GET", "/stats")
            assert stats["resets"] == 2 and stats["connections_open"] == 0

            await http(proxy, "DELETE", "/faults")
            reader, writer = await connect(proxy)
            writer.write(b"ok")
            assert await read_n(reader, 2) == b"ok"
            writer.close()

    run(body())


def test_down_closes_existing_and_refuses_new():
    """down=true closes open connections and closes new ones at once."""

    async def body():
        async with rig() as proxy:
            reader, writer = await connect(proxy)
            writer.write(b"x")
            assert await read_n(reader, 1) == b"x"
            await http(proxy, "POST", "/faults", {"down": True})
            assert await closed_by_peer(reader)
            reader2, writer2 = await connect(proxy)
            assert await closed_by_peer(reader2)
            writer.close()
            writer2.close()

    run(body())


def test_bandwidth_limits_throughput():
    """16 KiB up at 64 kbps (8000 B/s) takes about 2 s and arrives intact."""

    async def body():
        async with rig() as proxy:
            await http(proxy, "POST", "/faults", {"bandwidth_kbps": 64, "direction": "up"})
            reader, writer = await connect(proxy)
            payload = bytes(random.Random(1).randbytes(16 * 1024))
            start = time.monotonic()
            writer.write(payload)
            assert await read_n(reader, len(payload)) == payload
            elapsed = time.monotonic() - start
            assert 1.7 <= elapsed <= 3.5, elapsed
            writer.close()

    run(body())


def test_delayed_direction_applies_backpressure(monkeypatch):
    """A direction queued past HIGH_WATER stops reading instead of buffering everything."""
    monkeypatch.setattr(fp, "HIGH_WATER", 256 * 1024)
    monkeypatch.setattr(fp, "LOW_WATER", 128 * 1024)

    async def body():
        async with rig() as proxy:
            await http(proxy, "POST", "/faults", {"latency_ms": 5000, "direction": "up"})
            _, writer = await connect(proxy)
            writer.write(bytes(16 * 1024 * 1024))
            deadline = time.monotonic() + 3
            while proxy.stats()["queued_bytes"] < fp.HIGH_WATER:
                assert time.monotonic() < deadline, "queue never filled"
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.2)
            assert proxy.stats()["queued_bytes"] <= fp.HIGH_WATER + fp.CHUNK
            writer.transport.abort()

    run(body())


def test_control_api_over_http():
    """Health, partial merge, 400 on bad JSON and unknown fields, 404, over a real socket."""

    async def body():
        async with rig() as proxy:
            assert await http(proxy, "GET", "/health") == (200, {"status": "ok"})
            await http(proxy, "POST", "/faults", {"latency_ms": 10})
            status, faults = await http(proxy, "POST", "/faults", {"jitter_ms": 3})
            assert status == 200 and (faults["latency_ms"], faults["jitter_ms"]) == (10, 3)
            status, err = await http(proxy, "POST", "/faults", b'{"latency_ms": ')
            assert status == 400 and "invalid JSON" in err["error"]
            status, err = await http(proxy, "POST", "/faults", {"bogus": 1})
            assert status == 400 and "bogus" in err["error"]
            assert (await http(proxy, "GET", "/faults"))[1]["latency_ms"] == 10
            assert (await http(proxy, "GET", "/missing"))[0] == 404
            _, stats = await http(proxy, "GET", "/stats")
            for key in ("connections_total", "connections_open", "bytes_up", "bytes_down"):
                assert stats[key] == 0
            assert stats["resets"] == 0 and stats["faults"]["jitter_ms"] == 3

    run(body())


def test_upstream_unreachable_resets_client():
    """When the upstream refuses, the client is reset rather than left hanging."""

    async def body():
        # A bound socket that never listens refuses connections and keeps its port:
        # a port freed by closing a listener could be handed to the proxy's own listener.
        dead = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        dead.bind(("127.0.0.1", 0))
        dead_port = dead.getsockname()[1]
        proxy = await fp.start_proxy("127.0.0.1", 0, "127.0.0.1", dead_port, "127.0.0.1", 0)
        try:
            reader, writer = await connect(proxy)
            assert await closed_by_peer(reader)
            writer.close()
            assert proxy.stats()["connections_rejected"] == 1
        finally:
            await proxy.close()
            dead.close()

    run(body())
