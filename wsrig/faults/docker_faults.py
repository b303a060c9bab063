"""Faults done through Docker: SIGKILL + restart, pause (hang), network partition."""

from __future__ import annotations

from dataclasses import dataclass

from wsrig.faults.base import FaultContext, register

__all__ = ["Crash", "Hang", "Partition", "Offline"]


def _service(ctx: FaultContext, target: str) -> str:
    return {"bot": ctx.config.bot_service, "dashboard": ctx.config.dashboard_service}.get(target, target)


@dataclass
class Crash:
    """SIGKILL a service (no graceful shutdown); heal starts it again."""

    ctx: FaultContext
    target: str = "dashboard"
    name: str = "crash"
    description: str = "SIGKILL the container, then start it again"

    def inject(self) -> None:
        self.ctx.stack.kill(_service(self.ctx, self.target))

    def heal(self) -> None:
        service = _service(self.ctx, self.target)
        if self.ctx.stack.state(service)["status"] != "running":
            self.ctx.stack.start(service)


@dataclass
class Offline:
    """Stop a service gracefully and keep it down; heal starts it (offline-at-start)."""

    ctx: FaultContext
    target: str = "dashboard"
    name: str = "offline"
    description: str = "stop the container; start it on heal"

    def inject(self) -> None:
        self.ctx.stack.stop(_service(self.ctx, self.target))

    def heal(self) -> None:
        service = _service(self.ctx, self.target)
        if self.ctx.stack.state(service)["status"] != "running":
            self.ctx.stack.start(service)


@dataclass
class Hang:
    """``docker pause`` (SIGSTOP for the cgroup): the process hangs, sockets stay open."""

    ctx: FaultContext
    target: str = "dashboard"
    name: str = "hang"
    description: str = "docker pause the container; unpause on heal"

    def inject(self) -> None:
        self.ctx.stack.pause(_service(self.ctx, self.target))

    def heal(self) -> None:
        service = _service(self.ctx, self.target)
        if self.ctx.stack.state(service)["status"] == "paused":
            self.ctx.stack.unpause(service)


@dataclass
class Partition:
    """``docker network disconnect``: packets vanish, no RST; heal reconnects with the alias."""

    ctx: FaultContext
    target: str = "bot"
    name: str = "partition"
    description: str = "disconnect the container from its networks; reconnect on heal"

    def inject(self) -> None:
        self.ctx.stack.partition(_service(self.ctx, self.target))

    def heal(self) -> None:
        self.ctx.stack.heal(_service(self.ctx, self.target))


register("crash")(Crash)
register("offline")(Offline)
register("hang")(Hang)
register("partition")(Partition)
