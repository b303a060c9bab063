"""Hostile frames for the security stage, what the contract says each must cause, and
the arithmetic that checks the backend's counters and store against it. No I/O.

Frames come from ``hypothesis`` strategies: *structured* ones are valid envelopes (or
``subscribe`` frames) with mutated fields, *raw* ones are arbitrary bytes or text. A
strategy draws a ``Spec`` (what to build); ``render`` turns it into the frame with the
seq the sender assigns, so every frame of a fuzz run gets its own seq and no valid
frame can collide with another one (the stored set is then exactly predictable).

The expected outcome of a frame is computed with the contract's own binding
(``wscontract``): the same parse and schema rules, in the backend's order (parse,
validate, then the hello's run_id). A backend that disagrees is a finding.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from wscontract import CRITICAL_TYPES, Invalid, parse_frame, validate_control, validate_envelope

from wsrig import messages

__all__ = [
    "ACCEPTED",
    "Frame",
    "FuzzTally",
    "Spec",
    "check_counters",
    "check_dead_letters",
    "check_stored",
    "check_unchanged",
    "counter_deltas",
    "expect_publisher",
    "expect_subscribe",
    "generate_specs",
    "publisher_specs",
    "render",
    "stream_specs",
]

#: The outcome of a publisher frame the backend must accept (no error frame).
ACCEPTED = "accepted"
#: Types a fuzzed envelope starts from. ``gap`` is left out: a valid gap declares other
#: seqs accounted, which would make the stored set depend on the backend's gap rules.
BASE_TYPES = tuple(sorted(messages.SAMPLE_DATA))
#: Seq values that the contract rejects (never another valid seq: see ``render``).
BAD_SEQS: tuple[Any, ...] = (0, -1, -(2**63), 2**53, 2**64, 10**30, 1.5, 1e300, "7", True, None, [1])
#: Nesting depths that are either well inside or far beyond any JSON parser's
#: recursion limit (the band around ~1000 differs between interpreters and stacks).
SHALLOW_DEPTHS = st.integers(1, 200)
DEEP_DEPTHS = st.integers(5_000, 20_000)
_DEEP = "\x00deep\x00"


# --- specs and frames ---------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """What to send, without the seq. ``kind``: envelope, subscribe, raw_bytes, raw_text."""

    kind: str
    base_type: str = ""
    mutations: tuple[tuple[Any, ...], ...] = ()
    raw: str | bytes = b""
    binary: bool = False


@dataclass(frozen=True)
class Frame:
    """One frame as sent: payload, frame opcode, and the seq it was rendered with."""

    payload: str | bytes
    binary: bool
    seq: int | None = None

    @property
    def size(self) -> int:
        return len(self.payload if isinstance(self.payload, bytes) else self.payload.encode("utf-8", "surrogatepass"))


def _set(obj: dict[str, Any], where: str, key: str, value: Any) -> None:
    target = obj["data"] if where == "data" and isinstance(obj.get("data"), dict) else obj
    target[key] = value


def _drop(obj: dict[str, Any], where: str, key: str) -> None:
    target = obj["data"] if where == "data" and isinstance(obj.get("data"), dict) else obj
    target.pop(key, None)


def render(spec: Spec, run_id: str, seq: int) -> Frame:
    """Build the frame of ``spec`` for the publisher ``run_id`` with its unique ``seq``.

    Mutations never turn ``seq`` into another valid seq: the frame either carries its
    own ``seq`` or one the contract rejects.
    """
    if spec.kind in ("raw_bytes", "raw_text"):
        return Frame(spec.raw, spec.binary, None)
    if spec.kind == "subscribe":
        obj: Any = {"type": "subscribe"}
    else:
        obj = messages.envelope(run_id, seq, spec.base_type, source="wsrig-fuzz")
        obj["ts_ns"] = 1_700_000_000_000_000_000 + seq
        if spec.base_type == "trade":
            obj["data"]["trade_id"] = f"fuzz-{seq}"
    cut: int | None = None
    depth: int | None = None
    for m in spec.mutations:
        op = m[0]
        if op in ("set", "drop", "seq", "deep") and not isinstance(obj, dict):
            continue  # wrapped earlier: nothing left to mutate
        if op == "set":
            _set(obj, m[1], m[2], m[3])
        elif op == "drop":
            _drop(obj, m[1], m[2])
        elif op == "seq":
            obj["seq"] = m[1]
        elif op == "deep":
            _set(obj, m[1], m[2], _DEEP)
            depth = m[3]
        elif op == "wrap":
            obj = [obj] if m[1] == "list" else m[1]
        elif op == "truncate":
            cut = m[1]
    text = json.dumps(obj)
    if depth is not None:
        text = text.replace(json.dumps(_DEEP), "[" * depth + "]" * depth)
    if cut is not None:
        text = text[: max(0, len(text) - cut)]
    seq_out = obj.get("seq") if isinstance(obj, dict) else None
    own = seq if type(seq_out) is int and seq_out == seq else None
    return Frame(text.encode() if spec.binary else text, spec.binary, own)


# --- strategies -------------------------------------------------------------------------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
_hostile_values = st.one_of(
    _scalars,
    st.integers(1_000, 20_000).map(lambda n: "x" * n),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=80),
    st.lists(_scalars, max_size=5),
    st.dictionaries(st.text(max_size=10), _scalars, max_size=5),
)
_keys = st.one_of(
    st.sampled_from(["v", "type", "source", "run_id", "ts_ns", "data", "seq"]),
    st.sampled_from(["symbol", "price", "side", "quantity", "trade_id", "order_id", "level", "state", "cash"]),
    st.text(min_size=1, max_size=12),
)
_type_values = st.one_of(
    st.sampled_from([*BASE_TYPES, "gap", "hello", "subscribe", "ack", "", "TRADE", "trade "]),
    st.text(max_size=12),
    _scalars,
)


#: Mutation kinds, repeated by weight: most keep the frame parseable JSON objects so the
#: schema rules are what is exercised; a few break the framing itself.
_MUTATION_WEIGHTS = (
    ("set",) * 8 + ("drop",) * 4 + ("extra",) * 4 + ("seq", "seq", "type", "run_id", "deep", "wrap", "truncate")
)


@st.composite
def _mutation(draw: st.DrawFn) -> tuple[Any, ...]:
    where = draw(st.sampled_from(["envelope", "data"]))
    op = draw(st.sampled_from(_MUTATION_WEIGHTS))
    if op == "set":
        key = draw(_keys.filter(lambda k: k != "seq" or where == "data"))
        return ("set", where, key, draw(_hostile_values))
    if op == "drop":
        return ("drop", where, draw(_keys))
    if op == "extra":
        return ("set", where, "x_" + draw(st.text(max_size=8)), draw(_hostile_values))
    if op == "seq":
        return ("seq", draw(st.sampled_from(BAD_SEQS)))
    if op == "type":
        return ("set", "envelope", "type", draw(_type_values))
    if op == "run_id":
        other = draw(st.one_of(st.text(min_size=8, max_size=64), st.text(max_size=7), st.integers(), st.none()))
        return ("set", "envelope", "run_id", other)
    if op == "deep":
        return ("deep", where, "x_deep", draw(st.one_of(SHALLOW_DEPTHS, DEEP_DEPTHS)))
    if op == "wrap":
        return ("wrap", draw(st.sampled_from(["list", 1, "text", None, [], 3.5])))
    return ("truncate", draw(st.integers(1, 40)))


_envelope_specs = st.builds(
    Spec,
    kind=st.just("envelope"),
    base_type=st.sampled_from(BASE_TYPES),
    mutations=st.lists(_mutation(), min_size=0, max_size=3).map(tuple),
    binary=st.booleans(),
)
_raw_specs = st.one_of(
    st.builds(Spec, kind=st.just("raw_bytes"), raw=st.binary(max_size=600), binary=st.just(True)),
    st.builds(Spec, kind=st.just("raw_text"), raw=st.text(max_size=300), binary=st.just(False)),
    st.builds(
        Spec,
        kind=st.just("raw_text"),
        raw=st.recursive(
            _scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4)
        ).map(json.dumps),
        binary=st.just(False),
    ),
)
_subscribe_mutation = st.one_of(
    st.tuples(
        st.just("set"),
        st.just("envelope"),
        st.sampled_from(["types", "symbols", "resume", "snapshot", "type"]),
        _hostile_values,
    ),
    st.tuples(
        st.just("set"),
        st.just("envelope"),
        st.just("types"),
        st.lists(st.sampled_from([*BASE_TYPES, "gap"]), max_size=3),
    ),
    st.tuples(st.just("set"), st.just("envelope"), st.just("snapshot"), st.booleans()),
    st.tuples(
        st.just("set"),
        st.just("envelope"),
        st.just("resume"),
        st.fixed_dictionaries({"run_id": st.text(min_size=8, max_size=64), "after_seq": st.integers(-5, 2**60)}),
    ),
    st.tuples(st.just("truncate"), st.integers(1, 10)),
    st.tuples(st.just("wrap"), st.sampled_from(["list", 1, None])),
)
_subscribe_specs = st.builds(
    Spec,
    kind=st.just("subscribe"),
    mutations=st.lists(_subscribe_mutation, max_size=3).map(tuple),
    binary=st.booleans(),
)


def publisher_specs() -> st.SearchStrategy[Spec]:
    """Frames for ``/ws`` after a valid hello: mostly mutated envelopes, some raw."""
    # (st.one_of flattens and de-duplicates, so weights are drawn explicitly)
    return st.integers(0, 5).flatmap(lambda i: _raw_specs if i == 0 else _envelope_specs)


def stream_specs() -> st.SearchStrategy[list[Spec]]:
    """One ``/ws/stream`` connection's frames: a (mutated) subscribe or raw first, then a few more."""
    first = st.integers(0, 2).flatmap(lambda i: _raw_specs if i == 0 else _subscribe_specs)
    return st.tuples(first, st.lists(st.one_of(_raw_specs, _envelope_specs), max_size=8)).map(lambda t: [t[0], *t[1]])


