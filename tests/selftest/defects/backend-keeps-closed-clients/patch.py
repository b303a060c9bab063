"""Defect backend-keeps-closed-clients: the backend keeps a reference to every closed client.

A leak for the load stage's self-test: every /ws/stream connection that closes stays
reachable (its ServerConnection, buffers and queues), so each round of clients adds
memory that is never reused. Nothing is lost, late or reordered; only the stability
check (``stability_repeat_growth_mb``, config/thresholds.toml) can catch it.
"""

from pathlib import Path

TARGET = Path("/app/dashboard_backend/server.py")
OLD = "            self._client_ws.pop(client.id, None)\n"
NEW = (
    "            self._client_ws.pop(client.id, None)\n"
    "            self.__dict__.setdefault('_closed_clients', []).append((client, ws))  # DEFECT: leak\n"
)

text = TARGET.read_text()
if text.count(OLD) != 1:
    raise SystemExit(f"backend-keeps-closed-clients: the client clean-up not found exactly once in {TARGET}")
TARGET.write_text(text.replace(OLD, NEW))
print(f"backend-keeps-closed-clients: patched Backend._client in {TARGET} (closed clients kept)")
