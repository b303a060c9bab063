"""The load stage's judges: each scenario's raw runs and the thresholds -> checks and findings.

Pure: no I/O, no clock. A run is what ``wsrig.load.runner`` recorded, kept as it came
(``LoadResult.serialize``): each subscriber process's part (encoded HDR histograms and
counts, its loop lag and CPU), the publisher's report, resource samples. The parts are
merged here (``wsrig.load.merge``), so every figure is taken from the merged histograms.

A timed scenario is judged with the rig's own health (``timed``, DESIGN.md section 9):
loss, duplicates, disorder and closes fail whatever the rig did; a broken timing
threshold with a late rig is ``invalid`` (named reasons), unless the breach is larger
than the rig's worst stall or a control run vouches for the rig; a generator that did
not apply the plan voids the run. The performance stage's judges build on the same.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from wsrig.checkers import Finding
from wsrig.judges.base import Check, Rule, Verdict
from wsrig.load.merge import Merged, merge
from wsrig.load.recorder import latency_recovery_s, per_second_rows
from wsrig.load.schedule import Phase, Schedule
from wsrig.record import scenario_row
from wsrig.righealth import INVALID_PREFIX, ProcessHealth, RigHealth, RigLimits, beyond_rig, scenario_status
from wsrig.stats import LatencySummary

__all__ = [
    "RULES",
    "LoadRun",
    "data_findings",
    "invalid_reasons",
    "ratio",
    "ratio_check",
    "reference_problems",
    "rig_limits",
    "run_row",
    "timed",
]

#: The close code a WebSocket server sends when its keepalive ping got no pong in time.
KEEPALIVE_CLOSE = 1011


def rig_limits(limits: Mapping[str, Any]) -> RigLimits:
    """The rig's own limits (``[*.rig_health]``), which ``judge_probe`` hands a rule beside its stage's."""
    rig = limits.get("rig_health")
    if not isinstance(rig, RigLimits):
        raise ValueError("a load judge needs the rig's limits ([*.rig_health]): judge_probe(h, limits, rig_limits)")
    return rig


def _counted(lines: Iterable[str]) -> list[str]:
    """The same line from many connections once, with its count."""
    return [f"{e} (x{n})" if n > 1 else e for e, n in Counter(lines).items()]


def _mean(rows: Sequence[Sequence[Any]], source: str) -> float:
    values = [float(r[2]) for r in rows if r[1] == source]
    return round(sum(values) / len(values), 1) if values else 0.0


@dataclass(frozen=True)
class LoadRun:
    """One recorded run read back: its parts merged, the figures its row shows."""

    raw: Mapping[str, Any]

    @cached_property
    def merged(self) -> Merged:
        return merge(self.raw["parts"])

    @property
    def schedule(self) -> Schedule:
        return Schedule(tuple(Phase(float(rate), float(s)) for rate, s in self.raw["plan"]["phases"]))

    @property
    def publisher(self) -> Mapping[str, Any]:
        return self.raw.get("publisher") or {}

    @property
    def generator(self) -> Mapping[str, Any]:
        """The publisher's own account of its schedule (planned, sent, send lag)."""
        return self.publisher.get("health") or {}

    @property
    def expected(self) -> int:
        return int(self.publisher.get("sent", 0)) * self.merged.connected

    @property
    def delivered(self) -> int:
        return self.merged.unique

    @property
    def lost(self) -> int:
        return max(0, self.expected - self.delivered)

    @property
    def closed(self) -> list[int]:
        return self.merged.closed

    @cached_property
    def latency(self) -> LatencySummary:
        """From intended send time (coordinated-omission-safe), all parts merged."""
        return self.merged.corrected.summary()

    @property
    def deliveries_per_s(self) -> float:
        return round(self.delivered / self.schedule.duration_s, 1)

    @property
    def acked_per_s(self) -> float:
        p = self.publisher
        if not p.get("all_acked_ns") or not p.get("first_sent_ns"):
            return 0.0
        return round(p["acked_seq"] / max(1e-9, (p["all_acked_ns"] - p["first_sent_ns"]) / 1e9), 1)

    @property
    def backend_us_per_delivery(self) -> float | None:
        cpu_s = self.raw.get("backend_cpu_s")
        if cpu_s is None or not self.delivered:
            return None
        return round(float(cpu_s) * 1e6 / self.delivered, 2)

    @cached_property
    def rig(self) -> RigHealth:
        """The rig's processes (subscribers and publisher) and its generator, for ``righealth``."""
        procs = list(self.merged.processes)
        if self.publisher:
            procs.append(ProcessHealth("publisher", None, None, float(self.publisher.get("cpu_s", 0.0))))
        gen = self.generator
        return RigHealth(
            processes=tuple(procs),
            generator_lag_p99_ms=gen.get("lag_p99_ms"),
            generator_skipped=int(gen.get("planned", 0)) - int(gen.get("sent", 0)),
            deliveries=self.delivered,
            duration_s=self.schedule.duration_s,
            errors=tuple(self.raw.get("rig_errors", [])) + tuple(self.merged.errors),
        )

    def per_second(self) -> list[list[Any]]:
        """``t, delivered, p50_ms, p99_ms, max_ms`` per second of intended send time."""
        return per_second_rows(self.merged.per_second)

    def figures(self) -> dict[str, Any]:
        """The row's fields: rates, loss, percentiles, the rig's and the backend's CPU."""
        gen, resources = self.generator, self.raw.get("resources", [])
        return {
            "rate": self.schedule.phases[0].rate,
            "duration_s": self.schedule.duration_s,
            "subscribers": self.raw["plan"]["subscribers"],
            "connected": self.merged.connected,
            "planned": gen.get("planned", 0),
            "sent": gen.get("sent", 0),
            "generator_lag_p99_ms": gen.get("lag_p99_ms"),
            "generator_backpressure_s": gen.get("backpressure_s"),
            "expected_deliveries": self.expected,
            "delivered": self.delivered,
            "lost": self.lost,
            "duplicated": self.merged.duplicated,
            "reordered": self.merged.reordered,
            "closed_codes": sorted(set(self.closed)),
            "deliveries_per_s": self.deliveries_per_s,
            "acked_per_s": self.acked_per_s,
            "latency_ms": self.latency.serialize(),
            "latency_uncorrected_ms": self.merged.uncorrected.summary().serialize(),
            "connect_ms": self.merged.connect.summary().serialize(),
            "rig_loop_lag_max_ms": self.rig.worst_stall_ms,
            "rig_health": self.rig.serialize(),
            "rig_us_per_delivery": self.rig.us_per_delivery,
            "backend_cpu_s": self.raw.get("backend_cpu_s"),
            "backend_us_per_delivery": self.backend_us_per_delivery,
            "cooldown_waited_s": self.raw.get("cooldown_waited_s", 0.0),
            "backend_cpu_at_start": self.raw.get("backend_cpu_at_start"),
            "cpu_percent_mean": {src: _mean(resources, src) for src in sorted({str(r[1]) for r in resources})},
            "rig_errors": list(self.rig.errors),
            "connect_failures": self.merged.connect_failures,
        }


