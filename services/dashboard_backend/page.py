"""The live dashboard page the backend serves: ``/`` and ``/static/<name>``. No I/O after start.

The files of ``static/`` (plain HTML, JS and CSS: no build step, nothing fetched from
another host) are read once, at start-up, into memory. A request names a file only by a
plain name that is one of them: anything else (``..``, percent-escapes, subfolders,
unknown suffixes) is simply not a key, so nothing outside the directory can be reached.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CONTENT_SECURITY_POLICY", "STATIC_DIR", "Asset", "Page"]

log = logging.getLogger("dashboard_backend")

STATIC_DIR = Path(__file__).with_name("static")
#: The page and its files come from this backend only; its WebSocket is on the same host.
CONTENT_SECURITY_POLICY = "default-src 'self'; connect-src 'self' ws: wss:"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "application/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
}
#: A servable name: letters, digits, dot, dash, underscore; no leading dot.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
INDEX = "index.html"
PREFIX = "/static/"


@dataclass(frozen=True, slots=True)
class Asset:
    data: bytes
    content_type: str


class Page:
    """The static files, by name, as read at construction."""

    def __init__(self, directory: Path = STATIC_DIR) -> None:
        self.files: dict[str, Asset] = {}
        if directory.is_dir():
            for path in sorted(directory.iterdir()):
                content_type = CONTENT_TYPES.get(path.suffix)
                if content_type and path.is_file() and _PLAIN_NAME.fullmatch(path.name):
                    self.files[path.name] = Asset(path.read_bytes(), content_type)
        if INDEX not in self.files:
            log.warning("no %s in %s: the dashboard page is not served", INDEX, directory)

    @staticmethod
    def handles(path: str) -> bool:
        """Whether ``path`` (without its query) is the page's: ``/`` or under ``/static/``."""
        return path == "/" or path.startswith(PREFIX)

    def asset(self, path: str) -> Asset | None:
        """The file ``path`` names, or None (a 404)."""
        if path == "/":
            return self.files.get(INDEX)
        if path.startswith(PREFIX):
            return self.files.get(path[len(PREFIX) :])
        return None
