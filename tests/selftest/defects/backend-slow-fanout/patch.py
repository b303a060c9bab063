"""Defect backend-slow-fanout: the backend waits 200 ms before each write to a client.

A deliberate slowdown for the load stage's self-test: nothing is lost or reordered,
the stream just arrives late, so only the latency threshold (config/thresholds.toml,
``sustained_p99_ms``) can catch it. Ingest, storage and acks are untouched.
"""

from pathlib import Path

from _edit import replace_once

TARGET = Path("/app/dashboard_backend/server.py")
OLD = "                idle.clear()\n"
NEW = "                idle.clear()\n                await asyncio.sleep(0.2)  # DEFECT: slow fan-out\n"

replace_once("backend-slow-fanout", str(TARGET), [(OLD, NEW)], "Backend._sender (200 ms before each write)")
