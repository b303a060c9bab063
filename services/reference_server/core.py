"""The reference server's logic, with no I/O: config, frames, filters, seqs, fan-out.

The reference is the yardstick the load stage divides by, so everything here is the
least the contract needs: a hello is checked for its token and run_id, an envelope is
decoded only for run_id, seq, type and ``data.symbol``, and the original payload is
framed once and handed, as one shared ``bytes``, to every client whose filter takes it.
``Fanout`` batches the frames of one event-loop turn and joins each filter group's share
once, so a client gets one write per turn whatever the rate.
"""

from __future__ import annotations

import hmac
import json
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import orjson

__all__ = [
    "CLOSE_POLICY",
    "ENVELOPE_TYPES",
    "Config",
    "Fanout",
    "Filter",
    "Hello",
    "Keys",
    "Rejected",
    "Runs",
    "Sink",
    "Subscribe",
    "ack_frame",
    "check_hello",
    "envelope_keys",
    "error_frame",
    "parse_subscribe",
    "snapshot_frame",
    "text_frame",
    "welcome_frame",
]

#: Close code of a wrong token or a first frame that is not a hello (docs/PROTOCOL.md).
CLOSE_POLICY = 1008


def _envelope_types() -> frozenset[str]:
    """The contract's data types, read once from the envelope schema's ``type`` enum
    (``$WS_SCHEMA_DIR``, else the repository's ``schemas/``): no copy of the list to keep."""
    base = os.environ.get("WS_SCHEMA_DIR") or str(Path(__file__).resolve().parents[2] / "schemas")
    schema = json.loads((Path(base) / "envelope.schema.json").read_text())
    return frozenset(schema["properties"]["type"]["enum"])


ENVELOPE_TYPES = _envelope_types()
_RUN_ID_LEN = range(8, 65)

# --- config -------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """Settings from ``SYSTEM__*`` (the same names the backend reads where they overlap)."""

    host: str = "0.0.0.0"
    port: int = 8010
    auth_token: str = "dev-token"
    max_frame_bytes: int = 1 << 20
    #: Unsent bytes a client may have queued before it is closed with 1013.
    client_buffer_bytes: int = 8 << 20
    #: A client that sends no subscribe within this gets the default one (everything).
    subscribe_wait_s: float = 1.0
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        """Read ``env``; ValueError names the setting that does not parse."""

        def num(name: str, default: float, kind: type = int) -> Any:
            raw = env.get(name)
            if raw is None or raw == "":
                return default
            try:
                value = kind(raw)
            except ValueError:
                raise ValueError(f"{name}={raw!r} is not a {kind.__name__}") from None
            if value < 0:
                raise ValueError(f"{name}={raw!r} must not be negative")
            return value

        d = cls()
        return cls(
            host=env.get("SYSTEM__HOST") or d.host,
            port=num("SYSTEM__PORT", d.port),
            auth_token=env.get("SYSTEM__WEBSOCKET_AUTH_TOKEN") or d.auth_token,
            max_frame_bytes=num("SYSTEM__MAX_FRAME_BYTES", d.max_frame_bytes),
            client_buffer_bytes=num("SYSTEM__CLIENT_BUFFER_BYTES", d.client_buffer_bytes),
            subscribe_wait_s=num("SYSTEM__SUBSCRIBE_WAIT_S", d.subscribe_wait_s, float),
            log_level=(env.get("SYSTEM__LOG_LEVEL") or d.log_level).upper(),
        )

    def describe(self) -> dict[str, Any]:
        """Printable (token masked)."""
        out = dict(self.__dict__)
        out["auth_token"] = "***" if self.auth_token else "(none)"
        return out


# --- frames -------------------------------------------------------------------------

_SHORT = struct.Struct("!BB").pack
_MEDIUM = struct.Struct("!BBH").pack
_LONG = struct.Struct("!BBQ").pack


def text_frame(payload: bytes) -> bytes:
    """``payload`` as one unmasked server-to-client text frame, header included.

    Server frames are not masked, so the wire bytes are the same for every client and
    are built once per message.
    """
    n = len(payload)
    if n < 126:
        return _SHORT(0x81, n) + payload
    if n < 65536:
        return _MEDIUM(0x81, 126, n) + payload
    return _LONG(0x81, 127, n) + payload


def welcome_frame(run_id: str, acked_seq: int) -> bytes:
    return orjson.dumps({"type": "welcome", "run_id": run_id, "acked_seq": acked_seq})


