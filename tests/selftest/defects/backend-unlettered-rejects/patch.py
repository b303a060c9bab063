"""Defect backend-unlettered-rejects: a publisher frame that breaks the schema is answered
and counted, but not kept in the dead-letter store.

The sender gets its error frame and the counters add up, so nothing looks wrong; but the
frame is gone: nobody can account for it afterwards (issue: every rejected frame is
delivered, declared dropped, or dead-lettered; nothing else).
"""

from _edit import replace_once

replace_once(
    "backend-unlettered-rejects",
    "/app/dashboard_backend/server.py",
    [
        (
            "            if self._reject(exc.code, exc.detail, raw, run_id=run_id, seq=seq, own=run_id == pub.run_id):\n",
            "            own = run_id == pub.run_id and isinstance(seq, int)  # DEFECT: counted, not dead-lettered\n"
            "            if self.ingest.reject(exc.code, run_id, seq) if own else self.ingest.reject(exc.code):\n",
        )
    ],
    "Backend._on_frame: schema violations not dead-lettered",
)