def invalid_reasons(run: LoadRun, rig: RigLimits) -> list[str]:
    """Why the run measured the rig rather than the system (``wsrig.righealth``)."""
    return _counted(run.rig.invalid_reasons(rig))


def data_findings(run: LoadRun) -> list[Finding]:
    """What the system did wrong, whatever the rig's health: refused subscribers, loss,
    duplicates, disorder, closes."""
    out = [Finding("error", line, check="subscribers_connected") for line in _counted(run.merged.connect_failures)]
    m = run.merged
    if run.lost:
        out.append(
            Finding(
                "error",
                f"{run.lost} of {run.expected} deliveries never arrived",
                check="lost",
                evidence={"lost": run.lost, "expected": run.expected, "delivered": run.delivered},
            )
        )
    if m.duplicated:
        out.append(
            Finding(
                "error", f"{m.duplicated} deliveries duplicated", check="duplicated", evidence={"count": m.duplicated}
            )
        )
    if m.reordered:
        out.append(
            Finding(
                "error",
                f"{m.reordered} deliveries out of seq order",
                check="reordered",
                evidence={"count": m.reordered},
            )
        )
    if m.closed:
        codes = sorted(set(m.closed))
        out.append(
            Finding(
                "error",
                f"subscribers closed by the backend with codes {codes}",
                check="closed",
                evidence={"codes": codes, "count": len(m.closed)},
            )
        )
    return out


