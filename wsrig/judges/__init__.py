"""Judges of the stages whose probes record a ``ProbeHistory``: raw measurements -> checks and findings.

Pure: no I/O, no clock. One module per stage, each with a ``RULES`` table (probe name ->
rule); a rule returns the checks (a value against its threshold, as the report prints
them) and any finding a threshold cannot express. ``judge_probe`` turns them into the
scenario row the stage records and ``wsrig judge`` computes again from the stored history.
A rule that judges a latency with the measuring client's own health reads the rig's limits
(``limits["rig_health"]``) and may name its row ``invalid`` (``status`` in its figures).
Adding a stage's judges: a module here and one line in ``JUDGES``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wsrig.judges import cluster, connectivity, integration, load, message_flow, performance, security
from wsrig.judges.base import Rule
from wsrig.record import scenario_row
from wsrig.righealth import RigLimits
from wsrig.scenario_history import ProbeHistory

__all__ = ["JUDGES", "judge_probe"]

#: stage -> probe name -> its rule
JUDGES: dict[str, dict[str, Rule]] = {
    "connectivity": connectivity.RULES,
    "message_flow": message_flow.RULES,
    "integration": integration.RULES,
    "security": security.RULES,
    "load": load.RULES,
    "performance": performance.RULES,
    "cluster": cluster.RULES,
}


def judge_probe(h: ProbeHistory, limits: Mapping[str, Any], rig_limits: RigLimits | None = None) -> dict[str, Any]:
    """The probe's row: its checks (each broken one an error finding) and its own findings.
    In a row its rule names ``invalid`` the broken checks are the rig's: its ``invalid_reasons`` say why."""

    rule = JUDGES.get(h.stage, {}).get(h.name)
    if rule is None:
        raise ValueError(f"no judge for probe {h.stage}/{h.name}")
    checks, findings, figures = rule(h.measured, {**limits, "rig_health": rig_limits} if rig_limits else limits)
    if figures.get("status") != "invalid":
        findings = [c.finding() for c in checks if not c.passed] + findings
    return scenario_row(h.name, "none", findings, checks=[c.serialize() for c in checks], **figures)
