"""One frozen config object read from ``SYSTEM__*`` environment variables.

Everything tunable lives here so the rig can drive the bot through ``.env.test`` and
the bot can print exactly what it runs with (token masked) at start.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass

__all__ = ["Config", "mask"]

_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f", ""}


def mask(token: str) -> str:
    """A token as it may appear in logs: never its value."""
    return "***" if token else "(empty)"


def _bool(value: str, name: str) -> bool:
    low = value.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"{name}: expected a boolean, got {value!r}")


@dataclass(frozen=True, repr=False)
class Config:
    """The bot's settings; ``from_env`` is the only way the process builds one."""

    enable_publishing: bool = True
    dashboard_url: str = "ws://dashboard-backend:8000/ws"
    auth_token: str = "dev-token"
    max_retries: int = 10
    retry_delay: float = 0.5
    max_retry_delay: float = 30.0
    queue_size: int = 1000
    ping_interval: float = 2.0
    ping_timeout: float = 4.0
    tick_interval: float = 0.1
    symbols: tuple[str, ...] = ("BTCUSD", "ETHUSD", "SOLUSD")
    seed: int = 42
    starting_cash: float = 100_000.0
    #: Trade for this many seconds, then end the session (final portfolio, stay up, idle);
    #: 0 trades until stopped.
    trading_session_s: float = 0.0
    data_dir: str = "/data"
    http_port: int = 8081
    log_level: str = "INFO"

    # --- construction ---------------------------------------------------------

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        """Read ``SYSTEM__*`` variables; unset ones keep their defaults."""
        env = os.environ if env is None else env
        d = cls()

        def get(name: str) -> str | None:
            return env.get(f"SYSTEM__{name}")

        def num(name: str, default: float, kind: type) -> float:
            raw = get(name)
            if raw is None or raw.strip() == "":
                return default
            try:
                return kind(raw.strip())
            except ValueError:
                raise ValueError(f"SYSTEM__{name}: expected {kind.__name__}, got {raw!r}") from None

        raw_enable = get("ENABLE_WEBSOCKET_PUBLISHING")
        raw_symbols = get("SYMBOLS")
        symbols = d.symbols
        if raw_symbols is not None and raw_symbols.strip():
            symbols = tuple(s.strip() for s in raw_symbols.split(",") if s.strip())
        config = cls(
            enable_publishing=(
                d.enable_publishing if raw_enable is None else _bool(raw_enable, "SYSTEM__ENABLE_WEBSOCKET_PUBLISHING")
            ),
            dashboard_url=get("WEBSOCKET_DASHBOARD_URL") or d.dashboard_url,
            auth_token=(d.auth_token if get("WEBSOCKET_AUTH_TOKEN") is None else str(get("WEBSOCKET_AUTH_TOKEN"))),
            max_retries=int(num("WEBSOCKET_MAX_RETRIES", d.max_retries, int)),
            retry_delay=float(num("WEBSOCKET_RETRY_DELAY", d.retry_delay, float)),
            max_retry_delay=float(num("WEBSOCKET_MAX_RETRY_DELAY", d.max_retry_delay, float)),
            queue_size=int(num("WEBSOCKET_QUEUE_SIZE", d.queue_size, int)),
            ping_interval=float(num("WEBSOCKET_PING_INTERVAL", d.ping_interval, float)),
            ping_timeout=float(num("WEBSOCKET_PING_TIMEOUT", d.ping_timeout, float)),
            tick_interval=float(num("TICK_INTERVAL", d.tick_interval, float)),
            symbols=symbols,
            seed=int(num("SEED", d.seed, int)),
            starting_cash=float(num("STARTING_CASH", d.starting_cash, float)),
            trading_session_s=float(num("TRADING_SESSION_S", d.trading_session_s, float)),
            data_dir=get("DATA_DIR") or d.data_dir,
            http_port=int(num("HTTP_PORT", d.http_port, int)),
            log_level=(get("LOG_LEVEL") or d.log_level).strip().upper(),
        )
        config.check()
        return config

    def check(self) -> None:
        """Reject settings the bot cannot run with, naming the variable."""
        problems = []
        if self.max_retries < 1:
            problems.append("SYSTEM__WEBSOCKET_MAX_RETRIES must be >= 1")
        if self.retry_delay <= 0:
            problems.append("SYSTEM__WEBSOCKET_RETRY_DELAY must be > 0")
        if self.max_retry_delay < self.retry_delay:
            problems.append("SYSTEM__WEBSOCKET_MAX_RETRY_DELAY must be >= SYSTEM__WEBSOCKET_RETRY_DELAY")
        if self.queue_size < 1:
            problems.append("SYSTEM__WEBSOCKET_QUEUE_SIZE must be >= 1")
        if self.ping_interval <= 0 or self.ping_timeout <= 0:
            problems.append("SYSTEM__WEBSOCKET_PING_INTERVAL/TIMEOUT must be > 0")
        if self.tick_interval <= 0:
            problems.append("SYSTEM__TICK_INTERVAL must be > 0")
        if not self.symbols:
            problems.append("SYSTEM__SYMBOLS must name at least one symbol")
        if self.starting_cash <= 0:
            problems.append("SYSTEM__STARTING_CASH must be > 0")
        if self.trading_session_s < 0:
            problems.append("SYSTEM__TRADING_SESSION_S must be >= 0 (0: trade until stopped)")
        if not 0 < self.http_port < 65536:
            problems.append("SYSTEM__HTTP_PORT must be a TCP port")
        if problems:
            raise ValueError("; ".join(problems))

    # --- presentation -----------------------------------------------------------

    def masked(self) -> dict[str, object]:
        """The settings as a dict safe to print or serve: the token is masked."""
        out = asdict(self)
        out["auth_token"] = mask(self.auth_token)
        out["symbols"] = list(self.symbols)
        return out

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.masked().items())
        return f"Config({inner})"
