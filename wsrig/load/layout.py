"""The load publisher's frame layout, and reading a delivered frame's three numbers from it.

A subscriber needs ``seq``, ``data.intended_ns`` and ``data.sent_ns`` of every envelope of
its run, at tens of thousands of deliveries a second on the cores the backend needs:
``json.loads`` of a ~300-byte envelope costs ~6 us, the regex this replaced and the
``int()`` of its three groups ~1.5 us, these fixed offsets ~1.0 us (one process, the
host busy). The load publisher writes every frame of a run in one key order with no
spaces, its seq padded with spaces to 16 characters (``encode``)::

    {"v":1,"type":T,"source":"wsrig-load","run_id":R,"seq":N               ,"ts_ns":..,"data":{..,"intended_ns":I,"sent_ns":S}}

(whitespace between a value and the next comma is plain JSON: the envelope parses and
validates as before). So a frame starts with a prefix fixed for the run (``prefix``),
then 16 characters of seq, and ends with ``"intended_ns":I,"sent_ns":S}}`` where ``I``
and ``S`` are ``time.time_ns()`` readings of 19 digits (until the year 2286):
``read_fields`` takes the three numbers at those offsets without searching, after
checking the prefix and the ``,"sent_ns":`` key where the layout puts it. Any other
frame (another layout, a backend that re-serializes, an ``intended_ns`` of another
width) is parsed as JSON (``read_json``).
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["SEQ_WIDTH", "SOURCE", "encode", "prefix", "read_fields", "read_json"]

SOURCE = "wsrig-load"
#: Characters the seq takes, padded with spaces: the contract's largest seq (2**53 - 1) has 16 digits.
SEQ_WIDTH = 16
_SEPARATORS = (",", ":")
_SEQ_KEY = '"seq":'
#: ``,"sent_ns":`` sits 32..21 bytes before the end when ``S`` has 19 digits; ``I`` ends 32 before.
_SENT_KEY = b',"sent_ns":'


def encode(env: dict[str, Any]) -> str:
    """An envelope as the load publisher sends it: key order kept, no spaces, seq padded.

    ``data`` must end with ``intended_ns`` then ``sent_ns`` for ``read_fields`` to read
    them at fixed offsets (any other envelope still encodes, and is read as JSON).
    """
    text = json.dumps(env, separators=_SEPARATORS)
    # The first '"seq":' is the envelope's key: inside a JSON string the quotes are escaped.
    head, _, rest = text.partition(_SEQ_KEY)
    digits, comma, tail = rest.partition(",")
    return f"{head}{_SEQ_KEY}{digits:<{SEQ_WIDTH}}{comma}{tail}"


def prefix(run_id: str, msg_type: str) -> bytes:
    """How every frame of the load publisher's run starts, up to its seq's digits."""
    head = json.dumps({"v": 1, "type": msg_type, "source": SOURCE, "run_id": run_id}, separators=_SEPARATORS)
    return f"{head[:-1]},{_SEQ_KEY}".encode()


def read_fields(raw: bytes, run_prefix: bytes, run_id: str | None) -> tuple[int, int, int] | None:
    """``(seq, intended_ns, sent_ns)`` of an envelope of run ``run_id``; None for any other frame.

    Fixed offsets when ``raw`` starts with ``run_prefix`` (``prefix(run_id, type)``) and
    has ``encode``'s layout; otherwise ``read_json`` (not with ``run_id=None``: the fixed
    layout only).
    """
    if raw.startswith(run_prefix) and raw[-32:-21] == _SENT_KEY:
        start = len(run_prefix)
        try:
            return int(raw[start : start + SEQ_WIDTH]), int(raw[-51:-32]), int(raw[-21:-2])
        except ValueError:  # not digits where the layout has them: another layout, read it as JSON
            pass
    return None if run_id is None else read_json(raw, run_id)


def read_json(raw: bytes, run_id: str) -> tuple[int, int, int] | None:
    """``(seq, intended_ns, sent_ns)`` of a JSON envelope of run ``run_id`` in any layout, else None."""
    if run_id.encode() not in raw:  # cheap rejection of other runs' frames (bot traffic, other loads)
        return None
    try:
        env = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(env, dict) or env.get("run_id") != run_id:
        return None
    data = env.get("data")
    if not isinstance(data, dict):
        return None
    seq, intended_ns, sent_ns = env.get("seq"), data.get("intended_ns"), data.get("sent_ns")
    if type(seq) is not int or type(intended_ns) is not int or type(sent_ns) is not int:
        return None
    return seq, intended_ns, sent_ns
