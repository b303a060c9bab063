"""Run comparison: regressions flagged beyond the tolerance, clean runs pass."""

from __future__ import annotations

import dataclasses

from _report_fixtures import clone, fault_scenario, stage, summary

from wsrig.compare import Tolerance, compare, figures, format_changes
from wsrig.config import load_config

#: the tolerances config/thresholds.toml gives (the one place for them)
TOL = Tolerance.from_limits(load_config().thresholds["compare"])


def _run(p99: float = 10.0, recovery: float = 0.8, rate: float = 1000.0, passed: bool = True):
    conn = stage("connectivity", metrics={"checks": [
        {"name": "handshake_p99_ms", "value": p99, "threshold": 100, "op": "<=", "unit": " ms", "passed": True},
        {"name": "throughput_msgs_s", "value": rate, "threshold": 500, "op": ">=", "unit": "", "passed": True},
    ]})  # fmt: skip
    fault = stage("fault_tolerance", "passed" if passed else "failed", scenarios=[
        fault_scenario("dashboard_crash", 0, passed=passed, recovery_s=recovery),
        {"name": "slow_subscriber", "passed": True,
         "latency_ms": {"p50": 3.0, "p90": 5.0, "p99": p99, "p999": p99, "max": p99, "count": 600}},
    ])  # fmt: skip
    return summary([conn, fault], verdict="pass" if passed else "fail")


def test_two_clean_runs_pass():
    """Two runs within noise of each other: no regression."""
    changes = compare(_run(p99=10.0, recovery=0.8), _run(p99=11.5, recovery=1.3), TOL)
    assert not [c for c in changes if c.regression]
    assert "0 regression(s)" in format_changes(changes, "a", "b")


def test_latency_regression_flagged():
    """A P99 ten times higher is flagged, with the figure named."""
    changes = compare(_run(p99=10.0), _run(p99=100.0), TOL)
    keys = {c.key for c in changes if c.regression}
    assert "connectivity/check/handshake_p99_ms" in keys
    assert "fault_tolerance/slow_subscriber/latency_ms.p99" in keys


def test_throughput_drop_and_recovery_rise_flagged():
    """Lower throughput (higher is better) and slower recovery are regressions."""
    keys = {c.key for c in compare(_run(rate=1000, recovery=0.8), _run(rate=400, recovery=9.0), TOL) if c.regression}
    assert keys == {"connectivity/check/throughput_msgs_s", "fault_tolerance/dashboard_crash/recovery_s"}


def test_verdict_and_scenario_flip_flagged():
    """pass -> fail of the verdict, a stage and a scenario are regressions; fail -> pass is not."""
    changes = compare(_run(), _run(passed=False), TOL)
    keys = {c.key for c in changes if c.regression}
    assert {"verdict", "fault_tolerance/status", "fault_tolerance/dashboard_crash/passed"} <= keys
    assert not [c for c in compare(_run(passed=False), _run(), TOL) if c.regression]


def test_vanished_scenario_is_a_regression():
    """A scenario that passed before and is missing now counts (a check that stopped running)."""
    new = _run()
    new["stages"][1]["scenarios"] = new["stages"][1]["scenarios"][:1]
    assert any(c.key.endswith("slow_subscriber/passed") and c.regression for c in compare(_run(), new, TOL))


def test_tolerance_floor_ignores_tiny_absolute_changes():
    """0.2 ms -> 0.6 ms triples but stays under the floors; zero floors flag it."""
    old, new = _run(p99=0.2), _run(p99=0.6)
    assert not [c for c in compare(old, new, TOL) if c.regression]
    assert [c for c in compare(old, new, dataclasses.replace(TOL, abs_ms=0.0, tail_abs_ms=0.0)) if c.regression]


def test_tail_latency_has_the_wider_tolerance():
    """p99 55 -> 87 ms (tail noise seen between two clean runs) passes; a p50 move of the same size fails."""
    tail = compare(_run(p99=55.0), _run(p99=87.0), TOL)
    assert not [c for c in tail if c.regression and "p99" in c.key]
    old, new = _run(), _run()
    new["stages"][1]["scenarios"][1]["latency_ms"]["p50"] = 35.0
    assert [c.key for c in compare(old, new, TOL) if c.regression] == ["fault_tolerance/slow_subscriber/latency_ms.p50"]


def test_figures_direction_from_check_op():
    """A check's op decides whether higher or lower is better."""
    f = figures(_run())
    assert f["connectivity/check/handshake_p99_ms"].better == "lower"
    assert f["connectivity/check/throughput_msgs_s"].better == "higher"
    assert f["fault_tolerance/dashboard_crash/recovery_s"].unit == "s"
    assert (
        f["connectivity/check/handshake_p99_ms"].tail and not f["fault_tolerance/slow_subscriber/latency_ms.p50"].tail
    )
    assert clone(_run()) == _run()