def reference_problems(ref: LoadRun, rig: RigLimits) -> list[str]:
    """Why a reference run cannot serve as the yardstick: its rig's health, or its own loss.

    The reference is part of the instrument: a late rig inflates the reference's P99 and
    so deflates the ratio, in either direction of the verdict. When it did not measure
    cleanly, the ratio to it is not judged (its reason recorded), never a finding
    against the system.
    """
    return [f"reference run: {p}" for p in invalid_reasons(ref, rig) + [f.message for f in data_findings(ref)]]


def ratio(value: float | None, reference: float | None) -> float | None:
    """``value / reference`` rounded, or None when either is missing or the reference is 0."""
    if value is None or not reference:
        return None
    return round(value / reference, 2)


def ratio_check(
    label: str, value: float | None, limit: float, op: str, not_judged: list[str]
) -> tuple[Check, list[Finding]]:
    """A ratio to the reference as a check, or, when the reference cannot serve as the
    yardstick (``not_judged`` says why), recorded without a threshold beside a warning."""
    if not_judged:
        warning = Finding("warning", f"ratio to reference not judged: {'; '.join(not_judged)}", check=label)
        return Check(f"{label} (not judged)", value, None, op, "x"), [warning]
    missing = float("inf") if op.startswith("<") else 0.0  # no reference figure: the worst case
    return Check(label, value if value is not None else missing, limit, op, "x"), []


@dataclass(frozen=True)
class Timed:
    """A timed run's verdict: its status, findings besides its broken checks, invalid reasons."""

    status: str
    findings: list[Finding]
    invalid: list[str]

    def figures(self, run: LoadRun, **extra: Any) -> dict[str, Any]:
        """The row's fields; ``status`` only when invalid (else the findings decide it)."""
        out = {**run.figures(), **extra, "invalid_reasons": self.invalid}
        return {**out, "status": "invalid"} if self.status == "invalid" else out


def timed(
    run: LoadRun,
    rig: RigLimits,
    timing: Sequence[Check] = (),
    correctness: Sequence[Check] = (),
    problems: Sequence[Finding] = (),
    judge_data: bool = True,
    also_invalid: Sequence[str] = (),
    rig_vouched_by: str = "",
) -> Timed:
    """A run judged with the rig's health (``righealth.scenario_status``).

    ``timing``: latency or throughput bounds, believable only when the rig was healthy.
    ``correctness``: bounds the system breaks whatever the rig did (clients connected);
    with ``problems`` and the run's own loss, duplicates, disorder and closes they fail the
    row. Else an unhealthy rig makes it ``invalid`` (its broken timing checks are then not
    the system's); else broken checks fail it. ``judge_data=False`` for a measurement
    run (a saturation step, a reference run), whose loss is what it measured.
    ``also_invalid``: reasons from elsewhere that this run's figures cannot be trusted.
    A broken latency bound larger than the rig's worst stall (``righealth.beyond_rig``)
    is the system's; ``rig_vouched_by`` names a control run (the reference server under
    the same plan, rig and cores) that met the bounds: the rig could measure this plan,
    so its lag voids nothing. The broken checks' own findings are the caller's (the row's).
    """
    data = data_findings(run) + list(problems) if judge_data else []
    judged = [f.message for f in data] + [c.breach() for c in correctness if not c.passed]
    blocking = list(dict.fromkeys(_counted(run.rig.blocking(rig)) + list(also_invalid)))
    lagging = _counted(run.rig.lagging(rig))
    vouched = bool(lagging and rig_vouched_by)
    if lagging and judged and run.closed and set(run.closed) <= {KEEPALIVE_CLOSE}:
        # The backend cut subscribers that did not answer its pings in time, while the
        # rig's loops ran late: the closes (and what they lost) are the rig's, not the system's.
        blocking.append(
            f"subscribers closed {KEEPALIVE_CLOSE} (keepalive timeout) while the rig lagged: " + "; ".join(judged)
        )
        judged, data = [], []
    broken = [c for c in timing if not c.passed]
    stall = run.rig.worst_stall_ms
    beyond = [c for c in broken if c.unit == "ms" and beyond_rig(c.value, c.op, c.threshold, stall)]
    # A breach beyond the rig's reach, or a rig vouched for by a control run, is judged as if the rig were healthy.
    status = scenario_status(judged, [c.breach() for c in broken], blocking, [] if beyond or vouched else lagging)
    if status == "invalid":
        invalid = list(dict.fromkeys(blocking + lagging))
        return Timed(
            status, [Finding("warning", f"{INVALID_PREFIX}: {r}", check="rig_health") for r in invalid], invalid
        )
    if vouched:
        why = f"the rig measured {rig_vouched_by} cleanly under the same plan"
    elif beyond:
        why = f"the breach is larger than the rig's worst stall, {stall:.1f} ms"
    else:
        why = "thresholds met: a late rig only adds latency"
    notes = [Finding("info", f"rig health: {r} ({why})", check="rig_health") for r in lagging]
    return Timed(status, data + notes, [])