def generate_specs(strategy: st.SearchStrategy[Any], count: int, seed_value: int, batch: int = 25) -> list[Any]:
    """``count`` draws of ``strategy`` by hypothesis (generate phase only, reproducible by seed).

    Hypothesis is used as a generator here, not as a test runner: each example draws a
    batch, all batches are collected. Bounded: at most ``count`` examples.
    """
    out: list[Any] = []

    class _Enough(Exception):
        pass

    @seed(seed_value)
    @settings(
        max_examples=max(1, count),
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(strategy, min_size=1, max_size=batch))
    def collect(items: list[Any]) -> None:
        if len(out) >= count:
            raise _Enough  # stops hypothesis (no shrinking in the generate phase)
        out.extend(items[: count - len(out)])

    with contextlib.suppress(_Enough):
        collect()
    return out


# --- the contract's verdict -------------------------------------------------------------


def expect_publisher(frame: Frame, run_id: str) -> str:
    """What the backend must answer to ``frame`` on ``run_id``'s connection: an error code or ``ACCEPTED``."""
    try:
        obj = parse_frame(frame.payload)
        validate_envelope(obj)
    except Invalid as exc:
        return exc.code
    if obj.get("run_id") != run_id:
        return "run_mismatch"
    return ACCEPTED


def expect_subscribe(frame: Frame) -> bool:
    """Whether ``frame`` is a valid first frame on ``/ws/stream`` (else ``bad_subscribe``)."""
    try:
        obj = parse_frame(frame.payload)
        if obj.get("type") != "subscribe":
            return False
        validate_control(obj)
    except Invalid:
        return False
    return True


