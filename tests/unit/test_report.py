"""test_report.md: first screen, fault table and timeline, and how it renders as HTML."""

from __future__ import annotations

import re

from _report_fixtures import failing_fault_run, fault_scenario, stage, summary
from markdown_it import MarkdownIt

from wsrig.report import render_markdown

CHARTS = [
    {"stage": "fault_tolerance", "kind": "latency", "title": "latency over time", "file": "chart_ft_latency.png"},
    {"stage": "fault_tolerance", "kind": "faults", "title": "fault windows", "file": "chart_ft_faults.png"},
]


def _html(text: str) -> str:
    """Render as GitHub does for what matters here: CommonMark plus GFM tables."""
    return MarkdownIt("commonmark").enable("table").render(text)


def test_first_screen_names_failed_scenario_and_why():
    """The first lines give the verdict, the failed scenario, its finding and what passed."""
    text = render_markdown(failing_fault_run())
    head = "\n".join(text.splitlines()[:14])
    assert "**FAIL**" in head.splitlines()[0]
    assert "`dashboard_crash`" in head and "bot did not settle" in head
    assert "1 of 3 scenario(s) failed" in head
    assert "passed: `dashboard_offline_at_startup`, `backend_hang`" in head


def test_fault_table_has_window_column_with_offset_and_duration():
    """Each fault row says which fault, when (offset from the first one) and for how long."""
    text = render_markdown(failing_fault_run())
    row = next(line for line in text.splitlines() if line.startswith("| dashboard_crash | "))
    assert "crash at +10.0 s for 5.0 s" in row and "**FAIL**" in row
    assert "| scenario | fault window | lost |" in text


def test_fault_timeline_table_in_time_order():
    """The text timeline lists injection, heal and first message after heal per scenario."""
    text = render_markdown(failing_fault_run())
    lines = text.splitlines()
    start = lines.index("Fault windows, from the first injection:")
    rows = [line for line in lines[start + 2 : start + 8] if line.startswith("| ") and "---" not in line][1:]
    assert [r.split("|")[1].strip() for r in rows] == [
        "dashboard_offline_at_startup",
        "dashboard_crash",
        "backend_hang",
    ]
    assert "+10.0 s | +15.0 s | 5.0 s | +15.8 s (0.8 s after heal)" in rows[1]


def test_renders_to_html_tables_images_and_links():
    """Rendered as HTML: real tables (not pipes in paragraphs), inline chart images, log links."""
    html = _html(render_markdown(failing_fault_run(), CHARTS, "junit.xml"))
    assert html.count("<table>") >= 5  # stages, checks, scenarios, timeline, environment
    assert re.search(r'<img src="chart_ft_latency.png" alt="latency over time"', html)
    assert '<a href="fault_tolerance.log">' in html and '<a href="fault_tolerance.junit.xml">' in html
    assert '<a href="junit.xml">' in html
    assert "|---" not in html  # every separator row was taken as a table


def test_every_table_row_has_the_header_column_count():
    """A stray pipe or newline in a finding cannot break a table's shape."""
    s = failing_fault_run()
    s["stages"][1]["scenarios"][1]["findings"][0]["message"] = "a | b\nc"
    html = _html(render_markdown(s))
    for table in re.findall(r"<table>.*?</table>", html, re.S):
        head = len(re.findall(r"<th[ >]", table.split("</thead>")[0]))
        for row in re.findall(r"<tr>(.*?)</tr>", table.split("</thead>")[1], re.S):
            assert len(re.findall(r"<td[ >]", row)) == head


def test_checks_show_value_next_to_threshold_and_stage_key_figures():
    """Each measured value sits beside its threshold; the stage table gives the worst breach."""
    s = summary([stage("load", "failed", metrics={"checks": [
        {"name": "p99_ms", "value": 250.0, "threshold": 100, "op": "<=", "unit": " ms", "passed": False},
        {"name": "throughput_msgs_s", "value": 900.0, "threshold": 500, "op": ">=", "unit": "", "passed": True},
    ]})], verdict="fail")  # fmt: skip
    text = render_markdown(s)
    assert "| p99_ms | 250 ms | <= 100 ms | **NO** |" in text
    assert "**1 of 2 over**: p99_ms 250 ms (threshold <= 100 ms)" in text
    assert "- **load** FAIL:" in text


