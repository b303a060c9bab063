"""dashboard-backend: ingest the bot's stream, store what must not be lost, fan it out."""

from .config import Config
from .server import Backend

__all__ = ["Backend", "Config"]
