"""Defect bot-no-ping: the publisher sends no keepalive pings.

With no ping, a link cut without a RST (a partition, a dead NAT entry) looks alive to the
bot until TCP gives up, minutes later: it keeps "sending" into the void and never
reconnects by itself. Everything else is untouched.
"""

from pathlib import Path

TARGET = Path("/app/trading_bot/publisher.py")
OLD = "            ping_interval=self.config.ping_interval,\n"
NEW = "            ping_interval=None,  # DEFECT: no keepalive pings\n"

text = TARGET.read_text()
if text.count(OLD) != 1:
    raise SystemExit(f"bot-no-ping: the connect call's ping_interval not found exactly once in {TARGET}")
TARGET.write_text(text.replace(OLD, NEW))
print(f"bot-no-ping: patched Publisher._connect in {TARGET} (no keepalive pings)")
