"""Defect bot-resend-reversed: after a reconnect the bot resends its backlog newest first.

Publisher._sender must send the frames ``on_welcome`` returned in increasing seq order
(PROTOCOL.md: "Publisher sends, in strictly increasing seq order, every message it
still holds"). The defect sends them in reverse. The backend accounts for every seq
(acks flow, the bot settles), but broadcasts only seqs above the last one it broadcast,
so after the newest resent message every older one is "late" and never reaches a
dashboard client: ephemeral ones are lost outright.
"""

from pathlib import Path

from _edit import replace_once

TARGET = Path("/app/trading_bot/publisher.py")
OLD = "        for frame in first:\n            await ws.send(frame.text)\n"
NEW = "        for frame in reversed(first):  # DEFECT bot-resend-reversed\n            await ws.send(frame.text)\n"

replace_once("bot-resend-reversed", str(TARGET), [(OLD, NEW)], "Publisher._sender")