# --- what a fuzz run must have caused ---------------------------------------------------------


@dataclass
class FuzzTally:
    """The expected effect of the frames sent, built frame by frame as they are sent."""

    run_id: str
    rejected_by_code: Counter[str] = field(default_factory=Counter)
    #: seq -> the accepted envelope, as sent (parsed)
    accepted: dict[int, dict[str, Any]] = field(default_factory=dict)
    bad_subscribe: int = 0
    good_subscribe: int = 0
    ignored: int = 0
    frames: int = 0
    bytes: int = 0

    def publisher_frame(self, frame: Frame) -> str:
        outcome = expect_publisher(frame, self.run_id)
        self.frames += 1
        self.bytes += frame.size
        if outcome == ACCEPTED:
            obj = parse_frame(frame.payload)
            seq = int(obj["seq"])
            if seq in self.accepted or frame.seq != seq:
                raise ValueError(f"fuzz generator reused seq {seq}: the stored set would be unpredictable")
            if obj["type"] == "gap":
                raise ValueError("fuzz generator made a valid gap")
            self.accepted[seq] = obj
        else:
            self.rejected_by_code[outcome] += 1
        return outcome

    def stream_connection(self, frames: list[Frame]) -> None:
        for i, frame in enumerate(frames):
            self.frames += 1
            self.bytes += frame.size
            if i == 0:
                if expect_subscribe(frame):
                    self.good_subscribe += 1
                else:
                    self.bad_subscribe += 1
            else:
                self.ignored += 1

    @property
    def critical(self) -> dict[int, dict[str, Any]]:
        return {s: e for s, e in self.accepted.items() if e["type"] in CRITICAL_TYPES}

    @property
    def trades(self) -> dict[int, dict[str, Any]]:
        return {s: e for s, e in self.accepted.items() if e["type"] == "trade"}

    def serialize(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "bytes": self.bytes,
            "accepted": len(self.accepted),
            "accepted_critical": len(self.critical),
            "accepted_trades": len(self.trades),
            "rejected_by_code": dict(sorted(self.rejected_by_code.items())),
            "bad_subscribe": self.bad_subscribe,
            "good_subscribe": self.good_subscribe,
            "ignored_client_frames": self.ignored,
        }


