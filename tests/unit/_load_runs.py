"""Synthetic load runs in the form the runner records them (``LoadResult.serialize``), for the
load and performance judges' tests: subscriber processes' parts (latencies, counts, loop
lag), the publisher's report, the thresholds of the quick profile."""

from __future__ import annotations

import tomllib
from typing import Any

from wsrig.config import repo_root, thresholds_for
from wsrig.hdr import LatencyHistogram
from wsrig.load.recorder import StreamRecorder
from wsrig.load.runner import LoadPlan, LoadResult
from wsrig.load.schedule import Phase, Schedule
from wsrig.righealth import RigLimits

T0_S = 1_700_000_000
THRESHOLDS = thresholds_for(tomllib.loads((repo_root() / "config" / "thresholds.toml").read_text()), "quick")
RIG = RigLimits.from_thresholds(THRESHOLDS["rig_health"])


def _hist(values_ms: list[float] | tuple[float, ...]) -> str:
    h = LatencyHistogram()
    for ms in values_ms:
        h.record_ms(ms)
    return h.encode()


def part(
    index: int = 0,
    connected: int = 5,
    latencies_ms: list[float] | None = None,
    *,
    received: int | None = None,
    duplicated: int = 0,
    reordered: int = 0,
    closed: tuple[int, ...] = (),
    lag_ms: tuple[float, ...] = (0.2, 0.5, 1.0),
    connect_ms: tuple[float, ...] = (3.0,),
    cpu_s: float = 0.001,
    duration_s: float = 2.0,
    error: str = "",
) -> dict[str, Any]:
    """One subscriber process's part; latencies spread evenly over the run's intended send
    times (so per second too); ``received`` None: every message sent, filled in by ``run``."""
    if error:
        return {"name": f"subscriber process {index}", "error": error, "connected": connected, "connect_failures": []}
    rec = StreamRecorder()
    samples = latencies_ms if latencies_ms is not None else [2.0] * 100
    for i, ms in enumerate(samples):
        intended = int((T0_S + i * duration_s / len(samples)) * 1e9)
        rec.record(intended, intended, intended + int(ms * 1e6))
    return {
        "name": f"subscriber process {index}",
        "connections": connected,
        "connected": connected,
        "connect_failures": [],
        "connect_hist": _hist(connect_ms * connected),
        **rec.encode(),
        "received": received,
        "duplicated": duplicated,
        "reordered": reordered,
        "closed": list(closed),
        "loop_lag_hist": _hist(lag_ms),
        "cpu_s": cpu_s,
    }


def result(
    *parts: dict[str, Any],
    phases: tuple[tuple[float, float], ...] = ((100.0, 2.0),),
    skipped: int = 0,
    gen_lag_ms: float = 1.0,
    backend_cpu_s: float | None = 0.5,
    publisher: dict[str, Any] | None = None,
) -> LoadResult:
    """A run of ``parts`` (none: a closed-loop run without subscribers) under ``phases``."""
    schedule = Schedule(tuple(Phase(r, d) for r, d in phases))
    planned = schedule.count
    sent = planned - skipped
    pub = {
        "run_id": "load-test",
        "planned": planned,
        "sent": sent,
        "acked_seq": sent,
        "errors": 0,
        "first_error": None,
        "t0_ns": T0_S * 10**9,
        "first_sent_ns": T0_S * 10**9,
        "last_sent_ns": int((T0_S + schedule.duration_s) * 1e9),
        "all_acked_ns": int((T0_S + schedule.duration_s) * 1e9),
        "cpu_s": 0.01,
        "health": {
            "planned": planned,
            "sent": sent,
            "lag_p99_ms": gen_lag_ms,
            "lag_max_ms": gen_lag_ms,
            "backpressure_s": 0.0,
        },
        **(publisher or {}),
    }
    for p in parts:
        if "error" not in p and p["received"] is None:
            p["received"] = sent * p["connected"] + p["duplicated"]
    return LoadResult(
        LoadPlan("x", schedule, subscribers=sum(p["connected"] for p in parts), processes=max(1, len(parts))),
        publisher=pub,
        parts=list(parts),
        resources=[[T0_S + 1.0, "dashboard-backend", 40.0, 60.0], [T0_S + 1.0, "rig", 30.0, 80.0]],
        backend_cpu_s=backend_cpu_s,
    )


def run(*parts: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """``result`` as its history keeps it."""
    return result(*parts, **kw).serialize()


def lagging(index: int = 1, connected: int = 5, **kw: Any) -> dict[str, Any]:
    """A subscriber process whose own loop ran late (180 ms P99, 540 ms stall)."""
    return part(index, connected, lag_ms=(180.0,) * 99 + (540.0,), **kw)
