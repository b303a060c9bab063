"""Valid contract messages made by the rig itself (test publisher, fuzz seeds).

Pure: builds envelopes and control frames that pass ``schemas/``; probes use them to
publish their own traffic with their own run_id.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from wscontract import EXAMPLE_DATA

__all__ = ["SAMPLE_DATA", "envelope", "hello", "new_run_id", "subscribe"]

#: a valid ``data`` per type, from the schemas' ``examples`` (one place for a new type's sample)
SAMPLE_DATA: dict[str, dict[str, Any]] = dict(EXAMPLE_DATA)


def new_run_id(prefix: str = "rig") -> str:
    return f"{prefix}-{uuid.uuid4()}"


def envelope(
    run_id: str,
    seq: int,
    msg_type: str,
    data: dict[str, Any] | None = None,
    source: str = "wsrig",
    ts_ns: int | None = None,
) -> dict[str, Any]:
    """An envelope stamped now, or at ``ts_ns`` (an open-loop publisher stamps its intended send time)."""
    return {
        "v": 1,
        "type": msg_type,
        "source": source,
        "run_id": run_id,
        "seq": seq,
        "ts_ns": time.time_ns() if ts_ns is None else ts_ns,
        "data": dict(SAMPLE_DATA[msg_type] if data is None else data),
    }


def hello(run_id: str, token: str, source: str = "wsrig") -> dict[str, Any]:
    return {"type": "hello", "v": 1, "source": source, "run_id": run_id, "auth": token}


def subscribe(
    types: list[str] | None = None,
    symbols: list[str] | None = None,
    resume: tuple[str, int] | None = None,
    snapshot: bool = True,
) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "subscribe", "snapshot": snapshot}
    if types is not None:
        frame["types"] = types
    if symbols is not None:
        frame["symbols"] = symbols
    if resume is not None:
        frame["resume"] = {"run_id": resume[0], "after_seq": resume[1]}
    return frame
