"""``python -m dashboard_backend``: read config, serve until SIGTERM, shut down cleanly."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import signal
import sys

from .config import Config
from .server import Backend

__all__ = ["main"]


async def _serve(config: Config) -> None:
    backend = Backend(config)
    await backend.start()
    # Modules, schemas and the restored ring live as long as the process: move them out
    # of the collector's sight so each full collection walks only what clients create.
    gc.freeze()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    logging.getLogger("dashboard_backend").info("signal received: shutting down")
    await backend.stop()


def main() -> int:
    try:
        config = Config.from_env()
    except ValueError as exc:
        print(f"dashboard-backend: bad configuration: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        stream=sys.stdout,
        level=getattr(logging, config.log_level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("websockets").setLevel(logging.WARNING)
    logging.getLogger("dashboard_backend.ws").setLevel(logging.WARNING)
    print(f"dashboard-backend config: {json.dumps(config.describe())}", flush=True)
    asyncio.run(_serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