def test_container_error_lines_are_quoted_bounded():
    """Error lines of container logs are quoted in a code block, with the total count."""
    s = failing_fault_run()
    s["environment"]["container_errors"] = {
        "container_bot.log": {"count": 12, "lines": ["ERROR boom"] * 10},
        "container_proxy.log": {"count": 0, "lines": []},
    }
    text = render_markdown(s)
    assert "[container_bot.log](container_bot.log): 12 error line(s) (first 10)" in text
    assert text.count("ERROR boom") == 10
    assert "no error lines" in text


def test_passing_run_has_no_failure_section():
    """A green run says PASS and lists what passed, with no 'What failed'."""
    s = summary([stage("fault_tolerance", scenarios=[fault_scenario("bot_crash", 0)])])
    text = render_markdown(s)
    assert "**PASS**" in text.splitlines()[0] and "What failed" not in text
    assert "Passed: fault_tolerance." in text


def test_a_stages_pictures_are_shown_inline_in_its_section():
    """The browser stage's screenshots (StageRecord.add_picture) appear as images in its section."""
    s = summary([stage("browser", pictures=[{"file": "browser.steady.png", "title": "The page, live"}])])
    text = render_markdown(s)
    section = text[text.index("## browser") :]
    assert "![The page, live](browser.steady.png)" in section
    assert re.search(r'<img src="browser.steady.png" alt="The page, live"', _html(text))


def test_a_rows_comparisons_show_headlines_and_every_disagreement():
    """Comparisons in a row: headlines and each mismatch with both sources and values, no agreeing detail."""
    compare = {"subject": "", "a_source": "bot /stats", "b_source": "backend /api/websocket/status run"}
    comparisons = [
        {**compare, "check": "last seq", "a_value": 3157, "b_value": 3157, "ok": True, "key": True},
        {**compare, "check": "acked seq", "a_value": 3157, "b_value": 3150, "ok": False, "key": True},
        {**compare, "check": "trades", "subject": "ETHUSD", "a_value": 4, "b_value": 3, "ok": False, "key": False},
        {**compare, "check": "trades", "subject": "BTCUSD", "a_value": 9, "b_value": 9, "ok": True, "key": False},
    ]
    row = {"name": "reconciliation", "status": "failed", "passed": False, "findings": [], "comparisons": comparisons}
    text = render_markdown(summary([stage("integration", "failed", scenarios=[row])], verdict="fail"))
    assert "| last seq | bot /stats | 3157 | backend /api/websocket/status run | 3157 | pass |" in text
    assert "| acked seq | bot /stats | 3157 | backend /api/websocket/status run | 3150 | **FAIL** |" in text
    assert "| trades: ETHUSD | bot /stats | 4 |" in text and "trades: BTCUSD" not in text


def test_a_scenario_table_with_many_figures_leaves_them_to_the_record():
    """Rows carrying thirty figures (a load run's) give a table a person can read: the
    correctness columns and the verdict, and a line saying where the rest are."""
    many = {f"figure_{i}": float(i) for i in range(30)}
    rows = [{"name": "fanout", "passed": True, "lost": 0, "expected": "close 1008", "observed": "close 1008", **many}]
    text = render_markdown(summary([stage("load", scenarios=rows)]))
    header = next(line for line in text.splitlines() if line.startswith("| scenario | fault window"))
    assert "figure_" not in header and header.endswith("| verdict | expected | observed |")
    assert "30 more figures per scenario are in the stage's record.json" in text
    few = render_markdown(summary([stage("load", scenarios=[{"name": "x", "passed": True, "rate": 5.0}])]))
    assert "| verdict | rate |" in few
