"""``wsrig trend``: key figures over runs, rolling baselines, regressions, tolerant loading.

Every run is a copy of a real summary (tests/unit/data/test_summary.json: a passing run on
the 2-core dev machine, trimmed to what the figures read) with figures edited per test.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from wsrig.cli import main
from wsrig.trend import COLUMNS, TrendSettings, analyse, load_runs, load_settings

DATA = Path(__file__).parent / "data" / "test_summary.json"
ROOT = Path(__file__).resolve().parents[2]
REAL = json.loads(DATA.read_text())


def _stage(summary: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in summary["stages"] if s["name"] == name)


def _scenario(summary: dict[str, Any], stage: str, name: str) -> dict[str, Any]:
    return next(s for s in _stage(summary, stage)["scenarios"] if s["name"] == name)


def _write(
    root: Path,
    n: int,
    *,
    fanout_p99: float = 8.0,
    saturation: float | None = None,
    verdict: str = "pass",
    errors: int = 0,
) -> str:
    """Run number ``n`` (one hour apart) into ``root/full_suite_<ts>/``; returns its id."""
    run = f"20261206_{n:02d}0000"
    s = copy.deepcopy(REAL)
    s.update(suite_run_id=run, started_at=f"2026-12-06T{n:02d}:00:00+00:00", verdict=verdict)
    s["environment"]["git_sha"] = f"{n:07d}abcdef"
    _scenario(s, "load", "fanout")["latency_ms"]["p99"] = fanout_p99
    if saturation is not None:
        _stage(s, "performance")["metrics"]["saturation"]["best_deliveries_per_s"] = saturation
    if verdict == "invalid":
        _stage(s, "load")["status"] = "invalid"
    _stage(s, "security")["findings"] = [{"severity": "error", "message": f"finding {i}"} for i in range(errors)]
    folder = root / f"full_suite_{run}"
    folder.mkdir(parents=True)
    (folder / "test_summary.json").write_text(json.dumps(s))
    return run


def _series(root: Path, p99s: list[float], **last: Any) -> list[str]:
    """Clean runs with these fan-out P99s, then (if ``last`` is given) one more run with it."""
    runs = [_write(root, i, fanout_p99=p) for i, p in enumerate(p99s)]
    if last:
        runs.append(_write(root, len(p99s), **last))
    return runs


def _trend(*args: str) -> Any:
    return CliRunner().invoke(main, ["trend", *map(str, args)])


CLEAN = [8.0, 8.4, 7.9, 8.2, 8.1]


def test_fixture_is_a_real_summary():
    """The fixture is a whole summary that validates against the schema, not a sketch of one."""
    import wscontract

    assert wscontract.validate_summary(REAL) == []
    assert REAL["environment"]["host"]["cpus"] == 2 and REAL["verdict"] == "pass"


def _settings(**changed) -> TrendSettings:
    return dataclasses.replace(load_settings(ROOT / "config" / "trend.toml"), **changed)


def test_config_file_is_the_one_place_for_the_settings(tmp_path):
    """config/trend.toml holds the settings; a file that cannot be used says why (no fallback copy)."""
    from_file = _settings()
    assert (from_file.window, from_file.margin, from_file.margins["fanout_p99_ms"]) == (5, 0.2, 1.0)
    with pytest.raises(ValueError, match="unknown"):
        TrendSettings.from_toml({"trend": {"windw": 3}})
    with pytest.raises(ValueError, match="missing key.*window"):
        TrendSettings.from_toml({"trend": {"margin": 0.2, "last": 10, "min_baseline_runs": 3}})
    with pytest.raises(ValueError, match="cannot be used"):
        load_settings(tmp_path / "absent.toml")


def test_loader_one_row_per_run_stage_scenario_metric(tmp_path):
    """The long frame: the columns asked for, unique keys, runs in time order, run-level fields."""
    runs = [_write(tmp_path, n) for n in (3, 1, 2)]  # written out of order
    frame = load_runs(tmp_path, warn=pytest.fail)
    assert list(frame.columns) == COLUMNS
    assert not frame.duplicated(["run", "stage", "scenario", "metric"]).any()
    assert list(dict.fromkeys(frame["run"])) == sorted(runs)
    assert frame["started_at"].is_monotonic_increasing
    first = frame.iloc[0]
    assert (first["profile"], first["host_cores"], first["git_sha"]) == ("quick", 2, "0000001abcdef")
    fanout = frame[(frame["scenario"] == "fanout") & (frame["metric"] == "latency_p99_ms")]
    assert list(fanout["value"]) == [8.0, 8.0, 8.0] and set(fanout["unit"]) == {"ms"}
    stage_level = frame[frame["scenario"] == ""]
    assert {"duration_s", "error_findings", "saturation_per_s", "saturation_ratio"} <= set(stage_level["metric"])
    recovery = frame[(frame["stage"] == "fault_tolerance") & (frame["metric"] == "recovery_s")]
    assert "dashboard_crash" in set(recovery["scenario"])


def test_clean_series_no_regression(tmp_path):
    """Runs within noise of each other: exit 0, even with --fail-on-regression."""
    _series(tmp_path, [*CLEAN, 8.3])
    result = _trend(tmp_path, "--fail-on-regression")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1].startswith("no regression")
    assert "!" not in "".join(line.split("  ", 1)[-1] for line in result.stdout.splitlines()[1:-2])


def test_worse_fanout_p99_fails_only_with_the_flag(tmp_path):
    """The latest fan-out P99 +147 % over its baseline: a regression, named in the summary line;
    exit 1 with --fail-on-regression and 0 without it."""
    runs = _series(tmp_path, CLEAN, fanout_p99=20.0)
    flagged = _trend(tmp_path, "--fail-on-regression")
    assert flagged.exit_code == 1, flagged.output
    last = flagged.stdout.strip().splitlines()[-1]
    assert last.startswith("1 regression: load fan-out P99 +147 % vs baseline (20 ms, baseline 8.1 ms)")
    assert runs[-1] in last
    row = next(line for line in flagged.stdout.splitlines() if line.startswith("load fan-out P99"))
    assert "20!" in row and row.endswith("+147 % !")
    plain = _trend(tmp_path)
    assert plain.exit_code == 0 and plain.stdout == flagged.stdout


def test_lower_saturation_is_a_regression(tmp_path):
    """Higher is better for saturation: the latest run meeting half the deliveries/s regresses."""
    _series(tmp_path, CLEAN, saturation=40000.0)
    result = _trend(tmp_path, "--fail-on-regression")
    assert result.exit_code == 1
    assert "saturation: highest deliveries met -50 % vs baseline" in result.stdout.splitlines()[-1]


def test_new_error_findings_are_a_regression(tmp_path):
    """A stage with error findings where its baseline had none regresses (a zero baseline: no %)."""
    _series(tmp_path, CLEAN, errors=2)
    result = _trend(tmp_path, "--fail-on-regression")
    assert result.exit_code == 1
    assert "error findings: security 2 vs baseline 0" in result.stdout.splitlines()[-1]


def test_change_within_the_margin_is_no_regression(tmp_path):
    """+11 % is inside the margin; --margin 0.05 (for every figure) makes the same run a regression."""
    _series(tmp_path, CLEAN, fanout_p99=9.0)
    result = _trend(tmp_path, "--fail-on-regression")
    assert result.exit_code == 0 and result.stdout.strip().splitlines()[-1].startswith("no regression")
    tight = _trend(tmp_path, "--fail-on-regression", "--margin", "0.05")
    assert tight.exit_code == 1 and "load fan-out P99 +11 %" in tight.stdout


def test_window_picks_the_previous_runs(tmp_path):
    """--window 2: the baseline is the median of the two runs before, not of all of them."""
    _series(tmp_path, [20.0, 20.0, 20.0, 8.0, 8.0], fanout_p99=11.0)
    wide = _trend(tmp_path, "--fail-on-regression")  # median of 5 = 20: 11 ms is an improvement
    assert wide.exit_code == 0
    narrow = _trend(tmp_path, "--fail-on-regression", "--window", "2", "--margin", "0.2")  # median of 8, 8
    assert narrow.exit_code == 1 and "+38 % vs baseline" in narrow.stdout


def test_invalid_runs_are_excluded_from_baselines(tmp_path):
    """Invalid runs with an implausibly fast P99 feed no baseline, and are not judged themselves:
    were they counted, the latest 9 ms would be judged against a 2 ms median."""
    runs = [_write(tmp_path, i, fanout_p99=8.0) for i in range(3)]
    runs += [_write(tmp_path, i, fanout_p99=2.0, verdict="invalid") for i in (3, 4)]
    runs.append(_write(tmp_path, 5, fanout_p99=9.0))
    settings = _settings(window=3)
    result = analyse(load_runs(tmp_path, warn=pytest.fail), settings)
    assert result.baselines.at[runs[-1], "fanout_p99_ms"] == 8.0
    assert not result.judged.at[runs[3], "fanout_p99_ms"] and not result.regressed[runs[3] : runs[4]].any().any()
    assert result.regressions(runs[-1]) == []
    cli = _trend(tmp_path, "--window", "3", "--fail-on-regression")
    assert cli.exit_code == 0
    header = cli.stdout.splitlines()[2]
    assert header.count("INVALID") == 2
    row = next(line for line in cli.stdout.splitlines() if line.startswith("load fan-out P99"))
    assert row.count("(2)") == 2


def test_latest_invalid_run_judges_neither_way(tmp_path):
    """A latest run that is invalid, however slow, does not fail the trend."""
    _series(tmp_path, CLEAN, fanout_p99=200.0, verdict="invalid")
    result = _trend(tmp_path, "--fail-on-regression")
    assert result.exit_code == 0
    assert "its timing figures judge neither way" in result.stdout.splitlines()[-1]


def test_other_profile_is_not_judged_against_quick_runs(tmp_path):
    """A `full` run has no baseline among `quick` runs: shown (its profile in the header), not judged."""
    _series(tmp_path, CLEAN)
    run = _write(tmp_path, 9, fanout_p99=20.0)
    summary_file = tmp_path / f"full_suite_{run}" / "test_summary.json"
    summary_file.write_text(summary_file.read_text().replace('"profile": "quick"', '"profile": "full"'))
    result = _trend(tmp_path, "--fail-on-regression")
    assert result.exit_code == 0 and "no regression" in result.stdout.splitlines()[-1]
    assert "full/2c" in result.stdout.splitlines()[4] and "quick/2c" in result.stdout.splitlines()[4]


def test_broken_folders_are_skipped_with_one_line_each(tmp_path):
    """No summary yet, a half-written file, a file that is not JSON, an older schema, a summary
    missing fields and a stray file: one line each on stderr, no traceback, the rest is read."""
    _series(tmp_path, CLEAN)
    (tmp_path / "full_suite_20261207_000000").mkdir()
    (tmp_path / "full_suite_20261207_000000" / "load.log").write_text("running ...\n")
    half = json.dumps(REAL)
    (tmp_path / "full_suite_20261207_010000").mkdir()
    (tmp_path / "full_suite_20261207_010000" / "test_summary.json").write_text(half[: len(half) // 2])
    (tmp_path / "full_suite_20261207_020000").mkdir()
    (tmp_path / "full_suite_20261207_020000" / "test_summary.json").write_bytes(b"\x89PNG\r\n\x1a\n\x00binary")
    old = {**copy.deepcopy(REAL), "schema_version": 0, "suite_run_id": "old"}
    (tmp_path / "full_suite_20261207_030000").mkdir()
    (tmp_path / "full_suite_20261207_030000" / "test_summary.json").write_text(json.dumps(old))
    partial = copy.deepcopy(REAL)
    for key in ("environment", "verdict", "suite_run_id", "started_at"):
        del partial[key]
    (tmp_path / "full_suite_20261207_040000").mkdir()
    (tmp_path / "full_suite_20261207_040000" / "test_summary.json").write_text(json.dumps(partial))
    (tmp_path / "full_suite_20261207_050000.tar.gz").write_bytes(b"\x1f\x8b")

    result = _trend(tmp_path)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    err = result.stderr.splitlines()
    expect = {
        "full_suite_20261207_000000": "no test_summary.json",
        "full_suite_20261207_010000": "not valid JSON",
        "full_suite_20261207_020000": "not valid JSON",
        "full_suite_20261207_030000": "schema_version 0",
        "full_suite_20261207_040000": "read full_suite_20261207_040000 partially",
        "full_suite_20261207_050000.tar.gz": "not a folder",
    }
    for folder, words in expect.items():
        lines = [line for line in err if folder in line]
        assert len(lines) == 1 and words in lines[0] and lines[0].startswith("trend: "), (folder, err)
    assert "missing or unreadable suite_run_id, verdict, environment" in next(line for line in err if "040000" in line)
    # the partial run is read, named after its folder and placed by the folder's timestamp
    assert "6 run(s) read" in result.stdout and "latest 20261207_040000" in result.stdout


def test_no_usable_runs_exit_2(tmp_path):
    """Nothing to read (empty, only broken runs, or no such folder): a clear message and exit 2."""
    empty = _trend(tmp_path)
    assert empty.exit_code == 2 and "no usable run" in empty.stderr and empty.stdout == ""
    (tmp_path / "full_suite_20261207_000000").mkdir()
    (tmp_path / "full_suite_20261207_000000" / "test_summary.json").write_text("{")
    broken = _trend(tmp_path)
    assert broken.exit_code == 2 and "not valid JSON" in broken.stderr and "no usable run" in broken.stderr
    missing = _trend(tmp_path / "nowhere")
    assert missing.exit_code == 2 and "not a folder" in missing.stderr


def test_last_limits_the_columns(tmp_path):
    """--last 3: three run columns; the baselines still use every run read."""
    runs = _series(tmp_path, CLEAN, fanout_p99=20.0)
    result = _trend(tmp_path, "--last", "3")
    header = result.stdout.splitlines()[1]
    assert header.count("1206-") == 3 and "1206-0500" in header and "1206-0200" not in header
    assert "1 regression" in result.stdout.splitlines()[-1] and runs[-1] in result.stdout


def test_markdown_table(tmp_path):
    """--markdown: a GitHub table (runs as columns, regressions bold) and the summary line."""
    _series(tmp_path, CLEAN, fanout_p99=20.0)
    result = _trend(tmp_path, "--markdown")
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| figure"))
    assert set(lines[header + 1]) <= set("|:-") and lines[header].count("|") == lines[header + 1].count("|")
    assert "1206-0500<br>pass" in lines[header]
    row = next(line for line in lines if line.startswith("| load fan-out P99"))
    assert "**20!**" in row and row.count("|") == lines[header].count("|")
    assert lines[-1].startswith("**1 regression: load fan-out P99 +147 %")


def test_charts_written(tmp_path):
    """One PNG per key figure, named trend_<figure>.png; --charts alone writes RESULTS_ROOT/trend."""
    pytest.importorskip("matplotlib")
    _series(tmp_path, CLEAN, fanout_p99=20.0)
    out = tmp_path / "charts"
    result = _trend(tmp_path, "--charts", out)
    assert result.exit_code == 0, result.output
    pngs = {p.name: p for p in out.glob("trend_*.png")}
    for name in ("fanout_p99_ms", "fanout_p99_ratio", "saturation_per_s", "connect_p99_ms", "findings_load",
                 "duration_fault_tolerance", "recovery_dashboard_crash"):  # fmt: skip
        png = pngs[f"trend_{name}.png"]
        assert png.stat().st_size > 1000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"{len(pngs)} chart(s) written to {out}" in result.stderr
    default = _trend(tmp_path, "--charts")
    assert default.exit_code == 0 and (tmp_path / "trend" / "trend_fanout_p99_ms.png").is_file()


def test_a_reports_trend_charts_come_from_the_runs_beside_it(tmp_path):
    """publish() embeds trend charts when earlier runs sit beside the run: the key figures and
    every figure the run regressed on; a run alone gets none."""
    from wsrig.trend_charts import report_trend_charts

    config = ROOT / "config" / "trend.toml"
    alone = _write(tmp_path / "alone", 0)
    assert report_trend_charts(tmp_path / "alone" / f"full_suite_{alone}", config, pytest.fail) == []
    runs = _series(tmp_path / "many", CLEAN, fanout_p99=20.0)
    charts = report_trend_charts(tmp_path / "many" / f"full_suite_{runs[-1]}", config, pytest.fail)
    names = {p.name for p in charts}
    assert "trend_fanout_p99_ms.png" in names and all(p.stat().st_size > 1000 for p in charts)
    assert all(p.parent == tmp_path / "many" / f"full_suite_{runs[-1]}" / "trend" for p in charts)
