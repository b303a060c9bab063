"""Helpers of the standalone probe commands: is the stack there, what did a probe measure.

Kept apart from cli.py so the wording of the human summary is plain functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import requests

from wsrig.config import RigConfig
from wsrig.record import StageRecord
from wsrig.summary import build_summary, write_summary

__all__ = ["print_record", "unreachable", "write_summary_for"]


def unreachable(cfg: RigConfig, timeout: float = 3.0) -> str | None:
    """None when backend and bot answer; else the first endpoint that does not, and why."""
    for url in (cfg.dashboard_url + "/ready", cfg.bot_url + "/health"):
        try:
            resp = requests.get(url, timeout=timeout)
        except requests.RequestException as exc:
            cause = exc.__class__.__name__
            if "refused" in str(exc).lower():
                cause = "connection refused"
            return f"GET {url}: {cause}"
        if not resp.ok:
            return f"GET {url}: HTTP {resp.status_code}"
    return None


def print_record(results: Path, stage: str) -> None:
    """A short human summary: each measured value against its threshold, then findings."""
    path = results / f"{stage}.record.json"
    if not path.is_file():
        click.echo(f"  (no record written: see {results / f'{stage}.log'})")
        return
    rec = StageRecord.load(path)
    for c in rec["metrics"].get("checks", []):
        limit = f" {c['op']} {c['threshold']}" if c.get("threshold") is not None else ""
        click.echo(f"  {'ok ' if c['passed'] else 'BAD'} {c['name']} = {c['value']}{c.get('unit') or ''}{limit}")
    for f in rec.get("findings", []):
        click.echo(f"  {f['severity']}: {f['message'][:300]}")


def write_summary_for(results: Path, stage: str, cfg: RigConfig, environment: dict[str, Any]) -> Path:
    """test_summary.json (and test_report.md) for one stage, as the suite writes them."""
    import datetime as dt

    from wsrig.report import publish
    from wsrig.stages import STAGES

    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    summary = build_summary(
        results,
        {s.name: s.name == stage for s in STAGES},
        suite_run_id=results.name,
        started_at=now,
        finished_at=now,
        environment=environment,
        thresholds=cfg.thresholds,
        profile=cfg.profile,
    )
    write_summary(summary, results / "test_summary.json")
    publish(results, summary)
    return results / "test_summary.json"
