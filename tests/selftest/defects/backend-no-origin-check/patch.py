"""Defect backend-no-origin-check: the Origin allow-list is never enforced.

``Connections.admit`` refuses a WebSocket handshake whose Origin is not in
``SYSTEM__ALLOWED_ORIGINS`` with HTTP 403 (docs/SECURITY.md). The defect drops that
test, so any web page may open ``/ws/stream`` (cross-site WebSocket hijacking).
Everything else is untouched.
"""

from pathlib import Path

from _edit import replace_once

TARGET = Path("/app/dashboard_backend/connection.py")
OLD = "if origins and origin not in origins and not (origin is None and self.config.allow_missing_origin):"
NEW = "if False:  # DEFECT: origin allow-list not enforced"

replace_once("backend-no-origin-check", str(TARGET), [(OLD, NEW)], "Connections.admit")
