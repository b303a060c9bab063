"""Charts: which ones a summary calls for, reading series CSVs, and real PNGs drawn."""

from __future__ import annotations

from _report_fixtures import T0, failing_fault_run, stage, summary

from wsrig.charts import fault_spans, load_series, make_charts, plan_charts


def test_plan_follows_series_kinds_and_fault_windows():
    """Latency series and fault windows give a latency chart and a fault timeline; nothing else."""
    kinds = [(c.stage, c.kind) for c in plan_charts(failing_fault_run())]
    assert kinds == [("fault_tolerance", "latency"), ("fault_tolerance", "faults")]


def test_plan_for_load_like_stage():
    """Throughput, resources and percentile blocks each get their chart."""
    st = stage("load", series=[
        {"name": "rate", "kind": "throughput", "file": "load.rate.csv", "columns": ["t", "msgs_s"]},
        {"name": "res", "kind": "resources", "file": "load.res.csv", "columns": ["t", "container", "cpu_pct"]},
    ], scenarios=[{"name": "sustained", "passed": True,
                   "latency_ms": {"p50": 1, "p90": 2, "p99": 3, "p999": 4, "max": 5, "count": 10}}])  # fmt: skip
    assert [c.kind for c in plan_charts(summary([st]))] == ["percentiles", "throughput", "resources"]


def test_fault_spans_skip_scenarios_without_window():
    """Only complete windows are shaded, in time order."""
    s = failing_fault_run()["stages"][1]
    s["scenarios"].append({"name": "slow_subscriber", "passed": True})
    assert [x.scenario for x in fault_spans(s)] == ["dashboard_offline_at_startup", "dashboard_crash", "backend_hang"]


def test_load_series_wide_and_long(tmp_path):
    """Wide CSVs give columns; a text column groups rows (one line per container)."""
    (tmp_path / "a.csv").write_text("t,cpu_pct,mem_mb\n1,5,100\n2,6,101\n")
    cols, groups = load_series(tmp_path / "a.csv")
    assert cols["cpu_pct"] == [5.0, 6.0] and not groups
    (tmp_path / "b.csv").write_text("t,container,cpu_pct\n1,bot,5\n1,backend,7\n2,bot,6\n")
    _, groups = load_series(tmp_path / "b.csv")
    assert groups["bot"]["cpu_pct"] == [5.0, 6.0] and groups["backend"]["t"] == [1.0]


def test_make_charts_writes_pngs(tmp_path):
    """From a results folder with a latency CSV, PNG files are written and returned."""
    rows = "\n".join(f"{T0 + 8 + i},{1 + i % 3},{5 + i},{9 + i},40" for i in range(12))
    (tmp_path / "fault_tolerance.dashboard_crash_latency.csv").write_text("t,p50_ms,p99_ms,max_ms,count\n" + rows)
    made = make_charts(failing_fault_run(), tmp_path)
    assert [c.file for c in made] == ["chart_fault_tolerance_latency.png", "chart_fault_tolerance_faults.png"]
    for c in made:
        assert (tmp_path / c.file).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_csv_draws_no_chart(tmp_path):
    """A series whose CSV is gone is left out rather than failing the report."""
    made = make_charts(failing_fault_run(), tmp_path)
    assert [c.kind for c in made] == ["faults"]


def test_break_gaps_inserts_nan_in_silences():
    """A silence longer than 2.5 median steps breaks the line instead of bridging it."""
    import math

    from wsrig.charts import break_gaps

    xs, ys = break_gaps([0, 1, 2, 3, 10, 11], [1, 1, 1, 1, 9, 1])
    assert len(xs) == 7 and math.isnan(ys[4]) and xs[4] == 6.5


def test_shared_csv_splits_latency_and_rate_columns(tmp_path):
    """A load CSV (t, delivered, p50_ms, ...) as latency and throughput: each chart takes its columns."""
    from wsrig.charts import _latency_columns

    (tmp_path / "load.sustained.csv").write_text("t,delivered,p50_ms,p99_ms,max_ms\n1,100,1,2,3\n2,90,1,4,5\n")
    cols, _ = load_series(tmp_path / "load.sustained.csv")
    assert _latency_columns(cols) == ["p50_ms", "p99_ms", "max_ms"]
    series = [{"name": "sustained", "kind": k, "file": "load.sustained.csv", "columns": list(cols)} for k in
              ("latency", "throughput")]  # fmt: skip
    made = make_charts(summary([stage("load", series=series)]), tmp_path)
    assert [c.kind for c in made] == ["latency", "throughput"]


def test_latency_title_says_shaded_only_when_there_are_fault_windows():
    """A load stage's latency chart has no fault windows, so its title does not claim any."""
    series = [{"name": "sustained", "kind": "latency", "file": "load.sustained.csv", "columns": ["t", "p99_ms"]}]
    (load,) = plan_charts(summary([stage("load", series=series)]))
    assert load.title == "load: end-to-end latency over time"
    faulted = next(c for c in plan_charts(failing_fault_run()) if c.kind == "latency")
    assert faulted.title == "fault_tolerance: end-to-end latency over time (fault windows shaded)"
