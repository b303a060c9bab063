"""Defect backend-ack-before-commit: critical envelopes are acknowledged on receipt.

The contract (PROTOCOL.md) acks a critical envelope only once it is committed: the
publisher then forgets it. Here ``Ingest.accept`` counts a critical seq as accounted the
moment it arrives (instead of pending until the group commit), and the acker sends the
in-memory watermark instead of the persisted one. Everything is still stored a few
milliseconds later, so nothing looks wrong until the process dies inside that window:
the publisher has been told "stored" for envelopes that never reached the disk.
"""

from _edit import replace_once

replace_once(
    "backend-ack-before-commit",
    "/app/dashboard_backend/ingest.py",
    [
        (
            "        if critical:\n            run.pending.add(seq)\n        else:\n            run.mark(seq, seq)\n",
            "        run.mark(seq, seq)  # DEFECT: critical counted as accounted before its commit\n",
        )
    ],
    "Ingest.accept: critical accounted on receipt",
)
replace_once(
    "backend-ack-before-commit",
    "/app/dashboard_backend/publisher_session.py",
    [
        (
            "        wm = self.rules.ingest.durable_watermark(self.run_id)\n",
            "        wm = self.rules.ingest.watermark(self.run_id)  # DEFECT: acks what is not persisted\n",
        )
    ],
    "PublisherSession.ack (the acker's frame): the in-memory watermark",
)
