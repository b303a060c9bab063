"""Small helpers every probe uses: run an asyncio body, print progress, read endpoints."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

from wsrig.clients import get_json
from wsrig.config import RigConfig

__all__ = ["backend_state", "backend_status", "bot_stats", "progress", "run"]

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one probe's asyncio body (probes are plain sync tests around it)."""
    return asyncio.run(coro)


def progress(message: str) -> None:
    """A progress line for long stages; the stage runner echoes lines with this tag."""
    print(f"[progress] {time.strftime('%H:%M:%S')} {message}", flush=True)


def bot_stats(cfg: RigConfig) -> dict[str, Any]:
    return dict(get_json(cfg.bot_url + "/stats"))


def backend_status(cfg: RigConfig) -> dict[str, Any]:
    return dict(get_json(cfg.dashboard_url + "/api/websocket/status"))


def backend_state(cfg: RigConfig) -> dict[str, Any]:
    return dict(get_json(cfg.dashboard_url + "/api/state"))
