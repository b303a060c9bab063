"""Defect backend-no-size-limit: no maximum frame size.

The backend passes ``max_size=SYSTEM__MAX_FRAME_BYTES`` to websockets, which closes a
connection sending a bigger frame with 1009 (docs/SECURITY.md). The defect passes
``None``: any frame is read into memory whole, so one client can exhaust it.
"""

from pathlib import Path

from _edit import replace_once

TARGET = Path("/app/dashboard_backend/server.py")
OLD = "max_size=self.config.max_frame_bytes,"
NEW = "max_size=None,  # DEFECT: no frame size limit"

replace_once("backend-no-size-limit", str(TARGET), [(OLD, NEW)], "Backend.start")
