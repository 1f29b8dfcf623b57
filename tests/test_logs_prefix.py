"""log_line_prefix: any prefix given with --prefix, the common ones detected, others read
generically. The lines are written as PostgreSQL writes them for each prefix (its elog.c)."""

from __future__ import annotations

import pytest

from querywatch.logs.model import ParseOptions
from querywatch.logs.pg_stderr import Parser, detect_prefix

MSG = "LOG:  duration: 1.250 ms  statement: SELECT 1\n"

CASES = [
    # (log_line_prefix, the prefix as written for pid 4242, user app, db shop, epoch of the time)
    ("%m [%p] ", "2026-05-01 12:00:00.250 UTC [4242] ", "", ""),
    ("%m [%p] %q%u@%d ", "2026-05-01 12:00:00.250 UTC [4242] app@shop ", "app", "shop"),
    (
        "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
        "2026-05-01 12:00:00 UTC [4242]: [7-1] user=app,db=shop,app=psql 16,client=10.1.2.3 ",
        "app",
        "shop",
    ),
    (
        "%t:%r:%u@%d:[%p]:",
        "2026-05-01 12:00:00 UTC:10.1.2.3(51234):app@shop:[4242]:",
        "app",
        "shop",
    ),
    (
        "%m [%p]: [%l-1] db=%d,user=%u ",
        "2026-05-01 12:00:00.250 UTC [4242]: [3-1] db=shop,user=app ",
        "app",
        "shop",
    ),
]


def parse(lines: str, prefix: str | None = None) -> Parser:
    parser = Parser(ParseOptions(prefix=prefix))
    parser.records = list(parser.parse([lines.encode()]))  # type: ignore[attr-defined]
    return parser


@pytest.mark.parametrize(("prefix", "written", "user", "db"), CASES)
def test_known_prefixes_are_detected_and_read(
    prefix: str, written: str, user: str, db: str
) -> None:
    line = written + MSG
    assert detect_prefix([line.encode()] * 3) == prefix
    for given in (None, prefix):
        parser = parse(line * 3, given)
        [rec, *_] = parser.records  # type: ignore[attr-defined]
        assert len(parser.records) == 3 and parser.skipped.count == 0  # type: ignore[attr-defined]
        assert (rec.session, rec.user, rec.database) == ("4242", user, db)
        assert (rec.text, rec.duration_ms) == ("SELECT 1", 1.25)
        assert int(rec.at) == 1777636800  # 2026-05-01 12:00:00 UTC


@pytest.mark.parametrize(
    ("prefix", "written"),
    [
        (
            "%n|%c|%-8u|%e ",
            "1777636800.250|6632aa00.10a2|app     |00000 ",
        ),  # epoch, session, padding
        ("[%p] %%%d%% ", "[4242] %shop% "),
        ("%m %q[%u] ", "2026-05-01 12:00:00.250 UTC [app] "),
    ],
)
def test_any_given_prefix_is_read(prefix: str, written: str) -> None:
    parser = parse((written + MSG) * 2, prefix)
    assert len(parser.records) == 2 and parser.skipped.count == 0  # type: ignore[attr-defined]


def test_q_leaves_out_what_a_background_process_lacks() -> None:
    lines = (
        "2026-05-01 12:00:00.250 UTC [10] LOG:  checkpoint starting: time\n"
        "2026-05-01 12:00:01.000 UTC [4242] app@shop " + MSG
    )
    parser = parse(lines, "%m [%p] %q%u@%d ")
    assert parser.skipped.count == 0 and [r.user for r in parser.records] == ["app"]  # type: ignore[attr-defined]


def test_an_unknown_prefix_is_read_generically() -> None:
    lines = "db1-primary postgres[4242]: [5-1] 2026-05-01 12:00:00 UTC user=app,db=shop " + MSG
    parser = parse(lines * 2)
    assert parser.prefix is None and parser.skipped.count == 0
    [rec, _] = parser.records  # type: ignore[attr-defined]
    assert (rec.session, rec.user, rec.database, rec.text) == ("4242", "app", "shop", "SELECT 1")
    assert int(rec.at) == 1777636800


def test_a_given_prefix_that_does_not_fit_skips_with_examples() -> None:
    parser = parse(CASES[0][1] + MSG, "%t [%p]: user=%u ")
    assert parser.records == [] and parser.skipped.count == 1  # type: ignore[attr-defined]
    assert "log_line_prefix" in parser.skipped.examples[0][1]
