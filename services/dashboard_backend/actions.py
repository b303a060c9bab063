"""What a session asks its connection to do: send a frame, close. No I/O.

The session rules (``publisher_session``, ``client_session``) decide and return these;
the connection layer (``connection``) performs them in order on its socket. The error
frame and the close codes websockets sends on its own (1007, 1009) are shared by both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .metrics import ServerCounters

__all__ = ["Action", "Close", "Send", "count_protocol_close", "error_frame"]


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``text`` as one text frame."""

    text: str


@dataclass(frozen=True, slots=True)
class Close:
    """Close the connection with ``code`` and ``reason`` (the last action of a list)."""

    code: int
    reason: str


Action = Send | Close


def error_frame(code: str, detail: str, seq: int | None = None) -> str:
    """An ``error`` control frame (schemas/control/error.schema.json); ``detail`` capped."""
    frame: dict[str, Any] = {"type": "error", "code": code, "detail": detail[:2048]}
    if seq is not None:
        frame["seq"] = seq
    return json.dumps(frame)


def count_protocol_close(counters: ServerCounters, code: int | None) -> str | None:
    """Count a close websockets sent itself; the dead-letter code of such a close, if any.

    1009 (a frame over ``max_size``) and 1007 (a text frame that is not UTF-8) close the
    connection before the frame reaches a session: the count and, for a publisher, a
    dead letter with the reason are all that is left of it.
    """
    if code == 1009:
        counters.oversize_closes += 1
        return "too_big"
    if code == 1007:
        counters.invalid_utf8_closes += 1
        return "invalid_utf8"
    return None