def counter_deltas(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """``after - before`` of the status API's counters (numbers and the by-code/type maps)."""
    out: dict[str, Any] = {}
    for key, value in after.items():
        old = before.get(key)
        if isinstance(value, dict):
            old_map = old if isinstance(old, dict) else {}
            out[key] = {k: v - old_map.get(k, 0) for k, v in value.items() if v - old_map.get(k, 0)}
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = value - (old if isinstance(old, int | float) else 0)
    return out


def check_counters(expected: Mapping[str, Any], deltas: Mapping[str, Any], errors_seen: Mapping[str, int]) -> list[str]:
    """Problems with the counters after a fuzz run (empty: they add up).

    ``expected`` is the fuzz's tally as recorded (``FuzzTally.serialize``). Only counters
    the fuzz alone moves are compared exactly (the bot publishes only valid envelopes
    meanwhile); ``errors_seen`` are the error frames the fuzz publisher received, by code.
    """
    problems = []
    want = {k: int(v) for k, v in (expected.get("rejected_by_code") or {}).items() if v}
    bad_subscribe, ignored = int(expected["bad_subscribe"]), int(expected["ignored_client_frames"])
    got = {k: int(v) for k, v in (deltas.get("rejected_by_code") or {}).items()}
    if got != want:
        diff = {
            k: f"expected {want.get(k, 0)}, counted {got.get(k, 0)}"
            for k in sorted(set(want) | set(got))
            if want.get(k, 0) != got.get(k, 0)
        }
        problems.append(f"rejected_by_code does not add up: {diff}")
    if int(deltas.get("rejected", 0)) != sum(want.values()):
        problems.append(f"rejected rose by {deltas.get('rejected', 0)}, expected {sum(want.values())}")
    if dict(errors_seen) != want:
        problems.append(
            f"error frames received by code {dict(sorted(errors_seen.items()))} != expected {dict(sorted(want.items()))}"
        )
    if int(deltas.get("bad_subscribe", 0)) != bad_subscribe:
        problems.append(f"bad_subscribe rose by {deltas.get('bad_subscribe', 0)}, expected {bad_subscribe}")
    if int(deltas.get("client_frames_ignored", 0)) != ignored:
        problems.append(f"client_frames_ignored rose by {deltas.get('client_frames_ignored', 0)}, expected {ignored}")
    if int(deltas.get("internal_errors", 0)) != 0:
        problems.append(f"internal_errors rose by {deltas['internal_errors']}")
    for key in ("oversize_closes", "invalid_utf8_closes", "rate_limit_closes", "auth_failures"):
        if int(deltas.get(key, 0)) != 0:
            problems.append(f"{key} rose by {deltas[key]} during the fuzz (no frame should cause it)")
    return problems


def check_dead_letters(
    expected_by_code: Mapping[str, int], before: Mapping[str, Any], after: Mapping[str, Any]
) -> list[str]:
    """Every rejected publisher frame is dead-lettered: between two status snapshots the
    backend's ``dead_letters.by_code`` rose by exactly the rejections expected, so each frame
    sent is accounted for (stored or broadcast, declared dropped, or dead-lettered)."""
    if "dead_letters" not in after:
        return ["the backend's status has no dead_letters: rejected frames are not accounted for"]
    old = (before.get("dead_letters") or {}).get("by_code") or {}
    new = after["dead_letters"].get("by_code") or {}
    got = {k: int(v) - int(old.get(k, 0)) for k, v in new.items() if int(v) - int(old.get(k, 0))}
    want = {k: int(v) for k, v in expected_by_code.items() if v}
    if got == want:
        return []
    missing = sum(want.values()) - sum(got.values())
    diff = {
        k: f"rejected {want.get(k, 0)}, dead-lettered {got.get(k, 0)}"
        for k in sorted(set(want) | set(got))
        if want.get(k, 0) != got.get(k, 0)
    }
    return [f"DEAD LETTERS do not account for the rejected frames ({missing:+d} unaccounted): {diff}"]


def _by_seq(envelopes: Iterable[Mapping[str, Any]]) -> dict[int, Mapping[str, Any]]:
    out: dict[int, Mapping[str, Any]] = {}
    for env in envelopes:
        out[int(env["seq"])] = env
    return out


def check_stored(what: str, expected: Mapping[int, Mapping[str, Any]], stored: list[Mapping[str, Any]]) -> list[str]:
    """Problems when ``stored`` (one run's envelopes from the API) is not exactly ``expected``."""
    problems = []
    got = _by_seq(stored)
    if len(got) != len(stored):
        problems.append(f"{what}: {len(stored) - len(got)} duplicate seq(s) stored")
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    changed = sorted(s for s in set(expected) & set(got) if dict(got[s]) != dict(expected[s]))
    if missing:
        problems.append(f"{what}: {len(missing)} valid message(s) not stored, seqs {missing[:10]}")
    if extra:
        problems.append(f"{what}: {len(extra)} stored message(s) that were rejected or never sent, seqs {extra[:10]}")
    if changed:
        problems.append(f"{what}: {len(changed)} stored message(s) differ from what was sent, seqs {changed[:10]}")
    return problems


def check_unchanged(what: str, before: list[Mapping[str, Any]], after: list[Mapping[str, Any]]) -> list[str]:
    """Problems when anything stored ``before`` is missing or different ``after`` (appends are fine)."""
    now = _by_seq(after)
    gone = [int(e["seq"]) for e in before if int(e["seq"]) not in now]
    changed = [int(e["seq"]) for e in before if int(e["seq"]) in now and dict(now[int(e["seq"])]) != dict(e)]
    problems = []
    if gone:
        problems.append(f"{what}: {len(gone)} stored message(s) vanished, seqs {gone[:10]}")
    if changed:
        problems.append(f"{what}: {len(changed)} stored message(s) changed, seqs {changed[:10]}")
    return problems
