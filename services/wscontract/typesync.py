"""Keep the two type lists inside the schemas in step with ``schemas/data/``.

The envelope schema names every data type twice (its ``type`` enum and one ``if type ==
T then data: $ref data/T`` branch each) and the subscribe frame once (its filter enum).
They are written from the data schemas, so a new message type is a new file in
``schemas/data/`` and then ``python -m wscontract.typesync``; a unit test fails while
they differ. Pure functions build the schemas; ``main`` only reads and writes files.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["envelope_schema", "main", "subscribe_schema"]


def _branch(msg_type: str) -> dict[str, Any]:
    return {
        "if": {"properties": {"type": {"const": msg_type}}, "required": ["type"]},
        "then": {"properties": {"data": {"$ref": f"data/{msg_type}.schema.json"}}},
    }


def envelope_schema(envelope: dict[str, Any], types: Iterable[str]) -> dict[str, Any]:
    """The envelope schema with its type enum and per-type branches for ``types``."""
    names = sorted(types)
    out = json.loads(json.dumps(envelope))
    out["properties"]["type"] = {"enum": names}
    out["allOf"] = [_branch(t) for t in names]
    return out


def subscribe_schema(subscribe: dict[str, Any], types: Iterable[str]) -> dict[str, Any]:
    """The subscribe schema with its ``types`` filter enum set to ``types``."""
    out = json.loads(json.dumps(subscribe))
    out["properties"]["types"]["items"]["enum"] = sorted(types)
    return out


def _text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def synced(root: Path) -> dict[Path, str]:
    """Each generated schema file -> the text it should have."""
    from wscontract import DATA_TYPES

    envelope, subscribe = root / "envelope.schema.json", root / "control" / "subscribe.schema.json"
    return {
        envelope: _text(envelope_schema(json.loads(envelope.read_text()), DATA_TYPES)),
        subscribe: _text(subscribe_schema(json.loads(subscribe.read_text()), DATA_TYPES)),
    }


def main() -> int:
    from wscontract import schema_dir

    for path, text in synced(schema_dir()).items():
        if path.read_text() != text:
            path.write_text(text)
            print(f"rewrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
