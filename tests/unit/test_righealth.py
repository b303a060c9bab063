"""The rig judges its own health: a stalled rig gives invalid, a stalled server with a healthy rig gives failed."""

from wsrig.righealth import ProcessHealth, RigHealth, RigLimits, scenario_status, worst_status

LIMITS = RigLimits(loop_lag_p99_ms=10, loop_lag_max_ms=50, generator_lag_p99_ms=20, us_per_delivery=10)


def _health(lag_p99=1.0, lag_max=4.0, gen=1.0, cpu_s=0.5, deliveries=500_000, skipped=0) -> RigHealth:
    procs = (
        ProcessHealth("subscriber process 0", 0.5, 2.0, cpu_s / 2),
        ProcessHealth("subscriber process 1", lag_p99, lag_max, cpu_s / 2),
        ProcessHealth("publisher", None, None, 0.0),
    )
    return RigHealth(procs, generator_lag_p99_ms=gen, generator_skipped=skipped, deliveries=deliveries, duration_s=10)


def test_healthy_rig_has_no_invalid_reason():
    """1 µs per delivery, 1 ms lag: nothing to say."""
    assert _health().invalid_reasons(LIMITS) == []


def test_stalled_loop_is_invalid_and_names_the_process():
    """A subscriber process 188 ms behind its loop: invalid, naming it and the value."""
    reasons = _health(lag_p99=120.0, lag_max=188.4).invalid_reasons(LIMITS)
    assert reasons == [
        "rig event-loop lag P99 120.0 ms in subscriber process 1 > 10 ms",
        "rig event-loop lag max 188.4 ms in subscriber process 1 > 50 ms",
    ]


def test_generator_slip_and_skips_are_invalid():
    """A late generator (the issue's 20.19 ms > 20 ms) and skipped sends are the rig's, not the system's."""
    reasons = _health(gen=20.19, skipped=3).invalid_reasons(LIMITS)
    assert "generator skipped 3 planned sends" in reasons
    assert "generator schedule slip P99 20.19 ms > 20 ms" in reasons


def test_expensive_rig_is_invalid_at_rate_but_not_when_idle():
    """19 µs per delivery at 50,000/s is invalid; the same ratio at 100/s (handshakes) is not judged."""
    assert _health(cpu_s=9.5, deliveries=500_000).us_per_delivery == 19.0
    assert _health(cpu_s=9.5, deliveries=500_000).invalid_reasons(LIMITS) == ["rig CPU 19.0 µs per delivery > 10 µs"]
    assert _health(cpu_s=0.019, deliveries=1_000).invalid_reasons(LIMITS) == []


def test_publisher_lag_is_not_judged_as_loop_lag():
    """The generator's slip is judged by generator limits only (its loop lag is None)."""
    health = RigHealth((ProcessHealth("publisher", None, None, 1.0),), generator_lag_p99_ms=5.0)
    assert health.invalid_reasons(LIMITS) == [] and health.serialize()["loop_lag_p99_ms"] is None


def test_stalled_rig_with_healthy_server_is_invalid():
    """Slow figure, stalled rig, nothing lost: invalid (the figure is the rig's)."""
    stalled = _health(lag_p99=150.0, lag_max=400.0).invalid_reasons(LIMITS)
    assert scenario_status([], ["fan-out P99 = 168ms breaks < 100ms"], stalled) == "invalid"


def test_stalled_server_with_healthy_rig_is_failed():
    """Slow figure, healthy rig: failed (the figure is the system's)."""
    healthy = _health().invalid_reasons(LIMITS)
    assert scenario_status([], ["fan-out P99 = 402ms breaks < 100ms"], healthy) == "failed"


def test_loss_fails_whatever_the_rig():
    """Correctness findings beat invalid: a stalled rig does not invent missing seqs."""
    assert scenario_status(["10 of 400 deliveries never arrived"], [], ["rig event-loop lag ..."]) == "failed"
    assert scenario_status([], [], []) == "passed"


def test_composition_failed_beats_invalid_beats_passed():
    """Jepsen's order: false beats unknown beats true."""
    assert worst_status(["passed", "invalid", "passed"]) == "invalid"
    assert worst_status(["invalid", "failed"]) == "failed"
    assert worst_status(["passed", "skipped"]) == "passed"
    assert worst_status(["passed", "error"]) == "error"


def test_late_receivers_void_a_breach_but_not_a_met_threshold():
    """A late rig only adds latency: a breach is invalid, a met threshold stands; a slipping generator voids both."""
    health = _health(lag_p99=40.0, lag_max=90.0)
    lag = health.lagging(LIMITS)
    assert lag and health.blocking(LIMITS) == []
    assert scenario_status([], ["fan-out P99 = 150ms breaks < 100ms"], [], lag) == "invalid"
    assert scenario_status([], [], [], lag) == "passed"
    slipping = _health(gen=35.0)
    assert slipping.blocking(LIMITS) == ["generator schedule slip P99 35.00 ms > 20 ms"]
    assert scenario_status([], [], slipping.blocking(LIMITS), []) == "invalid"


def test_a_breach_beyond_the_rigs_worst_stall_is_the_systems():
    """P99 1,026 ms with the rig 65 ms late at worst: the system's (a slow system cannot hide in
    invalid); 150 ms is within the stall's reach. The security judge applies it to a client
    latency gate (tests/unit/test_judges_security.py)."""
    from wsrig.righealth import beyond_rig

    assert beyond_rig(1026.0, "<", 100, 65.0) and not beyond_rig(150.0, "<", 100, 65.0)
