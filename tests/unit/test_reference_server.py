"""Tests for reference_server: the pure core, then the real server on 127.0.0.1 port 0."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

import orjson
import pytest
from reference_server.core import (
    Config,
    Fanout,
    Filter,
    Rejected,
    Runs,
    ack_frame,
    check_hello,
    envelope_keys,
    error_frame,
    parse_subscribe,
    snapshot_frame,
    text_frame,
    welcome_frame,
)
from reference_server.server import ReferenceServer
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame
from websockets.streams import StreamReader
from wscontract import validate_control

from wsrig import messages
from wsrig.load.layout import prefix, read_fields
from wsrig.load.lean_client import open_stream
from wsrig.load.publisher import PublisherSpec, publish

RUN = "run-aaaa-bbbb-cccc"
TOKEN = "ref-token"


def env(seq: int, msg_type: str = "market_data", symbol: str | None = "BTC", run_id: str = RUN) -> bytes:
    data: dict[str, Any] = dict(messages.SAMPLE_DATA[msg_type])
    data.pop("symbol", None)
    if symbol is not None:
        data["symbol"] = symbol
    return json.dumps(messages.envelope(run_id, seq, msg_type, data)).encode()


class FakeSink:
    def __init__(self) -> None:
        self.slow = False
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)


def parse_frames(wire: bytes) -> list[Frame]:
    """Decode server frames with websockets' own parser (unmasked, as a client reads them)."""
    reader = StreamReader()
    reader.feed_data(wire)
    out = []
    while reader.buffer:
        gen = Frame.parse(reader.read_exact, mask=False)
        with pytest.raises(StopIteration) as done:  # all bytes are there: parsing never waits
            next(gen)
        out.append(done.value.value)
    return out


# --- config -------------------------------------------------------------------------


def test_config_defaults_and_env():
    """Defaults match the compose service; SYSTEM__* overrides parse, bad numbers are named."""
    assert Config.from_env({}) == Config()
    cfg = Config.from_env({"SYSTEM__PORT": "9000", "SYSTEM__WEBSOCKET_AUTH_TOKEN": "t", "SYSTEM__LOG_LEVEL": "debug"})
    assert (cfg.port, cfg.auth_token, cfg.log_level) == (9000, "t", "DEBUG")
    assert cfg.describe()["auth_token"] == "***"
    with pytest.raises(ValueError, match="SYSTEM__CLIENT_BUFFER_BYTES"):
        Config.from_env({"SYSTEM__CLIENT_BUFFER_BYTES": "lots"})


# --- frames -------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 200_000])
def test_text_frame_is_a_valid_unmasked_text_frame(size):
    """Every length class of the header (7-bit, 16-bit, 64-bit) decodes to the payload."""
    payload = b"x" * size
    (frame,) = parse_frames(text_frame(payload))
    assert frame.fin and frame.opcode.name == "TEXT" and frame.data == payload


def test_control_frames_validate_against_the_schemas():
    """welcome, ack, error and the empty snapshot are valid per schemas/control."""
    validate_control(orjson.loads(welcome_frame(RUN, 0)))
    validate_control(orjson.loads(ack_frame(RUN, 7)))
    validate_control(orjson.loads(error_frame("invalid_json", "x", 3)))
    for resumed in (True, False):
        snap = orjson.loads(snapshot_frame({RUN: 12}, resumed))
        validate_control(snap)
        assert snap["runs"] == {RUN: 12} and snap["resumed"] is resumed


# --- hello and envelopes ------------------------------------------------------------


def test_hello_accepted_with_the_right_token():
    """A hello with the token gives its run_id and no close."""
    hello = check_hello(json.dumps(messages.hello(RUN, TOKEN)).encode(), TOKEN)
    assert hello.run_id == RUN and hello.close == 0 and hello.error is None


def test_hello_wrong_token_closes_1008_without_a_word():
    """A wrong or missing token: close 1008, no error frame (as the backend does)."""
    for frame in (messages.hello(RUN, "nope"), {"type": "hello", "run_id": RUN, "source": "x"}):
        hello = check_hello(json.dumps(frame).encode(), TOKEN)
        assert (hello.run_id, hello.close, hello.error) == (None, 1008, None)


