"""``python -m reference_server``: read config, serve on uvloop until SIGTERM."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import signal
import sys

import uvloop

from .core import Config
from .server import ReferenceServer

__all__ = ["main"]


async def _serve(config: Config) -> None:
    server = ReferenceServer(config)
    await server.start()
    # Modules and startup objects live as long as the process: keep them out of every
    # full collection, which would stop the loop for nothing.
    gc.freeze()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    logging.getLogger("reference_server").info("signal received: shutting down (%s)", server.counters())
    await server.stop()


def main() -> int:
    try:
        config = Config.from_env(os.environ)
    except ValueError as exc:
        print(f"reference-server: bad configuration: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        stream=sys.stdout,
        level=getattr(logging, config.log_level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # picows logs every accepted connection at INFO: 2,000 lines per 1,000-client scenario.
    logging.getLogger("picows").setLevel(logging.WARNING)
    print(f"reference-server config: {json.dumps(config.describe())}", flush=True)
    uvloop.run(_serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
