"""Defect backend-no-size-limit: no maximum frame size.

The backend passes ``max_size=SYSTEM__MAX_FRAME_BYTES`` to websockets, which closes a
connection sending a bigger frame with 1009 (docs/SECURITY.md). The defect passes
``None``: any frame is read into memory whole, so one client can exhaust it.
"""

from pathlib import Path

TARGET = Path("/app/dashboard_backend/server.py")
OLD = "max_size=self.config.max_frame_bytes,"
NEW = "max_size=None,  # DEFECT: no frame size limit"

text = TARGET.read_text()
if text.count(OLD) != 1:
    raise SystemExit(f"backend-no-size-limit: max_size not found exactly once in {TARGET}")
TARGET.write_text(text.replace(OLD, NEW))
print(f"backend-no-size-limit: patched Backend.start in {TARGET}")
