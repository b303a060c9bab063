"""The rig's own messages obey the contract it tests others against."""

import pytest
import wscontract

from wsrig import messages


@pytest.mark.parametrize("msg_type", sorted(messages.SAMPLE_DATA))
def test_sample_envelopes_validate(msg_type):
    """Every sample envelope passes the contract's schema."""
    wscontract.validate_envelope(messages.envelope(messages.new_run_id(), 1, msg_type))


def test_control_frames_validate():
    """hello and subscribe frames pass the contract's schema."""
    wscontract.validate_control(messages.hello(messages.new_run_id(), "t"))
    wscontract.validate_control(messages.subscribe(["trade"], ["RIGUSD"], ("run-xxxxxxxx", 3)))


def test_contract_rejects_wrong_type_field():
    """A trade with a string quantity is a schema violation naming the field."""
    env = messages.envelope(messages.new_run_id(), 1, "trade")
    env["data"]["quantity"] = "1"
    with pytest.raises(wscontract.Invalid) as err:
        wscontract.validate_envelope(env)
    assert err.value.code == "schema_violation" and "quantity" in err.value.detail


def test_contract_rejects_unknown_type_and_missing_field():
    """Unknown types and missing required fields are rejected; unknown fields pass."""
    env = messages.envelope(messages.new_run_id(), 1, "order")
    env["data"]["extra_field"] = 1
    wscontract.validate_envelope(env)
    del env["data"]["side"]
    with pytest.raises(wscontract.Invalid):
        wscontract.validate_envelope(env)
    with pytest.raises(wscontract.Invalid) as err:
        wscontract.validate_envelope({**env, "type": "nope"})
    assert err.value.code == "unknown_type"


def test_parse_frame_errors():
    """Invalid JSON, non-objects and non-UTF-8 get distinct codes."""
    for raw, code in ((b"{", "invalid_json"), ("[1]", "not_an_object"), (b"\xff\xfe", "invalid_json")):
        with pytest.raises(wscontract.Invalid) as err:
            wscontract.parse_frame(raw)
        assert err.value.code == code
