"""Defect backend-no-snapshot-on-resume: a client that resumes gets no snapshot.

The contract answers every subscribe that asks for a snapshot with one, a resume
included: its ``resumed`` flag is how a client learns whether it missed anything, and
after a backend restart it is the only way back to the current state. Here a resuming
client gets the live stream but never the snapshot, so a dashboard page that lost its
connection cannot tell it is whole again. Ingest, storage and the stream are untouched.
"""

from _edit import replace_once

replace_once(
    "backend-no-snapshot-on-resume",
    "/app/dashboard_backend/client_session.py",
    [
        (
            "head = json.dumps(rules.state.snapshot(resumed)) if self.want_snapshot else None",
            "head = json.dumps(rules.state.snapshot(resumed)) if self.want_snapshot and self.resume is None else None  # DEFECT",
        )
    ],
    "ClientSession.attach: no snapshot for a resuming client",
)
