"""ai-trading-bot: a simulated trading bot that publishes every event over WebSocket.

Pure logic (market, strategy, portfolio, simulation, publisher_core) does no I/O and is
tested synchronously; publisher, http and app are thin asyncio glue around it, so the
trading loop never waits for the network.
"""

__all__ = ["SOURCE"]

#: The ``source`` of every envelope and hello this bot sends.
SOURCE = "ai-trading-bot"