def test_first_frame_not_a_hello_gets_expected_hello_then_1008():
    """An envelope, a non-object or invalid JSON first: error expected_hello, close 1008."""
    for raw in (env(1), b"[1]", b"{oops"):
        hello = check_hello(raw, TOKEN)
        assert hello.run_id is None and hello.close == 1008
        assert hello.error is not None and orjson.loads(hello.error)["code"] == "expected_hello"


def test_envelope_keys_reads_type_seq_and_symbol():
    """Type, seq and data.symbol come out; a symbol-less envelope gives None."""
    assert envelope_keys(env(5, "trade", "ETH"), RUN) == ("trade", 5, "ETH")
    assert envelope_keys(env(6, "portfolio", None), RUN) == ("portfolio", 6, None)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{not json", "invalid_json"),
        (b"[1, 2]", "not_an_object"),
        (env(1, run_id="run-other-run-id"), "run_mismatch"),
        (env(1).replace(b'"seq": 1', b'"seq": true'), "schema_violation"),
        (env(1).replace(b'"seq": 1', b'"seq": 0'), "schema_violation"),
        (env(1).replace(b'"market_data"', b'"gossip"'), "unknown_type"),
        (env(1).replace(b'"type": "market_data"', b'"type": ["market_data"]'), "unknown_type"),
    ],
)
def test_envelope_keys_rejects_what_it_cannot_route(raw, code):
    """Unroutable frames are rejected with the contract's error code (the error frame is valid)."""
    with pytest.raises(Rejected) as exc:
        envelope_keys(raw, RUN)
    assert exc.value.code == code
    validate_control(orjson.loads(exc.value.frame))


def test_runs_ack_is_the_highest_seq_and_repeats_are_not_broadcast():
    """advance() is True only above the highest seq; acked() reports the highest, 0 if new."""
    runs = Runs()
    assert runs.acked(RUN) == 0
    assert [runs.advance(RUN, s) for s in (1, 2, 2, 1, 5, 4)] == [True, True, False, False, True, False]
    assert runs.acked(RUN) == 5 and runs.acked("run-unknown-1") == 0


# --- subscribe and filters ----------------------------------------------------------


def test_filter_follows_the_protocol_rule():
    """Types filter by envelope type; symbols by data.symbol; no symbol passes a symbol filter."""
    f = Filter(types=frozenset({"market_data", "portfolio"}), symbols=frozenset({"ETH"}))
    assert f.matches("market_data", "ETH")
    assert not f.matches("market_data", "BTC")
    assert not f.matches("trade", "ETH")
    assert f.matches("portfolio", None)
    assert Filter().matches("anything", None) and Filter().everything


def test_parse_subscribe_as_the_rig_sends_it():
    """The rig's load subscribe (types, symbols, snapshot false) and the defaults."""
    sub = parse_subscribe(json.dumps(messages.subscribe(["market_data"], ["LOADUSD"], snapshot=False)).encode())
    assert sub.filter == Filter(frozenset({"market_data"}), frozenset({"LOADUSD"}))
    assert (sub.snapshot, sub.resumed) == (False, True)
    plain = parse_subscribe(b'{"type":"subscribe"}')
    assert plain.filter.everything and plain.snapshot and plain.resumed


def test_resume_is_answered_as_not_resumed():
    """A resume request is honoured as live-only: the snapshot will say resumed false."""
    sub = parse_subscribe(json.dumps(messages.subscribe(resume=(RUN, 10))).encode())
    assert sub.filter.everything and sub.resumed is False


@pytest.mark.parametrize(
    "raw",
    [b"nope", b'{"type":"hello"}', b'{"type":"subscribe","types":["gossip"]}', b'{"type":"subscribe","symbols":"X"}'],
)
def test_bad_subscribe_is_rejected(raw):
    """Anything not a usable subscribe is bad_subscribe (the glue keeps the default)."""
    with pytest.raises(Rejected) as exc:
        parse_subscribe(raw)
    assert exc.value.code == "bad_subscribe"


