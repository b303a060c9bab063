"""Defect bot-no-resend: after a reconnect the bot resends nothing it still holds.

PublisherCore.on_welcome should return every held message with seq > the welcome's
acked_seq (outbox: critical + mirrored ephemeral queue). The defect sends that backlog
on the first connection of the process only; after any reconnect it returns an empty
list, so everything produced while the link was down, and everything sent but not yet
acked, is never sent again. Only new messages flow after a reconnect.
"""

from pathlib import Path

from _edit import replace_once

TARGET = Path("/app/trading_bot/publisher_core.py")
OLD = "        frames = self._outbox.pending_after(self.run_id, acked_seq) if self.buffering else []\n"
NEW = (
    "        # DEFECT bot-no-resend: the backlog goes out on the first connection only\n"
    "        frames = self._outbox.pending_after(self.run_id, acked_seq) if self.buffering and not self._max_sent else []\n"
)

replace_once("bot-no-resend", str(TARGET), [(OLD, NEW)], "PublisherCore.on_welcome")
