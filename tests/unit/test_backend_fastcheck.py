"""fastcheck: a True is always jsonschema's verdict too; the contract's envelopes get a True."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import wscontract
from dashboard_backend.fastcheck import EnvelopeCheck, compile_schema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

GAP = {
    "from_seq": 3,
    "to_seq": 5,
    "count": 2,
    "ranges": [[3, 3], [5, 5]],
    "counts_by_type": {"market_data": 2},
    "reason": "queue_overflow",
}
SAMPLES: dict[str, dict[str, Any]] = {
    "market_data": {"symbol": "BTC", "price": 100.5, "bid": 100.4, "ask": 100.6, "volume": 3, "tick": 9},
    "signal": {"symbol": "ETH", "action": "buy", "strength": 0.7},
    "order": {"order_id": "o1", "symbol": "BTC", "side": "buy", "quantity": 1, "status": "new"},
    "trade": {"trade_id": "t1", "order_id": "o1", "symbol": "BTC", "side": "sell", "quantity": 1, "price": 100.5},
    "position": {"symbol": "BTC", "quantity": 1, "avg_price": 100.5},
    "portfolio": {"cash": 900, "equity": 1000, "realized_pnl": -5, "unrealized_pnl": 0},
    "alert": {"level": "info", "message": "hello"},
    "heartbeat": {"uptime_s": 1.5},
    "bot_status": {"state": "trading", "connected": True},
    "gap": GAP,
}


def _envelope(msg_type: str, seq: int = 7) -> dict[str, Any]:
    return {
        "v": 1,
        "type": msg_type,
        "source": "ai-trading-bot",
        "run_id": "run-12345678",
        "seq": seq,
        "ts_ns": 1_700_000_000_000_000_000,
        "data": copy.deepcopy(SAMPLES[msg_type]),
    }


@pytest.fixture(scope="module")
def fast() -> EnvelopeCheck:
    return EnvelopeCheck.from_dir(wscontract.schema_dir(), wscontract.SCHEMA_BASE, wscontract.DATA_TYPES)


def _full(obj: Any) -> bool:
    try:
        wscontract.validate_envelope(obj)
        return True
    except wscontract.Invalid:
        return False


def test_every_contract_type_takes_the_fast_path(fast: EnvelopeCheck) -> None:
    assert set(fast.by_type) == set(wscontract.DATA_TYPES) == set(SAMPLES)
    for msg_type in SAMPLES:
        env = _envelope(msg_type)
        assert _full(env), msg_type
        assert fast(env), msg_type


MUTATIONS = [
    lambda e: e.update(seq=0),
    lambda e: e.update(seq="1"),
    lambda e: e.update(seq=True),
    lambda e: e.update(seq=7.0),  # valid (an integer), but left to jsonschema
    lambda e: e.update(seq=2**53),
    lambda e: e.update(v=2),
    lambda e: e.update(v=True),
    lambda e: e.update(v=1.0),
    lambda e: e.update(type="nope"),
    lambda e: e.update(type=["market_data"]),
    lambda e: e.update(run_id="short"),
    lambda e: e.update(run_id="r" * 65),
    lambda e: e.update(source=""),
    lambda e: e.update(ts_ns=-1),
    lambda e: e.pop("ts_ns"),
    lambda e: e.pop("data"),
    lambda e: e.update(data=5),
    lambda e: e.update(data={}),
    lambda e: e.update(data=[]),
    lambda e: e.update(extra_top_level=True),
    lambda e: e["data"].update(symbol=""),
    lambda e: e["data"].update(symbol="S" * 33),
    lambda e: e["data"].update(price=0),
    lambda e: e["data"].update(price=float("nan")),
    lambda e: e["data"].update(price=float("inf")),
    lambda e: e["data"].update(price=True),
    lambda e: e["data"].update(quantity=-1, cash="x", level="nope", uptime_s=-5, state=3, connected=1),
    lambda e: e["data"].update(side="hold", action="hodl", status=None),
    lambda e: e["data"].update(extra_field=1),
    lambda e: e["data"].update(ranges=[[1, 2, 3]], counts_by_type={"x": -1}),
    lambda e: e["data"].update(ranges=[], counts_by_type={"x": 1.5}),
    lambda e: e["data"].update(ranges=[[0, 2]], reason="r" * 65),
    lambda e: e["data"].update(ranges=[["1", 2]]),
    lambda e: e["data"].update(ranges=[[1]]),
]


@pytest.mark.parametrize("msg_type", sorted(SAMPLES))
@pytest.mark.parametrize("mutate", range(len(MUTATIONS)))
def test_a_fast_yes_is_jsonschemas_yes(fast: EnvelopeCheck, msg_type: str, mutate: int) -> None:
    env = _envelope(msg_type)
    MUTATIONS[mutate](env)
    if fast(env):
        assert _full(env)


def test_required_data_fields_are_required(fast: EnvelopeCheck) -> None:
    for msg_type, data in SAMPLES.items():
        for key in data:
            env = _envelope(msg_type)
            del env["data"][key]
            assert fast(env) is False or _full(env), (msg_type, key)


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.sampled_from([0, 1, -1, 2**53 - 1, 2**53, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1.0, 7.0, 0.5]),
    st.text(max_size=70),
    st.sampled_from(["", "buy", "sell", "info", "trading", "market_data", "queue_overflow", "x" * 64]),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=6,
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    msg_type=st.sampled_from(sorted(SAMPLES)),
    where=st.sampled_from(["top", "data"]),
    key=st.one_of(
        st.sampled_from(["v", "type", "source", "run_id", "seq", "ts_ns", "data"]),
        st.sampled_from(sorted({k for d in SAMPLES.values() for k in d})),
        st.text(max_size=6),
    ),
    value=_values,
    delete=st.booleans(),
)
def test_generated_envelopes_never_get_a_wrong_yes(
    fast: EnvelopeCheck, msg_type: str, where: str, key: str, value: Any, delete: bool
) -> None:
    env = _envelope(msg_type)
    target = env if where == "top" else env["data"]
    if delete:
        target.pop(key, None)
    else:
        target[key] = value
    if fast(env):
        assert _full(env), json.dumps(env, default=str)[:500]


# --- the compiler on its own ----------------------------------------------------------


def _jsonschema(schema: dict[str, Any], instance: Any) -> bool:
    return Draft202012Validator(schema).is_valid(instance)


def test_unknown_keywords_compile_to_nothing() -> None:
    for keyword in ({"oneOf": [{"type": "null"}]}, {"pattern": "^a"}, {"format": "date"}, {"not": {}}):
        assert compile_schema({"type": "string", **keyword}, {}) is None
    assert compile_schema({"$ref": "missing.json"}, {}, "https://x/") is None
    never = compile_schema(False, {})
    assert never is not None and not never(None) and not never({})


def test_the_compiler_is_stricter_never_looser() -> None:
    integer = compile_schema({"type": "integer", "minimum": 1}, {})
    assert integer is not None
    assert integer(1) and not integer(0) and not integer(True) and not integer(1.0)  # 1.0: left to jsonschema
    number = compile_schema({"type": "number", "exclusiveMinimum": 0}, {})
    assert number is not None
    assert number(0.5) and not number(0) and not number(float("nan")) and not number(False)
    const = compile_schema({"const": 1}, {})
    assert const is not None and const(1) and not const(True) and not const(1.0)
    enum = compile_schema({"enum": ["a", 1, None]}, {})
    assert enum is not None and enum("a") and enum(1) and enum(None) and not enum(True) and not enum("b")
    # Keywords that do not apply to a type let it through, as the standard says.
    loose = compile_schema({"minLength": 2, "minimum": 3, "required": ["a"], "minItems": 1}, {})
    assert loose is not None and loose(True) and loose(None) and loose(5) and loose("ab") and loose([0])
    assert not loose("a") and not loose(2) and not loose({}) and not loose([])


SYNTHETIC = [
    {"type": "object", "properties": {"a": {"type": "integer", "maximum": 10}}, "required": ["a"]},
    {"type": "object", "additionalProperties": {"type": "number", "minimum": 0}},
    {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False},
    {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "items": {"type": "null"}},
    {"type": "array", "items": {"enum": ["x", 2, True]}, "minItems": 1, "maxItems": 2},
    {"type": ["string", "null"], "maxLength": 3},
    {"enum": [1, "1", None, False]},
    {"const": "k"},
    {"type": "number", "exclusiveMaximum": 5, "minimum": -5},
]


@settings(max_examples=800, deadline=None)
@given(index=st.integers(min_value=0, max_value=len(SYNTHETIC) - 1), instance=_values)
def test_compiled_yes_is_jsonschemas_yes_on_synthetic_schemas(index: int, instance: Any) -> None:
    schema = SYNTHETIC[index]
    check = compile_schema(schema, {})
    assert check is not None
    if check(instance):
        assert _jsonschema(schema, instance), (schema, instance)
