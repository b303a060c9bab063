"""A fresh stack for one trading session, and the normal stack back afterwards.

The integration stage must see a whole session from seq 1 on empty volumes, whatever
stages ran before on the same stack. So it removes the compose project with its
volumes (``DockerStack.down``), starts the backend and the fault proxy, lets a client
subscribe, and only then starts the bot, with ``SYSTEM__TRADING_SESSION_S`` set so the
bot ends its session by itself and every count can be compared exactly. Afterwards
``restore`` brings up the ordinary stack (fresh again) for the stages that follow.
Thin Docker glue; nothing here judges anything.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from wsrig.config import RigConfig
from wsrig.stack import DockerStack
from wsrig.wait import AllReady, HttpReady

__all__ = ["env_override", "restore", "start_backend_fresh", "start_bot_for_session"]

SESSION_VAR = "SYSTEM__TRADING_SESSION_S"


@contextlib.contextmanager
def env_override(name: str, value: str | None) -> Iterator[None]:
    """Set (or unset, with None) one variable for the compose calls inside the block."""
    old = os.environ.get(name)
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def start_backend_fresh(cfg: RigConfig, stack: DockerStack, timeout: float = 120) -> None:
    """Remove the project (volumes too), then start backend and proxy and wait for them."""
    stack.down()
    with env_override(SESSION_VAR, None):
        stack.up((cfg.dashboard_service, cfg.proxy_service))
    AllReady([HttpReady(cfg.dashboard_url + "/ready"), HttpReady(cfg.proxy_control_url + "/health")]).wait(
        timeout, on_timeout=stack.last_lines
    )


def start_bot_for_session(cfg: RigConfig, stack: DockerStack, session_s: float, timeout: float = 120) -> None:
    """Start the bot with a trading session of ``session_s`` seconds."""
    with env_override(SESSION_VAR, f"{session_s:g}"):
        stack.up((cfg.bot_service,))
    AllReady([HttpReady(cfg.bot_url + "/health")]).wait(timeout, on_timeout=stack.last_lines)


def restore(cfg: RigConfig, stack: DockerStack, timeout: float = 120) -> None:
    """The ordinary stack, fresh (no session limit), ready as ``wsrig up`` leaves it."""
    stack.down()
    with env_override(SESSION_VAR, None):
        stack.up()
    AllReady([HttpReady(url) for url in cfg.readiness_urls]).wait(timeout, on_timeout=stack.last_lines)
