"""reference-server: the least broadcast server of the contract, the load stage's yardstick."""

from .core import Config
from .server import ReferenceServer

__all__ = ["Config", "ReferenceServer"]
