"""The cluster stage's judges on synthetic histories: one clean per scenario, and one per defect
each promise exists to catch (wsrig.cluster_judge, wsrig.judges.cluster)."""

from __future__ import annotations

import copy
from dataclasses import asdict
from typing import Any

from wsrig.judges.cluster import memory_per_connection_kb, service_cpu
from wsrig.scenario_history import ClientLog, ScenarioHistory, history_path, load_history
from wsrig.scenario_judge import judge_history, judge_scenario

LIMITS = {
    "everysec_loss_window_s": 2,
    "recovery_bound_s": 15,
    "ack_stop_grace_s": 1.0,
    "ready_fail_bound_s": 3,
    "drain_grace_s": 1.5,
    "drain_bound_s": 5,
    "rejoin_bound_s": 10,
}
S = 1_000_000_000
INJECT, HEAL = 100 * S, 105 * S
REPLICAS = ["dashboard-backend-1", "dashboard-backend-2", "dashboard-backend-3"]
VICTIM = REPLICAS[0]


def _stats(last: int, ticks: int, trades: int, acked: int | None = None) -> dict[str, Any]:
    acked = last if acked is None else acked
    return {"run_id": "run-a", "last_seq": last, "acked_seq": acked, "trading": {"ticks": ticks, "trades": trades}}


