"""``python -m trading_bot``: read config, set up logging, run until SIGTERM/SIGINT.

Logging goes to stdout with one clear format; a filter masks the auth token in case
any message ever carries it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

from trading_bot.app import App
from trading_bot.config import Config

__all__ = ["TokenFilter", "main"]

log = logging.getLogger("trading_bot")


class TokenFilter(logging.Filter):
    """Replaces the token's value in any log record (defence in depth)."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self._token = token

    def filter(self, record: logging.LogRecord) -> bool:
        if len(self._token) >= 4:
            message = record.getMessage()
            if self._token in message:
                record.msg = message.replace(self._token, "***")
                record.args = None
        return True


def setup_logging(config: Config) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(TokenFilter(config.auth_token))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, config.log_level, logging.INFO))
    # websockets logs every failed handshake at length; keep ours as the record.
    logging.getLogger("websockets").setLevel(logging.WARNING)


async def amain(config: Config) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    app = App(config)
    await app.run(stop)


def main() -> int:
    try:
        config = Config.from_env()
    except ValueError as exc:
        print(f"trading_bot: bad configuration: {exc}", file=sys.stderr)
        return 2
    setup_logging(config)
    log.info("config: %s", config.masked())
    asyncio.run(amain(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
