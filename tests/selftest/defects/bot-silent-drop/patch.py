"""Defect bot-silent-drop: the bot drops from its full ephemeral queue without a gap.

PublisherCore._produce drops the oldest ephemeral message when the bounded queue is
full and records it in ``_pending_drops``, from which the next ``gap`` envelope
declares it. The defect still drops (and counts it in dropped_by_type) but never
records it for a gap, so the loss is never declared to the backend.
"""

from pathlib import Path

from _edit import replace_once

TARGET = Path("/app/trading_bot/publisher_core.py")
OLD = "                self._pending_drops.append((old_seq, old_type))\n"
NEW = "                pass  # DEFECT bot-silent-drop: the drop is never declared in a gap\n"

replace_once("bot-silent-drop", str(TARGET), [(OLD, NEW)], "PublisherCore._produce")
