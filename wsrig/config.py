"""One config object for the rig: endpoints, images, profile and thresholds.

Read from the environment (``RIG__*`` and the plain names of ``.env.test``), with
``.env.test`` as the fallback file, so the same suite can point at another
implementation of the contract by changing configuration only.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["REPLICA_SERVICE", "RigConfig", "load_config", "load_env_file", "repo_root", "thresholds_for"]

#: The cluster topology's replica services when CLUSTER_REPLICA_SERVICES does not list
#: them: the names scripts/compose.sh gives the CLUSTER_REPLICAS replicas it generates.
REPLICA_SERVICE = "dashboard-backend-{n}"


def repo_root() -> Path:
    """The checkout this package lives in (where docker-compose.yml is)."""
    env = os.environ.get("RIG__ROOT")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    for base in (here, *here.parents):
        if (base / "docker-compose.yml").is_file() or (base / "config" / "thresholds.toml").is_file():
            return base
    return Path.cwd()


def load_env_file(path: Path) -> dict[str, str]:
    """Parse a dotenv file: ``KEY=VALUE`` lines, ``#`` comments, optional quotes."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if " #" in value and not value.startswith(("'", '"')):
            value = value.split(" #", 1)[0].rstrip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def thresholds_for(tables: dict[str, Any], profile: str) -> dict[str, Any]:
    """The thresholds of one profile: ``[quick.*]`` with ``[<profile>.*]`` laid over it."""
    quick = tables.get("quick", {})
    return _merge(quick, tables.get(profile, {})) if profile != "quick" else dict(quick)


@dataclass(frozen=True)
class RigConfig:
    """Everything a probe needs to reach the system under test and judge it."""

    root: Path
    profile: str
    dashboard_url: str
    dashboard_ws_url: str
    bot_url: str
    proxy_control_url: str
    auth_token: str
    compose_project: str
    bot_service: str
    dashboard_service: str
    proxy_service: str
    images: dict[str, str]
    thresholds: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    #: The reference broadcast server (the load stage's yardstick, DESIGN.md section 9):
    #: same contract, same port for /ws, /ws/stream and /health.
    reference_ws_url: str = "ws://127.0.0.1:8010"
    reference_service: str = "reference-server"
    #: Which compose files make the system (RIG__TOPOLOGY: ``single``, or ``cluster``:
    #: replicas behind a balancer sharing Redis, docs/CLUSTER.md). Only a cluster has the
    #: fields below; in ``single`` they are empty and nothing reads them.
    topology: str = "single"
    #: The backend replicas' compose services (each killable, pausable by its name).
    replica_services: tuple[str, ...] = ()
    #: The balancer in front of them (it answers on ``dashboard_url``) and its stats page.
    balancer_service: str = ""
    balancer_stats_url: str = ""
    #: The balancer's backend section that holds the replicas (rows of its stats CSV).
    balancer_backend: str = ""
    #: Redis, the replicas' shared log: its service and where the rig reaches it.
    redis_service: str = ""
    redis_url: str = ""

    # --- derived endpoints ----------------------------------------------------

    @property
    def ingest_url(self) -> str:
        return self.dashboard_ws_url.rstrip("/") + "/ws"

    @property
    def stream_url(self) -> str:
        return self.dashboard_ws_url.rstrip("/") + "/ws/stream"

    @property
    def services(self) -> tuple[str, ...]:
        """Every service of the stack the rig starts: the system, its fault proxy, the reference.

        A cluster has no ``dashboard_service`` container: its replicas, the balancer and
        Redis take its place.
        """
        rig = (self.bot_service, self.proxy_service, self.reference_service)
        if not self.replica_services:
            return (self.dashboard_service, *rig)
        return (*self.replica_services, self.balancer_service, self.redis_service, *rig)

    @property
    def host_urls(self) -> tuple[str, ...]:
        """Every URL whose 127.0.0.1 port the stack publishes (``wsrig check-ports``)."""
        urls = (self.dashboard_url, self.bot_url, self.proxy_control_url, self.reference_url)
        return urls + tuple(u for u in (self.balancer_stats_url, self.redis_url) if u)

    @property
    def readiness_urls(self) -> tuple[str, ...]:
        """The endpoint each service answers 200 on once it is ready (``wsrig up`` waits for all)."""
        return (
            self.dashboard_url + "/ready",
            self.bot_url + "/health",
            self.proxy_control_url + "/health",
            self.reference_url + "/health",
        )

    @property
    def reference_url(self) -> str:
        """The reference server's HTTP base (``/health``, ``/ready``): its WebSocket port."""
        url = self.reference_ws_url.rstrip("/")
        return "http" + url[2:] if url.startswith("ws") else url

    def stage_thresholds(self, stage: str) -> dict[str, Any]:
        return dict(self.thresholds.get(stage, {}))

    def setting(self, name: str, default: str = "") -> str:
        """A ``SYSTEM__*`` or other value from the environment or ``.env.test``."""
        return self.settings.get(name, default)

    def describe(self) -> dict[str, Any]:
        """Printable view (the token masked)."""
        return {
            "profile": self.profile,
            "dashboard_url": self.dashboard_url,
            "dashboard_ws_url": self.dashboard_ws_url,
            "bot_url": self.bot_url,
            "proxy_control_url": self.proxy_control_url,
            "reference_ws_url": self.reference_ws_url,
            "auth_token": "***" if self.auth_token else "(none)",
            "compose_project": self.compose_project,
            "images": self.images,
            "topology": self.topology,
            **self._describe_cluster(),
        }

    def _describe_cluster(self) -> dict[str, Any]:
        if not self.replica_services:
            return {}
        return {
            "replica_services": list(self.replica_services),
            "balancer_service": self.balancer_service,
            "balancer_stats_url": self.balancer_stats_url,
            "redis_service": self.redis_service,
            "redis_url": self.redis_url,
        }