def ack_frame(run_id: str, seq: int) -> bytes:
    return orjson.dumps({"type": "ack", "run_id": run_id, "seq": seq})


def error_frame(code: str, detail: str, seq: int | None = None) -> bytes:
    frame: dict[str, Any] = {"type": "error", "code": code, "detail": detail[:2048]}
    if seq is not None:
        frame["seq"] = seq
    return orjson.dumps(frame)


def snapshot_frame(runs: Mapping[str, int], resumed: bool) -> bytes:
    """The empty-state snapshot: the reference keeps no positions, portfolio or trades."""
    return orjson.dumps(
        {
            "type": "snapshot",
            "positions": {},
            "portfolio": None,
            "recent_trades": [],
            "runs": dict(runs),
            "resumed": resumed,
        }
    )


class Rejected(Exception):
    """A frame the contract rejects; ``frame`` is the ``error`` to send back."""

    def __init__(self, code: str, detail: str, seq: int | None = None) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.frame = error_frame(code, detail, seq)


def _object(raw: bytes) -> dict[str, Any]:
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Rejected("invalid_json", "frame is not valid JSON") from None
    if not isinstance(obj, dict):
        raise Rejected("not_an_object", "frame is not a JSON object")
    return obj


# --- publishers (/ws) ---------------------------------------------------------------


class Hello(NamedTuple):
    """What to do with a publisher's first frame: ``run_id`` when accepted, else close.

    ``error`` is an ``error`` frame to send before closing with ``close`` (None for a
    wrong token: the backend closes those without a word, and so does the reference).
    """

    run_id: str | None
    close: int = 0
    error: bytes | None = None


def check_hello(raw: bytes, token: str) -> Hello:
    """Check the first frame on ``/ws``: a hello, the right token, a usable run_id."""
    try:
        obj = _object(raw)
    except Rejected as exc:
        return Hello(None, CLOSE_POLICY, error_frame("expected_hello", f"first frame must be a hello: {exc.code}"))
    if obj.get("type") != "hello":
        return Hello(None, CLOSE_POLICY, error_frame("expected_hello", "first frame must be a hello"))
    auth = obj.get("auth")
    if not isinstance(auth, str) or not hmac.compare_digest(auth.encode("utf-8", "replace"), token.encode()):
        return Hello(None, CLOSE_POLICY)
    run_id = obj.get("run_id")
    if not isinstance(run_id, str) or len(run_id) not in _RUN_ID_LEN:
        return Hello(None, CLOSE_POLICY, error_frame("schema_violation", "hello run_id must be a string of 8..64"))
    return Hello(run_id)


class Keys(NamedTuple):
    """The only fields of an envelope the reference reads."""

    type: str
    seq: int
    symbol: str | None


def envelope_keys(raw: bytes, run_id: str) -> Keys:
    """Type, seq and ``data.symbol`` of one envelope of ``run_id``; Rejected if unusable.

    Only what routing and acks need is checked; the reference does not validate the
    rest of the schema (the system under test does; the yardstick stays cheap).
    """
    obj = _object(raw)
    seq = obj.get("seq")
    if type(seq) is not int or seq < 1:
        raise Rejected("schema_violation", "seq must be an integer >= 1")
    if obj.get("run_id") != run_id:
        raise Rejected("run_mismatch", "envelope run_id is not this hello's", seq)
    msg_type = obj.get("type")
    if not isinstance(msg_type, str) or msg_type not in ENVELOPE_TYPES:
        raise Rejected("unknown_type", f"unknown envelope type {str(msg_type)[:64]!r}", seq)
    data = obj.get("data")
    symbol = data.get("symbol") if isinstance(data, dict) else None
    return Keys(msg_type, seq, symbol if isinstance(symbol, str) else None)


class Runs:
    """Per run_id, the highest seq seen: the welcome's ``acked_seq`` and every ack."""

    def __init__(self) -> None:
        self.last: dict[str, int] = {}

    def acked(self, run_id: str) -> int:
        return self.last.get(run_id, 0)

    def advance(self, run_id: str, seq: int) -> bool:
        """Record ``seq``; True when it is new (above the highest), so it is broadcast.

        A seq at or below the highest (a publisher resending after a reconnect) is not
        broadcast again: every client gets each seq of a run at most once, in order.
        """
        if seq > self.last.get(run_id, 0):
            self.last[run_id] = seq
            return True
        return False


