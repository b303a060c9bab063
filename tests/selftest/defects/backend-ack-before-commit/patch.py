"""Defect backend-ack-before-commit: critical envelopes are acknowledged on receipt.

The contract (PROTOCOL.md) acks a critical envelope only once it is committed: the
publisher then forgets it. Here ``Ingest.accept`` counts a critical seq as accounted the
moment it arrives (instead of pending until the group commit), and the acker sends the
in-memory watermark instead of the persisted one. Everything is still stored a few
milliseconds later, so nothing looks wrong until the process dies inside that window:
the publisher has been told "stored" for envelopes that never reached the disk.
"""

from pathlib import Path

EDITS = [
    (
        Path("/app/dashboard_backend/ingest.py"),
        "        if critical:\n            run.pending.add(seq)\n        else:\n            run.mark(seq, seq)\n",
        "        run.mark(seq, seq)  # DEFECT: critical counted as accounted before its commit\n",
    ),
    (
        Path("/app/dashboard_backend/server.py"),
        "            wm = self.ingest.durable_watermark(pub.run_id)\n",
        "            wm = self.ingest.watermark(pub.run_id)  # DEFECT: acks what is not persisted\n",
    ),
]

for target, old, new in EDITS:
    text = target.read_text()
    if text.count(old) != 1:
        raise SystemExit(f"backend-ack-before-commit: the line to patch is not found exactly once in {target}")
    target.write_text(text.replace(old, new))
print("backend-ack-before-commit: Ingest.accept and the acker patched (critical acked on receipt)")