# --- fan-out ------------------------------------------------------------------------


def test_fanout_one_write_per_client_per_turn_shared_bytes():
    """A turn's frames reach a group as one bytes object, the same one for every member."""
    fan = Fanout()
    a, b, c = FakeSink(), FakeSink(), FakeSink()
    btc = Filter(symbols=frozenset({"BTC"}))
    fan.add(a, btc)
    fan.add(b, btc)
    fan.add(c, Filter())
    assert fan.push("market_data", "BTC", b"1") is True
    assert fan.push("market_data", "ETH", b"2") is False
    assert fan.push("portfolio", None, b"3") is False
    assert fan.flush() == 2 * 2 + 3
    assert a.writes == [b"13"] and a.writes[0] is b.writes[0]
    assert c.writes == [b"123"]
    assert fan.flush() == 0 and fan.batch == []


def test_fanout_skips_slow_and_removed_clients():
    """A client marked slow gets nothing more; a removed one leaves its group."""
    fan = Fanout()
    a, b = FakeSink(), FakeSink()
    fan.add(a, Filter())
    fan.add(b, Filter())
    b.slow = True
    fan.push("market_data", "BTC", b"1")
    fan.flush()
    assert a.writes == [b"1"] and b.writes == []
    assert fan.remove(a, Filter()) and fan.remove(b, Filter())
    assert not fan.remove(a, Filter()) and fan.groups == {} and fan.clients == 0


def test_fanout_group_with_nothing_matching_is_not_written():
    """A filter that takes none of the turn's frames costs no write."""
    fan = Fanout()
    a = FakeSink()
    fan.add(a, Filter(types=frozenset({"trade"})))
    fan.push("market_data", "BTC", b"1")
    assert fan.flush() == 0 and a.writes == []


# --- the real server ----------------------------------------------------------------


async def _started(**overrides: Any) -> ReferenceServer:
    server = ReferenceServer(Config(host="127.0.0.1", port=0, auth_token=TOKEN, **overrides))
    await server.start()
    return server


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.status, resp.read()


def test_end_to_end_with_the_rigs_own_load_publisher_and_lean_clients():
    """The rig's load publisher gets welcome and every ack; lean clients get every seq in order, as sent."""

    async def go() -> None:
        server = await _started()
        base = f"ws://127.0.0.1:{server.port}"
        try:
            assert await asyncio.to_thread(_get, f"http://127.0.0.1:{server.port}/health") == (200, b'{"status":"ok"}')
            assert (await asyncio.to_thread(_get, f"http://127.0.0.1:{server.port}/ready"))[0] == 200
            got: dict[str, list[bytes]] = {"load": [], "all": []}
            load = await open_stream(base + "/ws/stream", lambda raw, _ns: got["load"].append(raw))
            load.send_json(messages.subscribe(types=["market_data"], symbols=["LOADUSD"], snapshot=False))
            every = await open_stream(base + "/ws/stream", lambda raw, _ns: got["all"].append(raw))
            every.send_json(messages.subscribe())
            other = await open_stream(base + "/ws/stream", lambda raw, _ns: None)
            other.send_json(messages.subscribe(types=["trade"]))
            while server.fanout.clients < 3:
                await asyncio.sleep(0.01)
            spec = PublisherSpec(base, TOKEN, RUN, phases=((400.0, 0.5),), hard_timeout_s=5, ack_timeout_s=5)
            result = await publish(spec)
            assert (result["sent"], result["acked_seq"], result["errors"]) == (200, 200, 0)
            while len(got["load"]) < 200 or len(got["all"]) < 201:
                await asyncio.sleep(0.01)
            snapshot = json.loads(got["all"][0])
            assert snapshot["type"] == "snapshot" and snapshot["resumed"] is True
            assert got["all"][1:] == got["load"]  # one encoding, byte for byte the same frames
            seqs = [json.loads(raw)["seq"] for raw in got["load"]]
            assert seqs == list(range(1, 201))
            # The publisher's compact layout arrives unchanged (the subscribers' fast path reads it).
            assert read_fields(got["load"][0], prefix(RUN, "market_data"), None) is not None  # fixed offsets only
            assert server.counters()["delivered"] == 400
            # A reconnecting publisher is told how far the run got.
            async with connect(base + "/ws") as ws:
                await ws.send(json.dumps(messages.hello(RUN, TOKEN)))
                assert json.loads(await ws.recv()) == {"type": "welcome", "run_id": RUN, "acked_seq": 200}
            for stream in (load, every, other):
                await stream.close()
        finally:
            await server.stop()

    asyncio.run(asyncio.wait_for(go(), 20))


