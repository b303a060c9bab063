"""The security stage's pure helpers: hostile frame generation, the contract's verdict,
and the counter/store arithmetic (each check is also fed a defective history)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from wsrig import hostile, messages
from wsrig.hostile import ACCEPTED, Frame, FuzzTally, Spec

RUN = "fuzz-run-0001"


def _frame(obj: object, binary: bool = False) -> Frame:
    text = json.dumps(obj)
    return Frame(text.encode() if binary else text, binary, None)


# --- generation ----------------------------------------------------------------------------


def test_generate_specs_is_bounded_and_reproducible():
    """Exactly ``count`` specs, the same ones for the same seed."""
    a = hostile.generate_specs(hostile.publisher_specs(), 300, seed_value=7)
    b = hostile.generate_specs(hostile.publisher_specs(), 300, seed_value=7)
    assert len(a) == 300
    assert a == b


def test_generated_frames_mix_valid_and_every_rejection_kind():
    """A few hundred frames already hold accepted ones and several error codes."""
    specs = hostile.generate_specs(hostile.publisher_specs(), 600, seed_value=1)
    tally = FuzzTally(RUN)
    for seq, spec in enumerate(specs, 1):
        tally.publisher_frame(hostile.render(spec, RUN, seq))
    assert tally.accepted
    assert {"invalid_json", "schema_violation", "not_an_object"} <= set(tally.rejected_by_code)
    assert tally.frames == 600


def test_render_never_turns_seq_into_another_valid_seq():
    """A seq mutation gives a rejected seq; an accepted frame carries exactly its own seq."""
    for bad in hostile.BAD_SEQS:
        frame = hostile.render(Spec("envelope", "trade", (("seq", bad),)), RUN, 5)
        assert hostile.expect_publisher(frame, RUN) != ACCEPTED
    frame = hostile.render(Spec("envelope", "trade"), RUN, 9)
    assert hostile.expect_publisher(frame, RUN) == ACCEPTED and frame.seq == 9


def test_render_deep_nesting_and_truncation():
    """Deep nesting beyond any parser's limit and a cut frame are invalid JSON; shallow nesting is valid."""
    deep = hostile.render(Spec("envelope", "heartbeat", (("deep", "data", "x_deep", 10_000),)), RUN, 1)
    assert hostile.expect_publisher(deep, RUN) == "invalid_json"
    shallow = hostile.render(Spec("envelope", "heartbeat", (("deep", "data", "x_deep", 50),)), RUN, 2)
    assert hostile.expect_publisher(shallow, RUN) == ACCEPTED
    cut = hostile.render(Spec("envelope", "heartbeat", (("truncate", 3),)), RUN, 3)
    assert hostile.expect_publisher(cut, RUN) == "invalid_json"


def test_stream_specs_start_with_a_subscribe_candidate():
    """Each /ws/stream connection draws a first frame and at most eight more."""
    conns = hostile.generate_specs(hostile.stream_specs(), 50, seed_value=3, batch=5)
    assert len(conns) == 50
    assert all(1 <= len(c) <= 9 for c in conns)


# --- the contract's verdict ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ("{nope", "invalid_json"),
        (b"\xff\xfe{}", "invalid_json"),
        ("[1, 2]", "not_an_object"),
        ({"type": "nonsense"}, "unknown_type"),
        ({"type": ["trade"]}, "unknown_type"),
    ],
)
def test_expect_publisher_rejections(payload, code):
    """Malformed, non-object and unknown-type frames get the contract's error code."""
    frame = _frame(payload) if isinstance(payload, dict) else Frame(payload, isinstance(payload, bytes))
    assert hostile.expect_publisher(frame, RUN) == code


def test_expect_publisher_schema_and_run_rules():
    """Negative seq and a missing field violate the schema; another run_id is a mismatch."""
    env = messages.envelope(RUN, 1, "trade")
    assert hostile.expect_publisher(_frame(env), RUN) == ACCEPTED
    assert hostile.expect_publisher(_frame({**env, "seq": -4}), RUN) == "schema_violation"
    assert hostile.expect_publisher(_frame({k: v for k, v in env.items() if k != "data"}), RUN) == "schema_violation"
    assert hostile.expect_publisher(_frame({**env, "run_id": "another-run-id"}), RUN) == "run_mismatch"


def test_expect_subscribe():
    """Only a valid subscribe is a good first frame on /ws/stream."""
    assert hostile.expect_subscribe(_frame(messages.subscribe()))
    assert not hostile.expect_subscribe(_frame({"type": "subscribe", "types": ["bogus"]}))
    assert not hostile.expect_subscribe(Frame("garbage", False))


