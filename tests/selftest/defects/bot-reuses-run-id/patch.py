"""Defect bot-reuses-run-id: every bot process publishes under the same run_id, from seq 1.

PROTOCOL.md: run_id is the uuid4 of this bot process. Here it is derived from a fixed
name, so a restarted bot numbers the same run again from 1; the backend has already
acknowledged those seqs and takes the new envelopes for duplicates.
"""

from pathlib import Path

TARGET = Path("/app/trading_bot/app.py")
OLD = "        self.run_id = run_id or str(uuid.uuid4())\n"
NEW = '        self.run_id = run_id or str(uuid.uuid5(uuid.NAMESPACE_DNS, "wsrig-bot"))  # DEFECT: same run_id every start\n'

text = TARGET.read_text()
if text.count(OLD) != 1:
    raise SystemExit(f"bot-reuses-run-id: the run_id assignment not found exactly once in {TARGET}")
TARGET.write_text(text.replace(OLD, NEW))
print(f"bot-reuses-run-id: patched App.__init__ in {TARGET} (fixed run_id)")
