"""Defect backend-slow-fanout: the backend waits 200 ms before each write to a client.

A deliberate slowdown for the load stage's self-test: nothing is lost or reordered,
the stream just arrives late, so only the latency threshold (config/thresholds.toml,
``sustained_p99_ms``) can catch it. Ingest, storage and acks are untouched.
"""

from pathlib import Path

TARGET = Path("/app/dashboard_backend/server.py")
OLD = "                idle.clear()\n"
NEW = "                idle.clear()\n                await asyncio.sleep(0.2)  # DEFECT: slow fan-out\n"

text = TARGET.read_text()
if text.count(OLD) != 1:
    raise SystemExit(f"backend-slow-fanout: the sender's idle.clear() not found exactly once in {TARGET}")
TARGET.write_text(text.replace(OLD, NEW))
print(f"backend-slow-fanout: patched Backend._sender in {TARGET} (200 ms before each write)")