def _frames(seqs: list[int], t0: int = 101 * S, step: int = S // 5) -> list[tuple[int, dict]]:
    return [
        (t0 + i * step, {"run_id": "run-a", "seq": s, "type": "market_data", "ts_ns": t0 + i * step - 2_000_000})
        for i, s in enumerate(seqs)
    ]


def _log(seqs: list[int], connections: int = 1, refused: list[tuple[str, int]] | None = None) -> dict[str, Any]:
    return asdict(ClientLog.of(_frames(seqs), connections, refused or [], []))


def _samples(
    *,
    acked_during: bool = False,
    victim_ready: int | None = 503,
    victim_status: str = "DOWN",
    victim_acks: bool = False,
    victim_sessions: int = 0,
    back_up: bool = True,
) -> list[list[Any]]:
    """Every 250 ms from 99 s to 116 s: the bot produces throughout; its acks stop during the
    fault (unless ``acked_during``) and catch up after the heal; the victim as given while cut."""
    out = []
    for i in range(int(17 / 0.25)):
        t = 99 * S + i * S // 4
        last = min(60, 10 + i)
        cut = INJECT + S // 2 <= t < HEAL
        acked = 10 + int((INJECT - 99 * S) / (S // 4)) if INJECT <= t < HEAL and not acked_during else last
        victim = [victim_ready if cut else 200, acked + (i if victim_acks and cut else 0), True, 4]
        status = victim_status if cut else ("UP" if (t < INJECT or back_up) else "DOWN")
        replicas = {REPLICAS[0]: victim, REPLICAS[1]: [200, acked, False, 4], REPLICAS[2]: [200, acked, False, 4]}
        balancer = {
            REPLICAS[0]: [status, victim_sessions if cut else 5],
            REPLICAS[1]: ["UP", 5],
            REPLICAS[2]: ["UP", 5],
        }
        out.append([t, [acked, last, True], replicas, balancer])
    return out


def _history(name: str, fault: str, promises: list[str], **measured: Any) -> ScenarioHistory:
    final = 60
    fleet = [
        {"after_seq": 10, "log": _log(list(range(11, final + 1)), connections=2 if i < 4 else 1)} for i in range(12)
    ]
    base = {
        "replicas": REPLICAS,
        "victim": VICTIM,
        "victim_sessions_before": 5,
        "victim_fleet_before": 4,
        "victim_held_publisher": True,
        "fleet": fleet,
        "samples": _samples(),
        "restarted": [],
        "log": {
            "read": True,
            "entries": [[s, "market_data", []] for s in range(1, final + 1)],
            "appendfsync": "always",
        },
    }
    base.update(measured)
    return ScenarioHistory(
        name=name,
        fault=fault,
        injected_ns=INJECT,
        healed_ns=HEAL,
        run_id="run-a",
        new_run_id="run-a",
        stats={
            "start": _stats(10, 100, 5),
            "before": _stats(20, 120, 6),
            "during": _stats(40, 160, 8, acked=20),
            "after": _stats(60, 200, 10),
            "final": _stats(60, 200, 10),
        },
        live=ClientLog.of(_frames(list(range(11, final + 1))), 2, [], [1006]),
        measured=base,
        promises=["fleet_whole", *promises],
    )


def partition() -> ScenarioHistory:
    return _history("replica_partition", "replica_partition", ["replica_drained", "clients_moved", "acked_in_log"])


def redis_kill() -> ScenarioHistory:
    return _history("redis_kill", "redis_kill", ["acks_stop", "acked_in_log"])


def replica_kill() -> ScenarioHistory:
    return _history("replica_kill", "replica_kill", ["clients_moved", "rejoined"])


def rolling() -> ScenarioHistory:
    restarted = [[svc, 100 * S + i, 101 * S + i] for i, svc in enumerate(REPLICAS)]
    return _history("rolling_restart", "rolling_restart", ["every_replica_restarted"], restarted=restarted)


def errors(h: ScenarioHistory) -> list[str]:
    return [f.message for f in judge_scenario(h, LIMITS).findings if f.severity == "error"]


def checks(h: ScenarioHistory) -> set[str]:
    return {f.check for f in judge_scenario(h, LIMITS).findings if f.severity == "error"}


def test_clean_cluster_histories_pass():
    for make in (partition, redis_kill, replica_kill, rolling):
        assert errors(make()) == [], make.__name__
    r = judge_scenario(partition(), LIMITS)
    assert r.extra["fleet_clients"] == 12 and r.extra["fleet_moved"] == 4
    assert r.extra["victim_not_ready_s"] is not None and r.extra["victim_up_s"] is not None


def test_an_acked_seq_missing_from_the_log_after_redis_kill_is_named():
    """A replica that acks before the Redis append: what it acked while Redis died is not in the log."""
    h = redis_kill()
    h.measured["log"]["entries"] = [e for e in h.measured["log"]["entries"] if not 30 <= e[0] <= 34]
    found = errors(h)
    assert any("ACKED BUT NOT IN THE LOG: 5 seq(s)" in m and "30, 31, 32, 33, 34" in m for m in found), found


def test_a_gap_in_the_log_accounts_for_the_seqs_it_declares():
    h = redis_kill()
    entries = [e for e in h.measured["log"]["entries"] if not 30 <= e[0] <= 34]
    h.measured["log"]["entries"] = [*entries, [35, "gap", [[30, 34]]]]
    assert not any("NOT IN THE LOG" in m for m in errors(h))


def test_an_unreadable_log_is_an_error_not_a_pass():
    h = redis_kill()
    h.measured["log"] = {"read": False, "error": "ConnectionError: refused"}
    assert any("could not be read" in m for m in errors(h))


def test_a_seq_appended_twice_is_named():
    h = redis_kill()
    h.measured["log"]["entries"].append([40, "trade", []])
    assert any("APPENDED TWICE" in m for m in errors(h))


def test_acks_while_redis_is_down_are_named():
    """The bot's acked_seq rose while Redis was paused or dead: acked without an append."""
    h = redis_kill()
    h.measured["samples"] = _samples(acked_during=True)
    assert "acks_stop" in checks(h)
    assert any("ACKED WITHOUT REDIS" in m for m in errors(h))


def test_acks_that_never_resume_are_named():
    h = redis_kill()
    for s in h.measured["samples"]:
        if s[0] >= HEAL:
            s[1][0] = h.measured["samples"][20][1][0]
    h.stats["final"]["acked_seq"] = h.measured["samples"][20][1][0]
    assert "acks_resume" in checks(h)


def test_a_fault_during_which_nothing_was_produced_tested_nothing():
    h = redis_kill()
    for s in h.measured["samples"]:
        s[1][1] = 10
    assert any("produced nothing" in m for m in errors(h))


def test_a_cut_replica_that_stays_ready_is_named():
    """A replica that keeps serving after losing Redis: /ready stayed 200 and the balancer kept it UP."""
    h = partition()
    h.measured["samples"] = _samples(victim_ready=200, victim_status="UP", victim_sessions=5)
    found = checks(h)
    assert {"ready_fails", "drained"} <= found, found
    assert any("REPLICA SERVES WITHOUT REDIS" in m and "/ready" in m for m in errors(h))


def test_a_cut_replica_that_acks_is_named():
    h = partition()
    h.measured["samples"] = _samples(victim_acks=True)
    assert any("REPLICA SERVES WITHOUT REDIS" in m and "acked the run" in m for m in errors(h))


def test_a_drained_replica_still_holding_clients_is_named():
    h = partition()
    h.measured["samples"] = _samples(victim_sessions=3)
    assert any("CLIENTS NOT MOVED" in m and "still held 3" in m for m in errors(h))


def test_clients_that_were_not_moved_are_named():
    h = replica_kill()
    for c in h.measured["fleet"]:
        c["log"]["connections"] = 1
    assert any("CLIENTS NOT MOVED" in m for m in errors(h))


def test_a_victim_without_clients_tested_nothing():
    h = replica_kill()
    h.measured["victim_sessions_before"] = 0
    assert any("moving its clients was not tested" in m for m in errors(h))


def test_a_replica_that_does_not_rejoin_is_named():
    h = replica_kill()
    h.measured["samples"] = _samples(back_up=False)
    assert any("NOT REJOINED" in m for m in errors(h))


def test_a_fleet_client_that_lost_or_doubled_is_named():
    """Rolling restart: no client sees loss or duplicates."""
    h = rolling()
    seqs = list(range(11, 61))
    h.measured["fleet"][3]["log"] = _log([s for s in seqs if s != 33], connections=2)
    h.measured["fleet"][5]["log"] = _log(seqs[:20] + [seqs[19]] + seqs[20:], connections=2)
    found = errors(h)
    assert any(m.startswith("fleet client 4:") and "33" in m for m in found), found
    assert any(m.startswith("fleet client 6:") and "DUPLICATED" in m.upper() for m in found), found


def test_a_resume_refused_across_replicas_is_named():
    h = replica_kill()
    h.measured["fleet"][0]["log"] = _log(list(range(11, 61)), connections=2, refused=[("run-a", 25)])
    assert any("RESUME REFUSED ACROSS REPLICAS" in m for m in errors(h))


def test_no_fleet_recorded_is_an_error():
    h = rolling()
    h.measured["fleet"] = []
    assert any("no client fleet" in m for m in errors(h))


def test_a_rolling_restart_that_skipped_a_replica_tested_nothing():
    h = rolling()
    h.measured["restarted"] = h.measured["restarted"][:2]
    assert any("did not restart dashboard-backend-3" in m for m in errors(h))


def test_a_publisher_elsewhere_is_a_warning_not_a_pass_of_its_acks():
    h = partition()
    h.measured["victim_held_publisher"] = False
    r = judge_scenario(h, LIMITS)
    assert any(f.severity == "warning" and "not tested" in f.message for f in r.findings)


def test_a_cluster_history_is_judged_again_from_its_file(tmp_path):
    h = redis_kill()
    h.measured["log"]["entries"] = h.measured["log"]["entries"][:-5]
    path = h.save(history_path(tmp_path, "cluster", h.name))
    again = judge_history(load_history(path), {"cluster": LIMITS}, "cluster")
    first = judge_scenario(copy.deepcopy(h), LIMITS).serialize()
    assert again["passed"] is False and again["findings"] == first["findings"]


def test_memory_per_connection_and_cpu_figures():
    per = memory_per_connection_kb({"a": 30.0, "b": 30.0}, {"a": 40.0, "b": 30.0}, {"a": 1024, "b": 0})
    assert per == {"a": 10.0, "b": None}
    assert service_cpu([[1, "haproxy", 10.0, 5], [2, "haproxy", 30.0, 5], [2, "redis", 1.0, 5]], "haproxy") == {
        "mean": 20.0,
        "max": 30.0,
    }


def test_the_fleet_is_judged_up_to_what_the_bot_had_produced_when_it_stopped():
    h = rolling()
    h.measured["fleet_last_seq"] = 55
    assert any("UNEXPECTED" in m for m in errors(h))
    h.measured["fleet_last_seq"] = 60
    assert errors(h) == []


def test_the_shared_log_entries_are_read_as_the_backend_writes_them():
    from wsrig.cluster_scenario import _entry

    gap = '{"run_id": "run-a", "seq": 9, "type": "gap", "data": {"ranges": [[5, 8]]}}'
    assert _entry({b"run": b"run-a", b"seq": b"7", b"type": b"trade", b"p": b"{}", b"r": b"1"}) == {
        "run_id": "run-a",
        "seq": "7",
        "type": "trade",
    }
    assert _entry({"run": "run-a", "seq": "9", "type": "gap", "p": gap, "r": "1"})["data"] == {"ranges": [[5, 8]]}
    assert _entry({"x": "y"}) is None


def test_everysec_allows_only_what_was_acked_just_before_redis_died_and_says_so():
    limits = {**LIMITS, "everysec_loss_window_s": 2}
    h = redis_kill()
    h.measured["log"]["appendfsync"] = "everysec"
    # seqs 12..14 were acked in the second before the kill (samples at 99.5-100 s)
    h.measured["log"]["entries"] = [e for e in h.measured["log"]["entries"] if not 12 <= e[0] <= 14]
    r = judge_scenario(h, limits)
    assert not [f for f in r.findings if f.severity == "error"], r.findings
    assert any(f.severity == "warning" and "everysec: 3 seq(s)" in f.message for f in r.findings)
    h.measured["log"]["entries"] = [e for e in h.measured["log"]["entries"] if e[0] != 50]
    assert any("ACKED BUT NOT IN THE LOG: 1 seq(s)" in f.message for f in judge_scenario(h, limits).findings)
    h.measured["log"]["appendfsync"] = "always"
    assert any("ACKED BUT NOT IN THE LOG: 4 seq(s)" in f.message for f in judge_scenario(h, limits).findings)


def test_a_replica_is_read_for_its_own_part_of_a_cluster_wide_status(monkeypatch):
    """The status API may describe the whole cluster: the watch keeps the replica's own share."""
    from wsrig.cluster_scenario import ClusterWatch

    status = {
        "replica": "2",
        "runs": {"run-a": {"acked_seq": 7}},
        "publishers": [{"run_id": "run-a", "replica": "1"}],
        "client_count": 12,
        "replica_client_count": 4,
    }

    class Answer:
        status_code = 200

        def json(self):
            return status

    watch = ClusterWatch.__new__(ClusterWatch)
    watch.run_id, watch._ips = "run-a", {"dashboard-backend-2": "10.0.0.2"}
    monkeypatch.setattr(watch, "_http", type("H", (), {"get": lambda self, url, timeout: Answer()})(), raising=False)
    assert watch.replica("dashboard-backend-2") == [200, 7, False, 4]
    status["publishers"] = [{"run_id": "run-a", "replica": "2"}]
    assert watch.replica("dashboard-backend-2")[2] is True
    del status["replica_client_count"], status["replica"]
    status["publishers"] = [{"run_id": "run-a"}]
    assert watch.replica("dashboard-backend-2") == [200, 7, True, 12]
