"""The message types come from ``schemas/data/``: the lists inside other schemas follow them."""

from __future__ import annotations

import json

import wscontract
from wscontract.typesync import envelope_schema, subscribe_schema, synced


def test_the_schemas_type_lists_match_the_data_schemas():
    stale = [str(p) for p, text in synced(wscontract.schema_dir()).items() if p.read_text() != text]
    assert not stale, f"out of step with schemas/data/: {stale}; run python -m wscontract.typesync"


def test_every_data_type_has_a_delivery_class():
    assert set(wscontract.DELIVERY) == wscontract.CRITICAL_TYPES | wscontract.EPHEMERAL_TYPES
    assert not wscontract.CRITICAL_TYPES & wscontract.EPHEMERAL_TYPES
    assert {"order", "trade", "gap"} <= wscontract.CRITICAL_TYPES
    assert "market_data" in wscontract.EPHEMERAL_TYPES


def test_a_new_type_gets_its_enum_entry_and_branch():
    envelope = json.loads((wscontract.schema_dir() / "envelope.schema.json").read_text())
    out = envelope_schema(envelope, ["order", "fill"])
    assert out["properties"]["type"] == {"enum": ["fill", "order"]}
    assert [b["then"]["properties"]["data"]["$ref"] for b in out["allOf"]] == [
        "data/fill.schema.json",
        "data/order.schema.json",
    ]
    subscribe = json.loads((wscontract.schema_dir() / "control" / "subscribe.schema.json").read_text())
    assert subscribe_schema(subscribe, ["fill"])["properties"]["types"]["items"]["enum"] == ["fill"]


def test_the_reference_server_reads_the_same_types():
    from reference_server.core import ENVELOPE_TYPES

    assert ENVELOPE_TYPES == wscontract.DATA_TYPES


def test_every_example_is_valid_and_every_type_but_gap_has_one():
    from wsrig.messages import SAMPLE_DATA, envelope

    assert set(SAMPLE_DATA) == wscontract.DATA_TYPES - {"gap"}
    for msg_type, data in SAMPLE_DATA.items():
        wscontract.validate_envelope(envelope("rig-run-0001", 1, msg_type, data))
