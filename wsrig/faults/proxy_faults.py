"""Faults done through the userspace fault proxy between bot and backend (no netem here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any

import requests

from wsrig.faults.base import FaultContext, register
from wsrig.wait import wait_until

__all__ = ["ProxyFault", "ResetCycles"]


@dataclass
class ProxyFault:
    """POST a fault config to the proxy's control API; heal clears every fault."""

    ctx: FaultContext
    settings: dict[str, Any] = field(default_factory=dict)
    reset: bool = False
    name: str = "proxy"
    description: str = "fault proxy: latency/jitter, bandwidth, blackhole or reset"

    @property
    def url(self) -> str:
        return self.ctx.config.proxy_control_url

    def inject(self) -> None:
        if self.settings:
            resp = requests.post(self.url + "/faults", json=self.settings, timeout=5)
            if not resp.ok:
                raise RuntimeError(f"fault proxy refused {self.settings}: HTTP {resp.status_code} {resp.text[:200]}")
        if self.reset:
            requests.post(self.url + "/reset", json={}, timeout=5).raise_for_status()

    def heal(self) -> None:
        requests.delete(self.url + "/faults", timeout=5).raise_for_status()


def _preset(name: str, settings: dict[str, Any], reset: bool = False, description: str = "") -> None:
    def factory(ctx: FaultContext, **options: Any) -> ProxyFault:
        return ProxyFault(ctx, {**settings, **options}, reset, name, description)

    register(name)(factory)


_preset("slow_link", {"latency_ms": 150, "jitter_ms": 50}, description="150 ms +- 50 ms latency both ways")
_preset("bandwidth", {"bandwidth_kbps": 64}, description="64 kbit/s both ways")
_preset("blackhole", {"blackhole": True}, description="accept but forward nothing")
_preset("reset", {}, reset=True, description="RST every connection through the proxy")


@dataclass
class ResetCycles:
    """Many short outages in a row: RST the bot's link, wait until it is back, ``cycles`` times.

    Each cycle waits for the bot's ``/stats`` to show one more reconnect, so every cycle
    is a real disconnect + reconnect (not resets piling up during one backoff).
    """

    ctx: FaultContext
    cycles: int = 20
    reconnect_timeout_s: float = 15.0
    name: str = "reset_cycles"
    description: str = "RST the bot's link and wait for its reconnect, repeatedly"
    done: int = 0

    def _reconnects(self) -> int:
        stats = requests.get(self.ctx.config.bot_url + "/stats", timeout=5).json()
        return int(stats.get("reconnects", 0)) if stats.get("connected") else -1

    def _reconnected_since(self, before: int) -> bool:
        return self._reconnects() > before

    def inject(self) -> None:
        url = self.ctx.config.proxy_control_url
        for i in range(self.cycles):
            before = wait_until(lambda: self._reconnects() + 1, self.reconnect_timeout_s, 0.05, "bot connected") - 1
            requests.post(url + "/reset", json={}, timeout=5).raise_for_status()
            wait_until(partial(self._reconnected_since, before), self.reconnect_timeout_s, 0.05, f"reconnect {i + 1}")
            self.done = i + 1

    def heal(self) -> None:
        requests.delete(self.ctx.config.proxy_control_url + "/faults", timeout=5).raise_for_status()


register("reset_cycles")(ResetCycles)
