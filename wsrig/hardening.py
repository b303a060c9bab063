"""Container hardening, judged from ``docker inspect`` attributes. No I/O.

The probe passes each service container's ``attrs`` (docker SDK); this module says
what is wrong: root user, writable root filesystem, added capabilities, privilege
escalation allowed, privileged mode, ports published beyond loopback, writable
mounts other than the data volume and tmpfs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["hardening_problems", "inspect_facts", "summarize"]

LOOPBACK = ("127.0.0.1", "::1")


def inspect_facts(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The ``docker inspect`` fields the rules below read, and nothing else: what a probe
    keeps in its history (the whole inspect holds the environment, with its secrets)."""
    config = attrs.get("Config") or {}
    host = attrs.get("HostConfig") or {}
    keys = ("ReadonlyRootfs", "Privileged", "CapAdd", "CapDrop", "SecurityOpt", "Tmpfs")
    return {
        "Config": {"User": config.get("User")},
        "HostConfig": {k: host.get(k) for k in keys},
        "NetworkSettings": {"Ports": (attrs.get("NetworkSettings") or {}).get("Ports")},
        "Mounts": [{k: m.get(k) for k in ("Type", "Destination", "RW")} for m in attrs.get("Mounts") or []],
    }


def _user_is_root(user: str) -> bool:
    name = user.split(":", 1)[0].strip()
    return name in ("", "0", "root")


def hardening_problems(attrs: Mapping[str, Any], writable_paths: Iterable[str] = ("/data", "/tmp")) -> list[str]:
    """Everything about one container that breaks the hardening rules (empty: hardened)."""
    problems = []
    config = attrs.get("Config") or {}
    host = attrs.get("HostConfig") or {}
    user = str(config.get("User") or "")
    if _user_is_root(user):
        problems.append(f"runs as root (User={user or 'unset'})")
    if not host.get("ReadonlyRootfs"):
        problems.append("root filesystem is writable (ReadonlyRootfs false)")
    if host.get("Privileged"):
        problems.append("privileged mode")
    added = [c for c in host.get("CapAdd") or [] if c]
    if added:
        problems.append(f"capabilities added: {sorted(added)}")
    dropped = {c.upper() for c in host.get("CapDrop") or []}
    if "ALL" not in dropped:
        problems.append(f"capabilities not all dropped (CapDrop={sorted(dropped)})")
    opts = [o.replace("=", ":") for o in host.get("SecurityOpt") or []]
    if not any(o in ("no-new-privileges", "no-new-privileges:true") for o in opts):
        problems.append(f"no-new-privileges not set (SecurityOpt={opts})")
    ports = (attrs.get("NetworkSettings") or {}).get("Ports") or {}
    for port, bindings in sorted(ports.items()):
        for b in bindings or []:
            ip = b.get("HostIp", "")
            if ip not in LOOPBACK:
                problems.append(f"port {port} published on {ip or '0.0.0.0'}:{b.get('HostPort')} (not loopback)")
    allowed = tuple(writable_paths)
    for m in attrs.get("Mounts") or []:
        dest = m.get("Destination", "")
        if m.get("RW") and dest not in allowed:
            problems.append(f"writable mount {dest} ({m.get('Type')}) besides {', '.join(allowed)}")
    tmpfs = host.get("Tmpfs") or {}
    for dest in tmpfs:
        if dest not in allowed:
            problems.append(f"tmpfs {dest} besides {', '.join(allowed)}")
    return problems


def summarize(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The observed hardening settings, for the report."""
    host = attrs.get("HostConfig") or {}
    ports = (attrs.get("NetworkSettings") or {}).get("Ports") or {}
    return {
        "user": (attrs.get("Config") or {}).get("User") or "",
        "read_only_rootfs": bool(host.get("ReadonlyRootfs")),
        "privileged": bool(host.get("Privileged")),
        "cap_add": host.get("CapAdd") or [],
        "cap_drop": host.get("CapDrop") or [],
        "security_opt": host.get("SecurityOpt") or [],
        "published": sorted(
            f"{b.get('HostIp') or '0.0.0.0'}:{b.get('HostPort')}->{p}" for p, bs in ports.items() for b in bs or []
        ),
        "writable_mounts": sorted(m.get("Destination", "") for m in attrs.get("Mounts") or [] if m.get("RW")),
    }
