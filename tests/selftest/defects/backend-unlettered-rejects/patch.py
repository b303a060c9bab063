"""Defect backend-unlettered-rejects: a publisher frame that breaks the schema is answered
and counted, but not kept in the dead-letter store.

The sender gets its error frame and the counters add up, so nothing looks wrong; but the
frame is gone: nobody can account for it afterwards (issue: every rejected frame is
delivered, declared dropped, or dead-lettered; nothing else).
"""

from pathlib import Path

TARGET = Path("/app/dashboard_backend/server.py")
OLD = "            self.dead_letters.add(exc.code, exc.detail, raw, run_id=run_id, seq=seq)\n"
NEW = "            pass  # DEFECT: schema violations are not dead-lettered\n"

text = TARGET.read_text()
if text.count(OLD) != 1:
    raise SystemExit(f"backend-unlettered-rejects: the schema-violation dead letter not found exactly once in {TARGET}")
TARGET.write_text(text.replace(OLD, NEW))
print(f"backend-unlettered-rejects: patched Backend._on_frame in {TARGET}")
