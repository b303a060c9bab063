"""Record a load scenario: its raw runs kept as a history, the judge's row, the CSV series.

One place so the load and performance stages record a scenario the same way. Nothing
here decides: the row comes from ``wsrig.judges`` (``load``, ``performance``), and the
series the charts draw are read from the same raw runs the judge read.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from wsrig.config import RigConfig
from wsrig.judges import judge_probe
from wsrig.judges.load import LoadRun
from wsrig.load.resources import COLUMNS as RESOURCE_COLUMNS
from wsrig.load.runner import LoadResult
from wsrig.probe import record_judged, results_dir
from wsrig.record import StageRecord
from wsrig.righealth import RigLimits
from wsrig.scenario_history import ProbeHistory

__all__ = ["record_load", "reference_config"]

LATENCY_COLUMNS = ["t", "delivered", "p50_ms", "p99_ms", "max_ms"]
#: Row figures that are also the stage's metrics (the trend reads them there).
STAGE_METRICS = ("saturation", "reference_saturation", "saturation_ratio_to_reference")


def reference_config(cfg: RigConfig) -> RigConfig:
    """The same rig pointed at the reference broadcast server (DESIGN.md section 9)."""
    return dataclasses.replace(cfg, dashboard_ws_url=cfg.reference_ws_url, dashboard_service=cfg.reference_service)


def _series(record: StageRecord, name: str, raw: dict[str, Any]) -> None:
    """Latency per second of intended send time (parts merged) and resources, as CSVs for the charts."""
    run, results = LoadRun(raw), results_dir()
    if per_second := run.per_second():
        record.add_series(results, f"{name}_latency", "latency", LATENCY_COLUMNS, per_second, unit="ms")
    if resources := raw.get("resources"):
        record.add_series(results, f"{name}_resources", "resources", RESOURCE_COLUMNS, resources)


def record_load(
    record: StageRecord,
    limits: dict[str, Any],
    rig_limits: RigLimits,
    name: str,
    runs: dict[str, LoadResult],
    **measured: Any,
) -> None:
    """Keep scenario ``name``'s runs (keyed by their row names) and readings in a
    ``ProbeHistory``, let the stage's judge decide, record its row and the rows of its
    measurement runs (a reference run, saturation steps), and end the test by the row.

    The history is judged as it is stored (after a JSON round trip), so ``wsrig judge``
    reads exactly what the run judged.
    """
    raw = {run_name: result.serialize() for run_name, result in runs.items()}
    history = ProbeHistory(name=name, stage=record.stage, measured=json.loads(json.dumps({"runs": raw, **measured})))
    row = judge_probe(history, limits, rig_limits)
    rows = [*row.pop("runs", []), row]
    for sub in rows[:-1]:
        record.scenario(**sub)
    for r in rows:
        if r["name"] in history.measured["runs"]:
            _series(record, r["name"], history.measured["runs"][r["name"]])
    record.metrics.update({key: row[key] for key in STAGE_METRICS if key in row})
    record_judged(record, history, row)
