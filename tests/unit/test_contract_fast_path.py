"""The envelope fast path (fields + data/T) gives the full schema's verdict on every input."""

from __future__ import annotations

import copy

import pytest
import wscontract

from wsrig import messages

MUTATIONS = [
    lambda e: e,
    lambda e: e.update(seq=0),
    lambda e: e.update(seq="1"),
    lambda e: e.update(v=2),
    lambda e: e.update(run_id="short"),
    lambda e: e.pop("ts_ns"),
    lambda e: e.update(data=5),
    lambda e: e.update(data={}),
    lambda e: e["data"].update(symbol=""),
    lambda e: e["data"].update(price=-1, quantity=-1, cash="x", level="nope", uptime_s=-5, state=3),
    lambda e: e["data"].update(extra_field=1),
    lambda e: e.update(extra_top_level=True),
]


def _full_verdict(obj):
    return wscontract._first_error("envelope.schema.json", obj) is None


def _fast_verdict(obj):
    try:
        wscontract.validate_envelope(obj)
        return True
    except wscontract.Invalid:
        return False


@pytest.mark.parametrize("msg_type", sorted(messages.SAMPLE_DATA))
@pytest.mark.parametrize("mutate", range(len(MUTATIONS)))
def test_fast_path_agrees_with_the_full_envelope_schema(msg_type, mutate):
    assert wscontract._envelope_split() is not None, "envelope.schema.json no longer has the expected shape"
    env = copy.deepcopy(messages.envelope("run-12345678", 7, msg_type))
    MUTATIONS[mutate](env)
    assert _fast_verdict(env) == _full_verdict(env)


def test_data_of_another_type_is_rejected():
    env = messages.envelope("run-12345678", 7, "trade", messages.SAMPLE_DATA["heartbeat"])
    assert _full_verdict(env) is False and _fast_verdict(env) is False
