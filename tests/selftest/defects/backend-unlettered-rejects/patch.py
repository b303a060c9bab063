"""Defect backend-unlettered-rejects: a publisher frame that breaks the schema is answered
and counted, but not kept in the dead-letter store.

The sender gets its error frame and the counters add up, so nothing looks wrong; but the
frame is gone: nobody can account for it afterwards (issue: every rejected frame is
delivered, declared dropped, or dead-lettered; nothing else).
"""

from _edit import replace_once

replace_once(
    "backend-unlettered-rejects",
    "/app/dashboard_backend/publisher_session.py",
    [
        (
            "            if rules.reject(exc.code, exc.detail, raw, run_id=run_id, seq=seq, own=run_id == self.run_id):\n",
            "            own = run_id == self.run_id and isinstance(seq, int)  # DEFECT: counted, not dead-lettered\n"
            "            if rules.ingest.reject(exc.code, run_id, seq) if own else rules.ingest.reject(exc.code):\n",
        )
    ],
    "PublisherSession.receive: schema violations not dead-lettered",
)
