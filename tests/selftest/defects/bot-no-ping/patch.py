"""Defect bot-no-ping: the publisher sends no keepalive pings.

With no ping, a link cut without a RST (a partition, a dead NAT entry) looks alive to the
bot until TCP gives up, minutes later: it keeps "sending" into the void and never
reconnects by itself. Everything else is untouched.
"""

from _edit import replace_once

replace_once(
    "bot-no-ping",
    "/app/trading_bot/publisher.py",
    [
        (
            "            ping_interval=self.config.ping_interval,\n",
            "            ping_interval=None,  # DEFECT: no keepalive pings\n",
        )
    ],
    "Publisher._connect: no keepalive pings",
)
