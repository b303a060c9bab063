"""The backend's one configuration object, read from ``SYSTEM__*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

__all__ = ["Config"]


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be true or false, got {raw!r}")


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


@dataclass(frozen=True)
class Config:
    """Everything the backend can be told; defaults suit a container on port 8000."""

    host: str = "0.0.0.0"
    port: int = 8000
    auth_token: str = field(default="dev-token", repr=False)
    data_dir: str = "/data"
    max_frame_bytes: int = 1_048_576
    client_queue_size: int = 10_000
    ring_buffer_size: int = 50_000
    #: rejected publisher frames kept for /api/dead_letters (the oldest go first)
    dead_letter_capacity: int = 10_000
    group_commit_ms: int = 5
    ping_interval: float = 2.0
    ping_timeout: float = 4.0
    allowed_origins: tuple[str, ...] = ()
    #: With an allow-list set, may a handshake carry no Origin at all (non-browser
    #: clients: the bot, probes)? Browsers always send one. See docs/SECURITY.md.
    allow_missing_origin: bool = True
    #: Open WebSocket connections (both endpoints) beyond which a handshake gets 503.
    max_connections: int = 1000
    #: TCP accept -> HTTP upgrade done, and upgrade -> publisher ``hello``, seconds.
    handshake_timeout: float = 10.0
    #: Publisher frames per second per connection (0: unlimited); over it: throttled.
    publisher_max_msgs_per_s: float = 1000.0
    publisher_msg_burst: int = 2000
    #: Client (``/ws/stream``) frames per second per connection; over it: close 1008.
    client_max_msgs_per_s: float = 20.0
    client_msg_burst: int = 50
    log_level: str = "INFO"
    #: Live frames reach clients in flushes; while messages keep arriving faster than
    #: one per this many milliseconds, flushes are this far apart on average and the
    #: frames meanwhile share one write per client (bursts of ``client_flush_burst``
    #: flushes go at once). 0: a flush every loop turn.
    client_flush_ms: float = 0.0
    client_flush_burst: int = 10
    #: Client writes per event-loop turn before the rest wait for the next turn, so the
    #: loop polls its sockets (handshakes, acks) between them (``turns.WriteTurns``).
    client_writes_per_turn: int = 128
    #: ``uvloop`` (default; plain asyncio when uvloop is not installed) or ``asyncio``.
    event_loop: str = "uvloop"
    #: The cluster's shared log (docs/CLUSTER.md): empty runs the single-node backend;
    #: set, accepted envelopes are appended to this Redis and every replica serves the log.
    redis_url: str = field(default="", repr=False)
    #: This replica's name in the cluster (the status API's ``replica``).
    replica_id: str = ""
    #: How long an append (or the script load) may take before the publisher is closed (1013).
    redis_timeout_s: float = 1.0
    #: How long the replica may be out of step with the log (no successful read, not
    #: caught up, an append failed) before it is unready and closes its clients (1013).
    redis_stale_s: float = 1.0
    #: Log entries per read (the replay's XRANGE chunk, the tail's XREAD COUNT).
    redis_batch: int = 1000

    # --- construction -----------------------------------------------------------

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        """Read ``SYSTEM__*`` variables; unset or empty ones keep their default."""
        env = os.environ if env is None else env
        d = cls()
        origins = tuple(o.strip() for o in env.get("SYSTEM__ALLOWED_ORIGINS", "").split(",") if o.strip())
        return cls(
            host=env.get("SYSTEM__HOST", "").strip() or d.host,
            port=_int(env, "SYSTEM__PORT", d.port),
            auth_token=env.get("SYSTEM__WEBSOCKET_AUTH_TOKEN", d.auth_token),
            data_dir=env.get("SYSTEM__DATA_DIR", "").strip() or d.data_dir,
            max_frame_bytes=_int(env, "SYSTEM__MAX_FRAME_BYTES", d.max_frame_bytes, 1024),
            client_queue_size=_int(env, "SYSTEM__CLIENT_QUEUE_SIZE", d.client_queue_size, 1),
            ring_buffer_size=_int(env, "SYSTEM__RING_BUFFER_SIZE", d.ring_buffer_size, 1),
            dead_letter_capacity=_int(env, "SYSTEM__DEAD_LETTER_CAPACITY", d.dead_letter_capacity, 0),
            group_commit_ms=_int(env, "SYSTEM__GROUP_COMMIT_MS", d.group_commit_ms),
            ping_interval=_float(env, "SYSTEM__PING_INTERVAL", d.ping_interval),
            ping_timeout=_float(env, "SYSTEM__PING_TIMEOUT", d.ping_timeout),
            allowed_origins=origins,
            allow_missing_origin=_bool(env, "SYSTEM__ALLOW_MISSING_ORIGIN", d.allow_missing_origin),
            max_connections=_int(env, "SYSTEM__MAX_CONNECTIONS", d.max_connections, 1),
            handshake_timeout=_float(env, "SYSTEM__HANDSHAKE_TIMEOUT", d.handshake_timeout) or d.handshake_timeout,
            publisher_max_msgs_per_s=_float(env, "SYSTEM__PUBLISHER_MAX_MSGS_PER_S", d.publisher_max_msgs_per_s),
            publisher_msg_burst=_int(env, "SYSTEM__PUBLISHER_MSG_BURST", d.publisher_msg_burst, 1),
            client_max_msgs_per_s=_float(env, "SYSTEM__CLIENT_MAX_MSGS_PER_S", d.client_max_msgs_per_s),
            client_msg_burst=_int(env, "SYSTEM__CLIENT_MSG_BURST", d.client_msg_burst, 1),
            log_level=(env.get("SYSTEM__LOG_LEVEL", "").strip() or d.log_level).upper(),
            client_flush_ms=_float(env, "SYSTEM__CLIENT_FLUSH_MS", d.client_flush_ms),
            client_flush_burst=_int(env, "SYSTEM__CLIENT_FLUSH_BURST", d.client_flush_burst, 1),
            client_writes_per_turn=_int(env, "SYSTEM__CLIENT_WRITES_PER_TURN", d.client_writes_per_turn, 1),
            event_loop=_choice(env, "SYSTEM__EVENT_LOOP", d.event_loop, ("uvloop", "asyncio")),
            redis_url=env.get("SYSTEM__REDIS_URL", "").strip(),
            replica_id=env.get("SYSTEM__REPLICA_ID", "").strip(),
            redis_timeout_s=_float(env, "SYSTEM__REDIS_TIMEOUT_S", d.redis_timeout_s) or d.redis_timeout_s,
            redis_stale_s=_float(env, "SYSTEM__REDIS_STALE_S", d.redis_stale_s) or d.redis_stale_s,
            redis_batch=_int(env, "SYSTEM__REDIS_BATCH", d.redis_batch, 1),
        )

    # --- presentation -----------------------------------------------------------

    def describe(self) -> dict[str, object]:
        """The configuration as a dict with the token masked: safe to print."""
        out: dict[str, object] = asdict(self)
        out["auth_token"] = "***" if self.auth_token else "(empty)"
        out["allowed_origins"] = list(self.allowed_origins) or "(any)"
        # The URL may carry a password: its scheme and host only.
        out["redis_url"] = self.redis_url.split("@")[-1] if self.redis_url else "(single node)"
        return out
