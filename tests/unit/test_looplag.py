"""The loop-lag probe sees a blocked event loop and a free one for what they are."""

import asyncio
import time

from wsrig.looplag import watch_loop


def test_blocked_loop_shows_its_stall():
    """A 120 ms synchronous block shows as a lag max of at least 100 ms."""

    async def body():
        async with watch_loop("probe") as lag:
            await asyncio.sleep(0.05)
            time.sleep(0.12)  # the loop cannot run the probe meanwhile
            await asyncio.sleep(0.05)
        return lag.health()

    health = asyncio.run(body())
    assert health.loop_lag_max_ms is not None and health.loop_lag_max_ms >= 100
    assert health.cpu_s >= 0


def test_free_loop_has_small_lag():
    """An idle loop's P99 lag stays far under the rig's 10 ms limit."""

    async def body():
        async with watch_loop("probe") as lag:
            await asyncio.sleep(0.3)
        return lag.health()

    health = asyncio.run(body())
    assert health.loop_lag_p99_ms is not None and health.loop_lag_p99_ms < 50
