"""The topology is configuration: RIG__TOPOLOGY and .env.test pick the services the rig drives.

The default (single) must stay exactly as it was; the cluster's replicas, balancer and
Redis come from settings, and scripts/compose.sh lays docker-compose.cluster.yml and the
generated replicas over the two default files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from wsrig import haproxy
from wsrig.config import load_config, repo_root
from wsrig.haproxy import BalancerReady, csv_url, parse_servers

ROOT = repo_root()
DEFAULT_SERVICES = ("dashboard-backend", "ai-trading-bot", "fault-proxy", "reference-server")


def _cfg(**env: str):
    return load_config({"RIG__ENV_FILE": str(ROOT / ".env.test"), **env})


def test_single_topology_is_the_default_and_unchanged():
    cfg = _cfg()
    assert cfg.topology == "single"
    assert cfg.services == DEFAULT_SERVICES
    assert cfg.replica_services == () and cfg.redis_url == "" and cfg.balancer_stats_url == ""
    assert set(cfg.images) == {"bot", "dashboard", "proxy", "reference"}
    assert [u.rsplit(":", 1)[1] for u in cfg.host_urls] == ["8000", "8081", "9001", "8010"]
    assert "replica_services" not in cfg.describe()


def test_cluster_services_come_from_settings():
    cfg = _cfg(RIG__TOPOLOGY="cluster")
    assert cfg.replica_services == ("dashboard-backend-1", "dashboard-backend-2", "dashboard-backend-3")
    # No container of the single backend: its replicas, the balancer and Redis take its place.
    assert "dashboard-backend" not in cfg.services
    assert {"haproxy", "redis", "ai-trading-bot", "fault-proxy", "reference-server"} <= set(cfg.services)
    assert cfg.dashboard_url == "http://127.0.0.1:8000"  # the balancer answers where the backend did
    assert cfg.balancer_stats_url == "http://127.0.0.1:8404/stats" and cfg.balancer_backend == "replicas"
    assert cfg.redis_url == "redis://127.0.0.1:6379/0"
    assert {"redis", "haproxy"} <= set(cfg.images)
    assert cfg.describe()["topology"] == "cluster"
    assert [u.rsplit(":", 1)[1].split("/")[0] for u in cfg.host_urls][-2:] == ["8404", "6379"]


def test_cluster_replica_count_and_names_are_settings():
    assert _cfg(RIG__TOPOLOGY="cluster", CLUSTER_REPLICAS="5").replica_services[-1] == "dashboard-backend-5"
    own = _cfg(RIG__TOPOLOGY="cluster", CLUSTER_REPLICA_SERVICES="api-a, api-b", BALANCER_SERVICE="lb")
    assert own.replica_services == ("api-a", "api-b")
    assert own.services[:3] == ("api-a", "api-b", "lb")
    with pytest.raises(ValueError, match="at least one replica"):
        _cfg(RIG__TOPOLOGY="cluster", CLUSTER_REPLICAS="0")


def _compose_config(tmp_path: Path, *args: str, **env: str) -> str:
    if not (shutil.which("docker-compose") or shutil.which("docker")):
        pytest.skip("no Docker Compose on this machine")
    proc = subprocess.run(
        [str(ROOT / "scripts" / "compose.sh"), "config", *args],
        env={**os.environ, "COMPOSE_PROJECT_NAME": "wsrig-unit", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    if proc.returncode != 0 and "neither" in proc.stderr:
        pytest.skip(proc.stderr.strip())
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_compose_default_files_have_no_cluster_service(tmp_path):
    services = _compose_config(tmp_path, "--services", RIG__TOPOLOGY="single").split()
    assert sorted(services) == sorted(DEFAULT_SERVICES)


def test_compose_cluster_generates_the_replicas(tmp_path):
    services = _compose_config(tmp_path, "--services", RIG__TOPOLOGY="cluster", CLUSTER_REPLICAS="2").split()
    assert sorted(services) == sorted(
        [*DEFAULT_SERVICES, "dashboard-backend-1", "dashboard-backend-2", "haproxy", "redis"]
    )
    text = _compose_config(tmp_path, RIG__TOPOLOGY="cluster", CLUSTER_REPLICAS="2")
    assert "scale: 0" in text  # the single backend runs no container
    assert "HAPROXY_SERVERS: dashboard-backend-1,dashboard-backend-2" in text
    assert "SYSTEM__REPLICA_ID: '2'" in text and "SYSTEM__REDIS_URL: redis://redis:6379/0" in text
    # each replica its own /data volume
    assert "dashboard-data-1:/data:rw" in text and "dashboard-data-2:/data:rw" in text
    assert "PROXY_UPSTREAM: haproxy:8000" in text


def test_compose_rejects_an_unknown_topology_or_count(tmp_path):
    for env in ({"RIG__TOPOLOGY": "mesh"}, {"RIG__TOPOLOGY": "cluster", "CLUSTER_REPLICAS": "none"}):
        proc = subprocess.run(
            [str(ROOT / "scripts" / "compose.sh"), "config", "--services"],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 2, proc.stderr


# --- the balancer's stats CSV (a real one: 30 clients over 3 replicas, HAProxy 2.6) ---------

STATS = (Path(__file__).parent / "data" / "haproxy_stats.csv").read_text()


def test_parse_servers_reads_each_replica_row():
    rows = parse_servers(STATS, "replicas")
    assert list(rows) == ["dashboard-backend-1", "dashboard-backend-2", "dashboard-backend-3"]
    assert [r.current_sessions for r in rows.values()] == [10, 10, 11]
    assert rows["dashboard-backend-2"].total_sessions == 14
    assert all(r.up and r.check_status == "L7OK" for r in rows.values())
    assert parse_servers(STATS, "no-such-backend") == {}


def _with_status(replica: str, status: str) -> str:
    row = next(line for line in STATS.splitlines() if line.startswith(f"replicas,{replica},"))
    return STATS.replace(row, row.replace(",UP,", f",{status},", 1))


@pytest.mark.parametrize("status", ["DOWN", "UP 1/2", "DOWN 1/2", "MAINT (resolution)", "MAINT"])
def test_a_replica_down_or_changing_state_is_not_up(status):
    """Only a settled UP counts: "UP 1/2" is a replica whose last check failed."""
    rows = parse_servers(_with_status("dashboard-backend-2", status), "replicas")
    assert rows["dashboard-backend-2"].status == status
    assert not rows["dashboard-backend-2"].up
    assert rows["dashboard-backend-1"].up


def test_not_a_stats_csv_is_an_error():
    with pytest.raises(ValueError, match="not an HAProxy stats CSV"):
        parse_servers("<html>", "replicas")


def test_balancer_ready_wants_every_listed_replica_up(monkeypatch):
    texts = iter([STATS, _with_status("dashboard-backend-2", "DOWN"), STATS])

    class Resp:
        def __init__(self, text):
            self.text = text

        def raise_for_status(self):
            return None

    monkeypatch.setattr(haproxy.requests, "get", lambda url, timeout: Resp(next(texts)))
    ready = BalancerReady("http://127.0.0.1:8404/stats", ("dashboard-backend-1", "dashboard-backend-2"), "replicas")
    assert ready.check() is True
    assert ready.check() is False
    missing = BalancerReady("http://127.0.0.1:8404/stats", ("dashboard-backend-9",), "replicas")
    assert missing.check() is False
    assert csv_url("http://127.0.0.1:8404/stats") == "http://127.0.0.1:8404/stats;csv"
