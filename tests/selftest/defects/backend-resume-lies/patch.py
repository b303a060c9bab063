"""Defect backend-resume-lies: a resume is answered complete when the ring merely reaches back.

``Hub.replay`` must say ``resumed: true`` only when every seq after the client's resume
point is held (PROTOCOL.md, resume). Here it says true whenever the ring still has an
entry of the run at or before the resume point + 1, holes or not: after a restart the
ring is refilled with the stored critical envelopes only, so the ephemeral ones in
between are gone and the client is told it missed nothing.
"""

from _edit import replace_once

replace_once(
    "backend-resume-lies",
    "/app/dashboard_backend/fanout.py",
    [
        (
            "        return entries, _covers(held, after_seq + 1, last)\n",
            "        oldest = min((row[1] for row in self.ring if row[0] == run_id), default=None)  # DEFECT\n"
            "        return entries, oldest is not None and oldest <= after_seq + 1\n",
        )
    ],
    "Hub.replay: resumed=true when the ring reaches back",
)