def test_wrong_token_closes_1008_and_unknown_path_is_404():
    """A hello with the wrong token is closed with 1008; other paths get HTTP 404."""

    async def go() -> None:
        server = await _started()
        try:
            async with connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
                await ws.send(json.dumps(messages.hello(RUN, "wrong")))
                with pytest.raises(ConnectionClosed):
                    await ws.recv()
                assert ws.close_code == 1008
            with pytest.raises(urllib.error.HTTPError) as exc:
                await asyncio.to_thread(_get, f"http://127.0.0.1:{server.port}/api/state")
            assert exc.value.code == 404
        finally:
            await server.stop()

    asyncio.run(asyncio.wait_for(go(), 10))


def test_silent_client_gets_the_default_subscription_with_a_snapshot():
    """A client that sends nothing gets a snapshot after the wait, then everything."""

    async def go() -> None:
        server = await _started(subscribe_wait_s=0.05)
        base = f"ws://127.0.0.1:{server.port}"
        try:
            async with connect(base + "/ws/stream") as client:
                snap = json.loads(await asyncio.wait_for(client.recv(), 2))
                validate_control(snap)
                async with connect(base + "/ws") as pub:
                    await pub.send(json.dumps(messages.hello(RUN, TOKEN)))
                    await pub.recv()
                    await pub.send(env(1, "heartbeat", None))
                    assert json.loads(await pub.recv()) == {"type": "ack", "run_id": RUN, "seq": 1}
                assert json.loads(await asyncio.wait_for(client.recv(), 2))["seq"] == 1
        finally:
            await server.stop()

    asyncio.run(asyncio.wait_for(go(), 10))


def test_a_client_that_stops_reading_is_closed_with_1013():
    """Over the unsent-bytes bound a client is closed 1013 while another keeps receiving."""

    async def go() -> None:
        server = await _started(client_buffer_bytes=64 * 1024)
        base = f"ws://127.0.0.1:{server.port}"
        try:
            counts = {"fast": 0}
            # websockets stops reading the socket once max_queue frames wait unread: a stuck client.
            stuck = await connect(base + "/ws/stream", max_queue=4, max_size=2**20)
            await stuck.send(json.dumps(messages.subscribe(snapshot=False)))
            fast = await open_stream(
                base + "/ws/stream", lambda raw, _ns: counts.__setitem__("fast", counts["fast"] + 1)
            )
            fast.send_json(messages.subscribe(snapshot=False))
            while server.fanout.clients < 2:
                await asyncio.sleep(0.01)
            pad = "p" * 16_000
            async with connect(base + "/ws", max_size=2**20) as pub:
                await pub.send(json.dumps(messages.hello(RUN, TOKEN)))
                await pub.recv()
                seq = 0
                while server.slow_client_disconnects == 0 and seq < 5_000:
                    seq += 1
                    await pub.send(json.dumps(messages.envelope(RUN, seq, "alert", {"level": "info", "message": pad})))
                    if seq % 50 == 0:
                        await asyncio.sleep(0.01)
            assert server.slow_client_disconnects == 1 and server.fanout.clients == 1
            with pytest.raises(ConnectionClosed) as closed:
                while True:  # what was queued before the close frame, then the close
                    await stuck.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
            while counts["fast"] < seq:
                await asyncio.sleep(0.01)
            await fast.close()
        finally:
            await server.stop()

    asyncio.run(asyncio.wait_for(go(), 20))
