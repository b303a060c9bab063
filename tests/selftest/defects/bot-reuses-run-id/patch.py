"""Defect bot-reuses-run-id: every bot process publishes under the same run_id, from seq 1.

PROTOCOL.md: run_id is the uuid4 of this bot process. Here it is derived from a fixed
name, so a restarted bot numbers the same run again from 1; the backend has already
acknowledged those seqs and takes the new envelopes for duplicates.
"""

from _edit import replace_once

replace_once(
    "bot-reuses-run-id",
    "/app/trading_bot/app.py",
    [
        (
            "        self.run_id = run_id or str(uuid.uuid4())\n",
            '        self.run_id = run_id or str(uuid.uuid5(uuid.NAMESPACE_DNS, "wsrig-bot"))  # DEFECT: fixed run_id\n',
        )
    ],
    "App.__init__: the same run_id every start",
)