# --- clients (/ws/stream) -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Filter:
    """A client's subscription; None means everything. No symbol passes a symbol filter.

    The rule of docs/PROTOCOL.md (``dashboard_backend.fanout.Subscription``): an
    envelope without ``data.symbol`` (portfolio, heartbeat) reaches a client that
    filters on symbols.
    """

    types: frozenset[str] | None = None
    symbols: frozenset[str] | None = None

    def matches(self, msg_type: str, symbol: str | None) -> bool:
        if self.types is not None and msg_type not in self.types:
            return False
        return self.symbols is None or symbol is None or symbol in self.symbols

    @property
    def everything(self) -> bool:
        return self.types is None and self.symbols is None


class Subscribe(NamedTuple):
    """A parsed subscribe: the filter, whether a snapshot is wanted, ``resumed``.

    Resume is not supported: a client that asks for it is answered ``resumed: false``
    (honest: nothing was replayed) and gets live envelopes only.
    """

    filter: Filter
    snapshot: bool = True
    resumed: bool = True


def _strings(obj: dict[str, Any], key: str, allowed: frozenset[str] | None) -> frozenset[str] | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Rejected("bad_subscribe", f"{key} must be a list of strings (default subscription kept)")
    if allowed is not None and not allowed.issuperset(value):
        raise Rejected("bad_subscribe", f"unknown type in {key} (default subscription kept)")
    return frozenset(value)


def parse_subscribe(raw: bytes) -> Subscribe:
    """A client's subscribe frame; Rejected(bad_subscribe) keeps the default."""
    try:
        obj = _object(raw)
    except Rejected as exc:
        raise Rejected("bad_subscribe", f"{exc.code} (default subscription kept)") from None
    if obj.get("type") != "subscribe":
        raise Rejected("bad_subscribe", "expected a subscribe frame (default subscription kept)")
    snapshot = obj.get("snapshot", True)
    if not isinstance(snapshot, bool):
        raise Rejected("bad_subscribe", "snapshot must be a boolean (default subscription kept)")
    filt = Filter(_strings(obj, "types", ENVELOPE_TYPES), _strings(obj, "symbols", None))
    return Subscribe(filt, snapshot, resumed=obj.get("resume") is None)


class Sink(Protocol):
    """A client as the fan-out sees it: a write and a flag for being closed as slow."""

    slow: bool

    def write(self, data: bytes) -> None: ...


class Fanout:
    """Clients grouped by filter; one turn's frames batched and joined once per group.

    ``push`` adds a framed envelope to the turn's batch (True when the batch was empty:
    the caller schedules one ``flush``). ``flush`` gives every group the frames its
    filter takes, as one ``bytes`` shared by all its clients: one write per client per
    turn, no per-client copy. A client marked ``slow`` is skipped until it is removed.
    """

    def __init__(self) -> None:
        self.groups: dict[Filter, list[Sink]] = {}
        self.batch: list[tuple[str, str | None, bytes]] = []
        self.delivered = 0

    def add(self, sink: Sink, filt: Filter) -> None:
        self.groups.setdefault(filt, []).append(sink)

    def remove(self, sink: Sink, filt: Filter) -> bool:
        """Detach ``sink``; False when it was not attached."""
        members = self.groups.get(filt)
        if members is None or sink not in members:
            return False
        members.remove(sink)
        if not members:
            del self.groups[filt]
        return True

    @property
    def clients(self) -> int:
        return sum(len(m) for m in self.groups.values())

    def push(self, msg_type: str, symbol: str | None, wire: bytes) -> bool:
        self.batch.append((msg_type, symbol, wire))
        return len(self.batch) == 1

    @staticmethod
    def select(batch: list[tuple[str, str | None, bytes]], filt: Filter) -> tuple[bytes, int]:
        """The frames of ``batch`` that ``filt`` takes, joined, and how many."""
        parts = [w for _, _, w in batch] if filt.everything else [w for t, s, w in batch if filt.matches(t, s)]
        if len(parts) == 1:
            return parts[0], 1
        return b"".join(parts), len(parts)

    def flush(self) -> int:
        """Write the batch to every group; returns the deliveries (frames x clients)."""
        batch, self.batch = self.batch, []
        if not batch:
            return 0
        delivered = 0
        # Copies: a write may end in a callback that changes the groups.
        for filt, members in list(self.groups.items()):
            data, count = self.select(batch, filt)
            if not count:
                continue
            for sink in tuple(members):
                if not sink.slow:
                    sink.write(data)
                    delivered += count
        self.delivered += delivered
        return delivered