def test_tally_refuses_a_reused_seq():
    """Two accepted frames with one seq would make the stored set unpredictable: an error."""
    tally = FuzzTally(RUN)
    tally.publisher_frame(Frame(json.dumps(messages.envelope(RUN, 3, "trade")), False, 3))
    with pytest.raises(ValueError, match="reused seq"):
        tally.publisher_frame(Frame(json.dumps(messages.envelope(RUN, 3, "order")), False, 3))


# --- counters -------------------------------------------------------------------------------


def _tally() -> FuzzTally:
    tally = FuzzTally(RUN)
    tally.publisher_frame(Frame("{bad", False))
    tally.publisher_frame(Frame(json.dumps(messages.envelope(RUN, 2, "trade")), False, 2))
    tally.stream_connection([Frame("nope", False), Frame("x", False), Frame("y", False)])
    return tally


def _deltas(**over: object) -> dict:
    base = {
        "rejected": 1,
        "rejected_by_code": {"invalid_json": 1},
        "bad_subscribe": 1,
        "client_frames_ignored": 2,
        "internal_errors": 0,
    }
    base.update(over)
    return base


def test_counter_deltas():
    """Numbers and maps are subtracted; unchanged map entries disappear."""
    before = {"a": 1, "m": {"x": 1, "y": 2}, "s": "text"}
    after = {"a": 4, "m": {"x": 1, "y": 5, "z": 1}, "s": "text"}
    assert hostile.counter_deltas(before, after) == {"a": 3, "m": {"y": 3, "z": 1}}


def test_check_counters_passes_when_they_add_up():
    """Matching deltas and error frames give no problem."""
    assert hostile.check_counters(_tally().serialize(), _deltas(), Counter(invalid_json=1)) == []


@pytest.mark.parametrize(
    ("over", "errors", "needle"),
    [
        ({"rejected_by_code": {}, "rejected": 0}, {"invalid_json": 1}, "rejected_by_code"),
        ({}, {}, "error frames"),
        ({"bad_subscribe": 0}, {"invalid_json": 1}, "bad_subscribe"),
        ({"client_frames_ignored": 1}, {"invalid_json": 1}, "client_frames_ignored"),
        ({"internal_errors": 2}, {"invalid_json": 1}, "internal_errors"),
        ({"oversize_closes": 1}, {"invalid_json": 1}, "oversize_closes"),
    ],
)
def test_check_counters_reports_each_defect(over, errors, needle):
    """A counter that does not move, moves too much, or an internal error is reported."""
    problems = hostile.check_counters(_tally().serialize(), _deltas(**over), Counter(errors))
    assert any(needle in p for p in problems), problems


# --- stored data -----------------------------------------------------------------------------


def test_check_stored_exact_and_each_defect():
    """The stored set must be exactly the valid messages: missing, extra, changed, duplicated are reported."""
    a = messages.envelope(RUN, 1, "trade")
    b = messages.envelope(RUN, 2, "trade")
    expected = {1: a, 2: b}
    assert hostile.check_stored("trades", expected, [a, b]) == []
    assert "not stored" in hostile.check_stored("trades", expected, [a])[0]
    assert "rejected or never sent" in hostile.check_stored("trades", {1: a}, [a, b])[0]
    assert "differ" in hostile.check_stored("trades", expected, [a, {**b, "data": {}}])[0]
    assert "duplicate" in hostile.check_stored("trades", expected, [a, b, b])[0]


def test_check_unchanged():
    """Appends are fine; a stored message that vanished or changed is reported."""
    a = messages.envelope("bot", 1, "order")
    b = messages.envelope("bot", 2, "order")
    assert hostile.check_unchanged("bot", [a], [a, b]) == []
    assert "vanished" in hostile.check_unchanged("bot", [a, b], [b])[0]
    assert "changed" in hostile.check_unchanged("bot", [a], [{**a, "source": "x"}])[0]


def test_dead_letters_must_account_for_every_rejected_frame():
    before = {"dead_letters": {"by_code": {"invalid_json": 3}}}
    after = {"dead_letters": {"by_code": {"invalid_json": 5, "schema_violation": 1}}}
    assert hostile.check_dead_letters({"invalid_json": 2, "schema_violation": 1}, before, after) == []
    [problem] = hostile.check_dead_letters({"invalid_json": 2, "schema_violation": 2, "run_mismatch": 1}, before, after)
    assert problem.startswith("DEAD LETTERS do not account for the rejected frames (+2 unaccounted)")
    assert "run_mismatch': 'rejected 1, dead-lettered 0" in problem
    assert hostile.check_dead_letters({"invalid_json": 1}, {}, {"counters": {}}) == [
        "the backend's status has no dead_letters: rejected frames are not accounted for"
    ]
