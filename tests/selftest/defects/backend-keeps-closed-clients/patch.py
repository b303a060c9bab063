"""Defect backend-keeps-closed-clients: the backend keeps a reference to every closed client.

A leak for the load stage's self-test: every /ws/stream connection that closes stays
reachable (its ServerConnection, buffers and queues), so each round of clients adds
memory that is never reused. Nothing is lost, late or reordered; only the stability
check (``stability_repeat_growth_mb``, config/thresholds.toml) can catch it.
"""

from pathlib import Path

from _edit import replace_once

TARGET = Path("/app/dashboard_backend/connection.py")
OLD = "            self.delivery.streams.pop(client.id, None)\n"
NEW = (
    "            self.delivery.streams.pop(client.id, None)\n"
    "            self.__dict__.setdefault('_closed_clients', []).append((client, ws))  # DEFECT: leak\n"
)

replace_once("backend-keeps-closed-clients", str(TARGET), [(OLD, NEW)], "Connections._client (closed clients kept)")
