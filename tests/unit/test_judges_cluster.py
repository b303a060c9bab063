"""The cluster stage's connections_10k judge: a clean run passes; a count not held by a healthy
rig fails, by a lagging rig is invalid; loss fails whatever the rig did; memory per connection
per replica is judged; the history round-trips through ``wsrig judge``."""

from __future__ import annotations

from typing import Any

from _load_runs import RIG, THRESHOLDS, lagging, part, run

from wsrig.judges import judge_probe
from wsrig.scenario_history import ProbeHistory, history_path, load_history
from wsrig.scenario_judge import judge_history

LIMITS = THRESHOLDS["cluster"]
HOLD = ((5.0, 4.0),)
N = int(LIMITS["connections_target"])
REPLICAS = ("dashboard-backend-1", "dashboard-backend-2", "dashboard-backend-3")


def _measured(*parts: dict[str, Any], **over: Any) -> dict[str, Any]:
    parts = parts or tuple(part(i, N // 4) for i in range(4))
    per = N // 3
    m = {
        "runs": {"connections_10k": run(*parts, phases=HOLD)},
        "memory_idle_mb": dict.fromkeys(REPLICAS, 30.0),
        "memory_connected_mb": dict.fromkeys(REPLICAS, 30.0 + per * 20 / 1024),  # 20 KiB per client
        "sessions": dict.fromkeys(REPLICAS, per),
        "resources": [[1.0, "haproxy", 50.0, 40.0], [1.0, "redis", 5.0, 10.0]],
        "balancer": "haproxy",
        "redis": "redis",
        "open_files_limit": {"rig": [20000, 20000], "containers": [20000, 20000]},
    }
    m.update(over)
    return m


def _row(measured: dict[str, Any]) -> dict[str, Any]:
    return judge_probe(ProbeHistory("connections_10k", "cluster", measured), LIMITS, RIG)


def _errors(row: dict[str, Any]) -> list[str]:
    return [f["message"] for f in row["findings"] if f["severity"] == "error"]


def test_a_clean_run_passes_with_its_figures():
    row = _row(_measured())
    assert row["passed"] and row.get("status", "passed") == "passed", row["findings"]
    assert row["memory_per_connection_kb"]["dashboard-backend-1"] == 20.0
    assert row["haproxy_cpu_percent"] == {"mean": 50.0, "max": 50.0}


def test_fewer_clients_held_by_a_healthy_rig_fails():
    row = _row(_measured(*(part(i, N // 4 - 10) for i in range(4))))
    assert any(m.startswith(f"clients connected = {N - 40} breaks the threshold >= {N}") for m in _errors(row))


def test_fewer_clients_held_by_a_lagging_rig_is_invalid_not_passed():
    row = _row(_measured(part(0, N // 4), part(1, N // 4), part(2, N // 4), lagging(3, N // 4 - 500)))
    assert row["status"] == "invalid" and row["invalid_reasons"] and not _errors(row)


def test_a_client_that_missed_messages_fails_whatever_the_rig_did():
    row = _row(_measured(part(0, N // 4, received=10), part(1, N // 4), part(2, N // 4), lagging(3, N // 4)))
    assert _errors(row) and row.get("status") != "invalid"


def test_memory_per_connection_is_judged_per_replica():
    worst = dict.fromkeys(REPLICAS, 30.0)
    worst["dashboard-backend-2"] = 30.0 + (N // 3) * 80 / 1024  # 80 KiB per client
    row = _row(_measured(memory_connected_mb=worst))
    assert any("replica memory per 1000 connections" in m for m in _errors(row))


def test_the_history_is_judged_again_from_its_file(tmp_path):
    h = ProbeHistory("connections_10k", "cluster", _measured(*(part(i, N // 4 - 10) for i in range(4))))
    path = h.save(history_path(tmp_path, "cluster", h.name))
    thresholds = {"cluster": LIMITS, "rig_health": THRESHOLDS["rig_health"]}
    again = judge_history(load_history(path), thresholds, "cluster")
    assert again["findings"] == _row(h.measured)["findings"] and not again["passed"]
