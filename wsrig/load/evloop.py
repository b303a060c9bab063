"""The event loop of the rig's load processes: uvloop when it is installed, else asyncio's own.

uvloop (libuv, Cython) runs the same coroutines with a cheaper loop iteration and
socket path than the stdlib's selector loop; the load processes deliver tens of
thousands of messages a second on the cores the backend needs, so their loop is part of
what the rig costs per message. The stdlib loop stays as the fallback when uvloop
cannot be imported (another platform, a trimmed install).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run"]

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on a uvloop event loop when uvloop imports, else on the stdlib's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
