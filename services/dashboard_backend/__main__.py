"""``python -m dashboard_backend``: read config, serve until SIGTERM, shut down cleanly."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import signal
import sys
from collections.abc import Coroutine
from typing import Any

from .config import Config
from .gcwatch import heap_census
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
    # SIGUSR1 logs what the collector tracks (frozen startup objects excluded), for
    # finding what a stage leaves behind.
    loop.add_signal_handler(signal.SIGUSR1, _log_census)
    await stop.wait()
    logging.getLogger("dashboard_backend").info("signal received: shutting down")
    await backend.stop()


def _log_census() -> None:
    log = logging.getLogger("dashboard_backend.gc")
    log.info("gc counts %s, frozen %d", gc.get_count(), gc.get_freeze_count())
    log.info(heap_census(gc.get_objects()))


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
    _run(_serve(config), config.event_loop)
    return 0


def _run(main: Coroutine[Any, Any, None], event_loop: str) -> None:
    """Run ``main`` on uvloop when asked for and installed, else on asyncio's own loop.

    uvloop's transports and loop are C: under fan-out (one frame to many sockets) the
    loop's own share of each delivery is what it cuts.
    """
    if event_loop == "uvloop":
        try:
            import uvloop
        except ImportError:
            logging.getLogger("dashboard_backend").warning("uvloop is not installed: using asyncio's loop")
        else:
            uvloop.run(main)
            return
    asyncio.run(main)


if __name__ == "__main__":
    sys.exit(main())