def load_config(env: dict[str, str] | None = None) -> RigConfig:
    """Environment > ``.env.test`` (or ``RIG__ENV_FILE``) > defaults."""
    root = repo_root()
    environ = dict(os.environ if env is None else env)
    env_file = Path(environ.get("RIG__ENV_FILE", str(root / ".env.test")))
    settings = {**load_env_file(env_file), **environ}

    def get(name: str, default: str) -> str:
        return settings.get(f"RIG__{name}") or settings.get(name) or default

    profile = get("PROFILE", "quick")
    thresholds_file = Path(get("THRESHOLDS_FILE", str(root / "config" / "thresholds.toml")))
    tables: dict[str, Any] = {}
    if thresholds_file.is_file():
        tables = tomllib.loads(thresholds_file.read_text())
    thresholds = thresholds_for(tables, profile)
    # One name everywhere (scripts/compose.sh and build_images.sh read it from the shell).
    topology = settings.get("RIG__TOPOLOGY") or "single"
    images = {
        "bot": get("BOT_IMAGE", "wsrig/ai-trading-bot:dev"),
        "dashboard": get("DASHBOARD_IMAGE", "wsrig/dashboard-backend:dev"),
        "proxy": get("PROXY_IMAGE", "wsrig/fault-proxy:dev"),
        "reference": get("REFERENCE_IMAGE", "wsrig/reference-server:dev"),
    }
    cluster: dict[str, Any] = {}
    if topology == "cluster":
        listed = tuple(s.strip() for s in get("CLUSTER_REPLICA_SERVICES", "").split(",") if s.strip())
        count = int(get("CLUSTER_REPLICAS", "3"))
        if count < 1 and not listed:
            raise ValueError(f"CLUSTER_REPLICAS={count}: the cluster needs at least one replica")
        cluster = {
            "replica_services": listed or tuple(REPLICA_SERVICE.format(n=n) for n in range(1, count + 1)),
            "balancer_service": get("BALANCER_SERVICE", "haproxy"),
            "balancer_stats_url": get("HAPROXY_STATS_URL", "http://127.0.0.1:8404/stats"),
            "balancer_backend": get("HAPROXY_BACKEND", "replicas"),
            "redis_service": get("REDIS_SERVICE", "redis"),
            "redis_url": get("RIG_REDIS_URL", "redis://127.0.0.1:6379/0"),
        }
        images |= {"redis": get("REDIS_IMAGE", "wsrig/redis:dev"), "haproxy": get("HAPROXY_IMAGE", "wsrig/haproxy:dev")}

    return RigConfig(
        root=root,
        profile=profile,
        dashboard_url=get("DASHBOARD_URL", "http://127.0.0.1:8000"),
        dashboard_ws_url=get("DASHBOARD_WS_URL", "ws://127.0.0.1:8000"),
        bot_url=get("BOT_URL", "http://127.0.0.1:8081"),
        proxy_control_url=get("PROXY_CONTROL_URL", "http://127.0.0.1:9001"),
        auth_token=get("AUTH_TOKEN", settings.get("SYSTEM__WEBSOCKET_AUTH_TOKEN", "dev-token")),
        compose_project=get("COMPOSE_PROJECT_NAME", "wsrig"),
        bot_service=get("BOT_SERVICE", "ai-trading-bot"),
        dashboard_service=get("DASHBOARD_SERVICE", "dashboard-backend"),
        proxy_service=get("PROXY_SERVICE", "fault-proxy"),
        images=images,
        thresholds=thresholds,
        settings=settings,
        reference_ws_url=get("REFERENCE_WS_URL", "ws://127.0.0.1:8010"),
        reference_service=get("REFERENCE_SERVICE", "reference-server"),
        topology=topology,
        **cluster,
    )
