"""The dashboard's parts on their own: the time range, the SQL highlighter and the SVG charts."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from querywatch.gate.baseline import DEFAULT_BASELINE_PATH
from querywatch.gate.runfile import DEFAULT_RUN_PATH
from querywatch.web.charts import Marker, Series, line_chart, nice_ceiling, pick_step, sparkline
from querywatch.web.pages.checks import BASELINE, RUN_FILE, checks_context
from querywatch.web.pages.sqltext import highlight, one_line
from querywatch.web.timerange import DEFAULT_PRESET, PRESETS, parse_range

NOW = 1_764_000_000.0


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_a_preset_is_relative_to_now_and_kept_as_itself(preset: str) -> None:
    rng = parse_range(preset, None, now=NOW)
    assert (rng.since, rng.until, rng.preset) == (NOW - PRESETS[preset], NOW, preset)
    assert rng.query() == {"since": preset} and rng.error is None


def test_no_range_is_the_last_hour() -> None:
    rng = parse_range(None, None, now=NOW)
    assert rng.preset == DEFAULT_PRESET == "1h" and rng.span == 3600


def test_a_custom_range_is_two_absolute_times_kept_in_links() -> None:
    rng = parse_range("2025-11-24T15:00", "2025-11-24T16:30:00", now=NOW)
    start = datetime(2025, 11, 24, 15, 0, tzinfo=UTC).timestamp()
    assert (rng.since, rng.until, rng.preset) == (start, start + 5400, None)
    assert rng.query() == {"since": "2025-11-24T15:00:00", "until": "2025-11-24T16:30:00"}
    assert rng.input_value("since") == "2025-11-24T15:00"
    assert parse_range(str(start), str(start + 60), now=NOW).span == 60  # epoch seconds too


@pytest.mark.parametrize(
    ("since", "until", "reason"),
    [
        ("soon", None, "cannot read 'soon' as a time"),
        ("2025-11-24T16:00", "2025-11-24T15:00", "must come after its start"),
        ("2025-01-01T00:00", "2025-03-01T00:00", "at most 31 days"),
        ("nan", None, "not a finite number"),
    ],
)
def test_a_range_that_cannot_be_used_falls_back_and_says_why(
    since: str, until: str | None, reason: str
) -> None:
    rng = parse_range(since, until, now=NOW)
    assert rng.preset == DEFAULT_PRESET and rng.error is not None and reason in rng.error


def test_sql_tokens_are_escaped_then_wrapped() -> None:
    html = str(highlight('SELECT "a<b>" FROM t WHERE x = ? AND y = $1 -- </pre><script>'))
    assert html.startswith('<span class="sql-keyword">SELECT</span> ')
    assert '<span class="sql-quoted">&#34;a&lt;b&gt;&#34;</span>' in html
    assert html.count('<span class="sql-placeholder">') == 2
    assert "<script>" not in html and "&lt;/pre&gt;&lt;script&gt;" in html


def test_a_literal_that_reached_the_store_is_never_shown() -> None:
    html = str(highlight("select * from users where email = 'ann@example.com' and id = 42"))
    assert "ann@example.com" not in html and "42" not in html
    assert html.count(">?</span>") == 2
    assert one_line("select 'secret', 3.5e2 from t2\n where a.b = 7") == (
        "select ?, ? from t2 where a.b = ?"
    )


def test_a_chart_draws_each_series_and_only_the_markers_in_its_range() -> None:
    points = [(NOW + 10 * i, float(i) if i % 5 else None) for i in range(30)]
    svg = str(
        line_chart(
            "db_time",
            "Database time",
            [Series("db_time", "database <time>", "ms/s", points)],
            NOW,
            NOW + 300,
            10,
            [
                Marker(
                    NOW + 100, "d<1>", 'deploy v2 "quoted", commit abc, by <eve>', "/deploys/d1"
                ),
                Marker(NOW - 100, "d0", "before the range"),
            ],
        )
    )
    path = re.search(
        r'<path class="series series-db_time" data-series="db_time" '
        r'data-points="24" d="([^"]*)"',
        svg,
    )
    assert path is not None and path.group(1).count("M") == 6  # broken at each gap
    assert svg.count('class="deploy-marker deploy"') == 1
    assert 'data-deploy-id="d&lt;1&gt;"' in svg
    assert "<title>deploy v2 &#34;quoted&#34;, commit abc, by &lt;eve&gt;</title>" in svg
    assert '<a href="/deploys/d1">' in svg and "database &lt;time&gt;" in svg
    assert svg.count('<rect class="hover"') == 24


def test_an_empty_chart_says_so() -> None:
    svg = str(
        line_chart("calls", "Calls", [Series("calls", "calls", "calls/s", [])], NOW, NOW + 60, 10)
    )
    assert "no data in this range" in svg and 'data-points="0"' in svg


def test_steps_and_scales_are_round() -> None:
    assert pick_step(3600) == 10 and pick_step(6 * 3600) == 60 and pick_step(86400) == 300
    assert pick_step(7 * 86400) == 1800 and pick_step(7 * 86400, 180) == 3600
    assert pick_step(3600, minimum=60) == 60
    assert [nice_ceiling(v) for v in (0, 0.3, 7, 12, 230, 2600)] == [1, 0.5, 10, 20, 250, 5000]
    spark = str(sparkline("db_time", "x <y>", [1.0, None, 3.0]))
    assert 'data-series="db_time"' in spark and "x &lt;y&gt;" in spark


def test_the_checks_page_looks_where_the_gate_writes(tmp_path: Path) -> None:
    assert (RUN_FILE, BASELINE) == (DEFAULT_RUN_PATH, DEFAULT_BASELINE_PATH)
    assert checks_context(tmp_path) == {"run": None, "baseline": None}
    (tmp_path / RUN_FILE).parent.mkdir()
    (tmp_path / RUN_FILE).write_text("{}")
    found = checks_context(tmp_path)["run"]
    assert found is not None and found["path"] == str(RUN_FILE) and found["bytes"] == 2
