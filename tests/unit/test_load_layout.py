"""The load publisher's frame layout and the subscribers' reading of it (wsrig.load.layout)."""

from __future__ import annotations

import json
import time

import pytest
from wscontract import parse_frame, validate_envelope

from wsrig import messages
from wsrig.load import layout
from wsrig.load.publisher import PublisherSpec, _frame
from wsrig.load.recorder import StreamRecorder
from wsrig.load.subscriber import SubscriberSpec, _Conn

RUN = "load-0f5c2a3e-1111-2222-3333-444455556666"
TYPES = sorted(messages.SAMPLE_DATA)


def _spec(msg_type: str = "market_data") -> PublisherSpec:
    return PublisherSpec("ws://x", "t", RUN, ((1.0, 1.0),), msg_type=msg_type, symbol="L0F5C2A3E")


def _numbers(raw: bytes) -> tuple[int, int, int]:
    env = json.loads(raw)
    return env["seq"], env["data"]["intended_ns"], env["data"]["sent_ns"]


@pytest.mark.parametrize("msg_type", TYPES)
def test_publisher_frames_validate_and_read_at_fixed_offsets_as_json_reads_them(msg_type: str) -> None:
    """Every type's frame validates, starts with the run's prefix, and reads the same as json.loads."""
    now = time.time_ns()
    run_prefix = layout.prefix(RUN, msg_type)
    for seq in (1, 42, 123_456_789, 2**53 - 1):
        raw = _frame(_spec(msg_type), seq, now, now + 1234).encode()
        validate_envelope(parse_frame(raw))
        assert raw.startswith(run_prefix)
        assert layout.read_fields(raw, run_prefix, None) == _numbers(raw) == (seq, now, now + 1234)


def test_seq_is_padded_to_a_fixed_width_and_the_numbers_end_the_frame() -> None:
    """The seq takes SEQ_WIDTH characters (space-padded JSON) and the two times close the frame."""
    now = time.time_ns()
    raw = _frame(_spec(), 7, now, now + 5).encode()
    start = len(layout.prefix(RUN, "market_data"))
    assert raw[start : start + layout.SEQ_WIDTH + 1] == b"7" + b" " * (layout.SEQ_WIDTH - 1) + b","
    assert raw.endswith(f'"intended_ns":{now},"sent_ns":{now + 5}}}}}'.encode())


def test_frames_in_another_layout_are_read_as_json() -> None:
    """Re-serialized, reordered, or with times of another width: the JSON fallback reads them."""
    now = time.time_ns()
    run_prefix = layout.prefix(RUN, "market_data")
    env = json.loads(_frame(_spec(), 9, now, now + 7))
    respaced = json.dumps(env).encode()  # ", " and ": " separators, as a re-serializing backend might
    reordered = json.dumps(dict(sorted(env.items())), separators=(",", ":")).encode()
    short_times = _frame(_spec(), 9, 1_000, 2_000).encode()  # not 19 digits: the offsets do not hold
    unpadded = json.dumps(env, separators=(",", ":")).encode()  # same prefix, seq not padded
    assert unpadded.startswith(run_prefix)
    for raw in (respaced, reordered, unpadded):
        assert layout.read_fields(raw, run_prefix, RUN) == (9, now, now + 7), raw
        assert layout.read_fields(raw, run_prefix, None) is None  # not the fixed layout
    assert layout.read_fields(short_times, run_prefix, RUN) == (9, 1_000, 2_000)
    assert layout.read_fields(short_times, run_prefix, None) is None


def test_frames_of_other_runs_and_other_shapes_are_not_read() -> None:
    """Another run's envelope, a control frame, a bot envelope, broken JSON: None."""
    now = time.time_ns()
    run_prefix = layout.prefix(RUN, "market_data")
    other_run = PublisherSpec("ws://x", "t", "load-ffffffff-0000", ((1.0, 1.0),), symbol="LX")
    bot = json.dumps(messages.envelope(RUN, 3, "portfolio")).encode()  # this run_id, no intended/sent
    for raw in (
        _frame(other_run, 5, now, now).encode(),
        json.dumps({"type": "snapshot", "run_id": RUN, "resumed": True}).encode(),
        bot,
        b"not json " + RUN.encode(),
        b"[1, 2, 3]",
        json.dumps({"run_id": RUN, "seq": "5", "data": {"intended_ns": 1, "sent_ns": 2}}).encode(),
    ):
        assert layout.read_fields(raw, run_prefix, RUN) is None, raw
        assert layout.read_json(raw, RUN) is None, raw


def test_subscriber_conn_records_latency_and_order_from_fixed_offsets_and_fallback() -> None:
    """_Conn.on_text: compact and re-serialized frames recorded alike; other runs ignored."""
    rec = StreamRecorder()
    conn = _Conn(SubscriberSpec(0, "ws://x", 1, RUN, "L0F5C2A3E"), rec)
    t0 = time.time_ns()
    frames = [_frame(_spec(), seq, t0 + seq * 1_000_000, t0 + seq * 1_000_000 + 500_000).encode() for seq in (1, 2, 4)]
    frames[1] = json.dumps(json.loads(frames[1])).encode()  # one in another layout
    frames.insert(1, _frame(PublisherSpec("ws://x", "t", "load-other-run-0000", ((1, 1),)), 99, t0, t0).encode())
    for raw in frames:
        seq = json.loads(raw)["seq"]
        conn.on_text(raw, t0 + seq * 1_000_000 + 3_000_000)  # 3 ms after intended, 2.5 ms after sent
    order = conn.seq
    assert (order.received, order.last, order.missing, order.reordered, order.duplicated) == (3, 4, 1, 0, 0)
    assert rec.corrected.count == 3 and rec.corrected.percentile_ms(50) == pytest.approx(3.0, abs=0.01)
    assert rec.uncorrected.percentile_ms(50) == pytest.approx(2.5, abs=0.01)