def run_row(name: str, run: LoadRun, verdict: Timed, **extra: Any) -> dict[str, Any]:
    """A measurement run's own row (a reference run, a saturation step): no checks of its own."""

    fields = {**run.figures(), **extra, "invalid_reasons": verdict.invalid}
    return scenario_row(name, "none", verdict.findings, verdict.status, **fields)


def _runs(m: Mapping[str, Any]) -> dict[str, LoadRun]:
    return {name: LoadRun(raw) for name, raw in m["runs"].items()}


# ---- the load stage's scenarios -------------------------------------------------------------


def _sustained(m: Mapping[str, Any], limits: Mapping[str, Any]) -> Verdict:
    """Rate R for T seconds to N subscribers: P99 from intended time under the threshold, nothing lost."""
    run = _runs(m)["sustained"]
    p99 = Check("sustained P99", run.latency.p99, limits["sustained_p99_ms"], "<", "ms")
    verdict = timed(run, rig_limits(limits), [p99])
    return [p99], verdict.findings, verdict.figures(run)


def _burst(m: Mapping[str, Any], limits: Mapping[str, Any]) -> Verdict:
    """10x the rate for a few seconds: nothing lost, and per-second P99 back under the
    sustained bound within ``burst_recovery_s`` of the burst's end."""
    run = _runs(m)["burst"]
    t0 = run.publisher.get("t0_ns", 0) / 1e9
    burst_end = int(t0 + run.schedule.phase_bounds_s()[1][1])
    recovery = latency_recovery_s(run.per_second(), burst_end, limits["sustained_p99_ms"])
    rec = Check(
        "burst recovery", recovery if recovery is not None else float("inf"), limits["burst_recovery_s"], "<=", "s"
    )
    verdict = timed(run, rig_limits(limits), [rec])
    peak = run.schedule.phases[1].rate
    return [rec], verdict.findings, verdict.figures(run, recovery_s=recovery, burst_rate=peak)


def _connections(m: Mapping[str, Any], limits: Mapping[str, Any]) -> Verdict:
    """1,000 clients at once: all connected, connect P99, backend memory per connection.

    The delivery latency to the 1,000 is in the row (``latency_ms``) but not judged: the
    rig's own fan-in of 1,000 frames per message on one core adds about as much as the
    backend's fan-out (docs/BENCHMARKS.md, session 6); a judged bound needs the
    reference as control.
    """
    run = _runs(m)["connections_1000"]
    idle, connected_mb = float(m["memory_idle_mb"]), m.get("memory_connected_mb")
    connected_mb = idle if connected_mb is None else float(connected_mb)
    per_1000 = (connected_mb - idle) * 1000 / max(1, run.merged.connected)
    clients = Check("clients connected", run.merged.connected, limits["connections"], ">=", "")
    timing = [
        Check("connect P99", run.merged.connect.summary().p99, limits["connect_p99_ms"], "<", "ms"),
        Check(
            "backend memory per 1000 connections",
            round(per_1000, 1),
            limits["memory_per_1000_connections_mb"],
            "<",
            "MB",
        ),
    ]
    verdict = timed(run, rig_limits(limits), timing, correctness=[clients])
    figures = verdict.figures(
        run,
        backend_mem_idle_mb=round(idle, 1),
        backend_mem_connected_mb=round(float(m.get("memory_connected_mb") or 0.0), 1),
        memory_per_connection_kb=round(per_1000 * 1024 / 1000, 1),
    )
    return [clients, *timing], verdict.findings, figures


