"""A contract violation travels as itself through any Python machinery, never as another error."""

import contextlib

import pytest
from wscontract import Invalid, validate_envelope

from wsrig import messages


@contextlib.contextmanager
def _passing_through():
    yield  # contextlib sets the exception's __traceback__ on the way out


def test_invalid_passes_through_contextlib_as_itself():
    # As a frozen dataclass it came out as FrozenInstanceError, and the probe reading the
    # stream died with that instead of reporting the bad frame.
    with pytest.raises(Invalid) as caught, _passing_through():
        raise Invalid("schema", "data.quantity: 'x' is not of type 'number'")
    assert caught.value.code == "schema" and "quantity" in str(caught.value)


def test_a_trade_with_a_string_quantity_is_reported_with_its_field():
    run_id = messages.new_run_id()
    validate_envelope(messages.envelope(run_id, 7, "trade"))  # the control
    env = messages.envelope(run_id, 7, "trade", dict(messages.SAMPLE_DATA["trade"], quantity="0.1"))
    with pytest.raises(Invalid) as caught, _passing_through():
        validate_envelope(env)
    assert "quantity" in str(caught.value)