def _fanout(m: Mapping[str, Any], limits: Mapping[str, Any]) -> Verdict:
    """100 subscribers at 500 msg/s: P99 and delivered msg/s, and P99 against the reference server's.

    The same plan ran against the reference broadcast server (same rig, same CPU sets);
    the ratio of the two P99s survives a change of host, an absolute figure does not. The
    reference run is also the control: when it met the fan-out bound under the same plan,
    rig and cores, the rig could measure this plan, and a breach is the system's. Its own
    row (``runs``) is invalid when its rig lagged: then it measures nothing.
    """
    runs, rig = _runs(m), rig_limits(limits)
    sut, ref = runs["fanout"], runs["fanout_reference"]
    ref_row = run_row(
        "fanout_reference",
        ref,
        timed(ref, rig, judge_data=False, also_invalid=ref.rig.lagging(rig)),
        role="reference",
    )
    sut_p99, ref_p99 = sut.latency.p99, ref.latency.p99
    p99_ratio = ratio(sut_p99, ref_p99)
    # The ratio is judged only when the reference run measured cleanly.
    not_judged = reference_problems(ref, rig)
    versus, warnings = ratio_check(
        "fan-out P99 / reference P99", p99_ratio, limits["fanout_p99_ratio_max"], "<=", not_judged
    )
    checks = [
        Check("fan-out P99", sut_p99, limits["fanout_p99_ms"], "<", "ms"),
        Check("fan-out deliveries/s", sut.deliveries_per_s, limits["fanout_min_deliveries_per_s"], ">=", "/s"),
        versus,
    ]
    control_ok = not not_judged and ref_p99 < limits["fanout_p99_ms"]
    verdict = timed(sut, rig, checks, rig_vouched_by="the reference server" if control_ok else "")
    figures = verdict.figures(
        sut,
        reference={
            "p99_ms": ref_p99,
            "deliveries_per_s": ref.deliveries_per_s,
            "us_per_delivery": ref.backend_us_per_delivery,
        },
        ratio_to_reference={"p99": p99_ratio, "judged": not not_judged, "not_judged_because": not_judged},
        runs=[ref_row],
    )
    return checks, verdict.findings + warnings, figures


def _stability(m: Mapping[str, Any], limits: Mapping[str, Any]) -> Verdict:
    """Memory after the load stays within bounds, and a second round of clients does not raise it.

    CPython keeps freed heap for reuse rather than giving it back, and the resume ring
    keeps the last envelopes by design, so memory after load is checked against a bound
    (``stability_memory_growth_mb``). A leak shows as growth from one round to the next:
    the second 1,000-client round must not add more than ``stability_repeat_growth_mb``
    to what the first left. Memory is not timing: a round whose rig ran late still loaded
    the backend, so rig notes are info here and never make the row invalid.
    """
    runs, rig = _runs(m), rig_limits(limits)
    baseline, after, rounds = float(m["baseline_mb"]), float(m["after_mb"]), [float(x) for x in m["after_rounds_mb"]]
    checks = [
        Check(
            "backend memory growth after load",
            round(after - baseline, 1),
            limits["stability_memory_growth_mb"],
            "<=",
            "MB",
        ),
        Check(
            "backend memory growth on a repeated round",
            round(rounds[1] - rounds[0], 1),
            limits["stability_repeat_growth_mb"],
            "<=",
            "MB",
        ),
    ]
    findings: list[Finding] = []
    for i, run in enumerate(runs.values(), 1):
        findings += data_findings(run)
        findings += [
            Finding("info", f"{INVALID_PREFIX} (timing only, not judged here): round {i}: {r}", check="rig_health")
            for r in invalid_reasons(run, rig)
        ]
    figures = {
        "baseline_mb": round(baseline, 1),
        "after_mb": round(after, 1),
        "after_round_1_mb": round(rounds[0], 1),
        "after_round_2_mb": round(rounds[1], 1),
    }
    return checks, findings, figures


#: scenario name -> its rule
RULES: dict[str, Rule] = {
    "sustained": _sustained,
    "burst": _burst,
    "connections_1000": _connections,
    "fanout": _fanout,
    "stability": _stability,
}
