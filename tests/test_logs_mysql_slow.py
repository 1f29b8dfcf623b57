"""MySQL / MariaDB slow logs: a real MariaDB slow log (the committed fixture, and a fresh one when
the machine's MariaDB is there), the MySQL forms MariaDB does not write, and bad input."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli_helpers import run_cli
from mariadb_slowlog import DATABASE, EXPECTED, STATEMENTS, available, capture
from querywatch.logs import formats
from querywatch.logs.model import LogStatement, ParseOptions
from querywatch.logs.mysql_slow import Parser, sniff
from querywatch.logs.reader import LogFile, range_chunks, split_ranges
from querywatch.sql.fingerprint import fingerprint

FIXTURE = Path(__file__).parent / "fixtures" / "mariadb-slow.log"


def parse(
    data: bytes, chunk: int = 1 << 20, **options: object
) -> tuple[Parser, list[LogStatement]]:
    parser = Parser(ParseOptions(**options))  # type: ignore[arg-type]
    chunks = []
    while data:  # cut at line ends, as the reader does
        cut = data.find(b"\n", chunk) + 1 or len(data)
        chunks.append(data[:cut])
        data = data[cut:]
    return parser, list(parser.parse(chunks))


def calls(records: list[LogStatement]) -> Counter[str]:
    return Counter(fingerprint(r.text, "mysql").normalized for r in records)


def check_capture(path: Path) -> None:
    """What the shop workload's slow log must read as, fresh or committed."""
    with LogFile(path) as log:
        parser = Parser()
        records = list(parser.parse(log.chunks()))
    assert parser.skipped.count == 0, parser.skipped.examples
    assert parser.lines == path.read_bytes().count(b"\n")
    # Only the workload's session (the machine's server may log others' slow statements too)
    ours = next(r.session for r in records if r.text == "SET SESSION long_query_time = 0")
    records = [r for r in records if r.session == ours]
    assert dict(calls(records)) == EXPECTED
    assert len(records) == STATEMENTS
    by_text = {r.text: r for r in records}
    # A multi-line statement keeps its lines, its "#" comment line and its string with "; \n";
    # the server header lines written by FLUSH SLOW LOGS right after it are not part of it.
    cheap = next(r for r in records if "cheap ones first" in r.text)
    assert cheap.text == (
        "SELECT name FROM items\n# cheap ones first\nWHERE price < 50 AND name <> 'a;\nb'\n"
        "ORDER BY price"
    )
    assert cheap.rows == 4 and cheap.rows_examined == 24
    sleep = by_text["SELECT sleep(0.05)"]
    assert 50.0 <= sleep.duration_ms < 5000.0  # type: ignore[operator]
    # Every entry has the session's thread id, the user, a time, and the schema it ran in
    assert {r.user for r in records} == {"root"}
    assert len({r.session for r in records}) == 1 and records[0].session.isdigit()
    assert all(r.at > 1.6e9 and r.duration_ms is not None for r in records)
    assert records == sorted(records, key=lambda r: r.line)
    count = by_text[f"SELECT count(*) FROM {DATABASE}.items"]
    assert count.database == "test" and count.rows_examined == 20
    assert by_text["SELECT count(*) FROM missing_table"].database == DATABASE
    assert sum(r.duration_ms for r in records) > 50.0  # type: ignore[misc]


def test_committed_mariadb_slow_log() -> None:
    check_capture(FIXTURE)


@pytest.mark.skipif(not available(), reason="no MariaDB at 127.0.0.1:3306 (root, no password)")
def test_fresh_mariadb_slow_log(tmp_path: Path) -> None:
    check_capture(capture(tmp_path / "slow.log"))


def test_digest_command_on_the_mariadb_slow_log(tmp_path: Path) -> None:
    """``querywatch digest`` tells the format itself and reports what the log holds: calls,
    total time (the log's Query_time summed), rows sent, first and last seen per fingerprint;
    redacted samples unless --show-values; the same with -j 2 on a file large enough to split."""
    result = run_cli("digest", "--json", "--limit", "100", str(FIXTURE))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)["data"]
    assert data["files"][0]["format"] == "mysql-slow" and data["skipped_lines"] == 0
    assert data["statements"] == STATEMENTS
    rows = {f["normalized"]: f for f in data["fingerprints"]}
    assert {k: f["calls"] for k, f in rows.items()} == EXPECTED
    _, records = parse(FIXTURE.read_bytes())
    for normalized, f in rows.items():
        mine = [r for r in records if fingerprint(r.text, "mysql").normalized == normalized]
        assert f["total_ms"] == pytest.approx(sum(r.duration_ms or 0 for r in mine), abs=0.01)
        assert f["rows"] == sum(r.rows or 0 for r in mine)
        assert f["first_seen"] == min(r.at for r in mine)
    select = rows["select name, price from items where id = ?"]
    assert select["rows"] == 30 and select["sample"]["redacted"] is True
    assert "?" in select["sample"]["text"]

    big = tmp_path / "slow.log"
    big.write_bytes(FIXTURE.read_bytes() * 2000)  # 70 MiB: -j 2 reads it in pieces
    result = run_cli("digest", "--json", "-j", "2", "--limit", "100", str(big), timeout=300)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)["data"]
    assert data["skipped_lines"] == 0
    assert {f["normalized"]: f["calls"] for f in data["fingerprints"]} == {
        k: v * 2000 for k, v in EXPECTED.items()
    }


def test_format_is_registered_and_sniffed() -> None:
    with LogFile(FIXTURE) as log:
        head = log.head()
    assert formats.guess(head, str(FIXTURE)).name == "mysql-slow"
    assert formats.get("mysql-slow").parser(ParseOptions()).dialect == "mysql"
    # the general query log starts with the same three server lines: not a slow log
    assert not sniff([*head[:3], b"261206  3:01:27\t   42 Query\tselect 1"])


def test_same_records_in_any_chunking() -> None:
    data = FIXTURE.read_bytes()
    _, whole = parse(data)
    for size in (1, 100, 4096):
        parser, records = parse(data, chunk=size)
        assert records == whole
        assert parser.skipped.count == 0
    # and without the final newline
    parser, records = parse(data.rstrip(b"\n"), chunk=333)
    assert records == whole and parser.lines == data.count(b"\n")


def test_followed_log_hands_out_each_poll() -> None:
    """``digest --follow`` feeds what each poll read, then an empty chunk: every whole entry
    read so far comes out before the parser asks for more, and nothing is lost or doubled."""
    data = FIXTURE.read_bytes()
    _, whole = parse(data)
    cut = data.index(b"# User@Host:", len(data) // 2)
    polls = [data[:cut], b"", b"", data[cut:], b""]
    parser = Parser()
    seen: list[LogStatement] = []
    given = 0

    def feed() -> Iterator[bytes]:
        nonlocal given
        for chunk in polls:
            given += 1
            yield chunk

    for record in parser.parse(feed()):
        seen.append(record)
        if record.line < data[:cut].count(b"\n"):
            assert given <= 2  # out before the next poll's lines were given
    assert seen == whole
    assert parser.skipped.count == 0 and parser.lines == data.count(b"\n")


def test_byte_ranges_together_read_the_whole_log(tmp_path: Path) -> None:
    """``digest -j N`` parses byte ranges that start at entries: together they are the file."""
    big = tmp_path / "slow.log"
    data = FIXTURE.read_bytes()
    big.write_bytes(data * 150)  # 5 MiB: large enough to be split
    ranges = split_ranges(big, 3, Parser().starts_entry)
    assert len(ranges) == 3
    total: Counter[str] = Counter()
    for r in ranges:
        parser = Parser()
        total += calls(list(parser.parse(range_chunks(r))))
        assert parser.skipped.count == 0
    assert total == Counter({k: v * 150 for k, v in EXPECTED.items()})


MYSQL8 = b"""\
/usr/sbin/mysqld, Version: 8.0.36 (MySQL Community Server - GPL). started with:
Tcp port: 3306  Unix socket: /var/run/mysqld/mysqld.sock
Time                 Id Command    Argument
# Time: 2026-12-06T10:15:02.123456Z
# User@Host: shop[shop] @ app1 [10.0.0.7]  Id:    12
# Query_time: 1.500000  Lock_time: 0.000100 Rows_sent: 3  Rows_examined: 90000
use shop;
SET timestamp=1796552102;
SELECT *
  FROM orders
 WHERE customer_id = 42;
# Time: 2026-12-06T10:15:03.000001Z
# User@Host: shop[shop] @ app1 [10.0.0.7]  Id:    12
# Query_time: 0.000020  Lock_time: 0.000000 Rows_sent: 0  Rows_examined: 0
SET timestamp=1796552103;
# administrator command: Quit;
# Time: 2026-12-06T10:15:04Z
# User@Host: report[report] @ localhost []  Id:    13
# Query_time: 0.2  Lock_time: 0.0 Rows_sent: 1  Rows_examined: 5 Thread_id: 13 Errno: 0 \
Killed: 0 Bytes_received: 0 Bytes_sent: 60
SELECT count(*) FROM orders;
"""


def test_mysql_forms() -> None:
    """MySQL 8's head (ISO times, "Id:" on the User@Host line, no Schema, log_slow_extra
    fields), ``use`` carried to later entries, an administrator command, an entry without
    ``SET timestamp`` (its time from ``# Time:``)."""
    parser, records = parse(MYSQL8)
    assert parser.skipped.count == 0 and parser.lines == MYSQL8.count(b"\n")
    first, quit_, count = records
    assert first.text == "SELECT *\n  FROM orders\n WHERE customer_id = 42"
    assert (first.user, first.session, first.database) == ("shop", "12", "shop")
    assert (first.duration_ms, first.lock_ms, first.rows, first.rows_examined) == (
        1500.0,
        0.1,
        3,
        90000,
    )
    assert first.at == 1796552102.0
    assert quit_.text == "administrator command: Quit"
    assert quit_.database == "shop"
    assert count.at == 1796552104.0 and count.user == "report" and count.session == "13"
    assert count.database == "shop"  # the server writes "use" only when it changes
    assert (count.duration_ms, count.rows, count.rows_examined) == (200.0, 1, 5)


def test_old_time_format_in_a_time_zone() -> None:
    log = b"""\
# Time: 071015 21:43:52
# User@Host: root[root] @ localhost []
# Query_time: 2  Lock_time: 0  Rows_sent: 1  Rows_examined: 0
select sleep(2) from n;
"""
    _, (utc,) = parse(log)
    _, (berlin,) = parse(log, timezone="Europe/Berlin")
    assert utc.at == 1192484632.0  # 2007-10-15 21:43:52 UTC
    assert berlin.at == utc.at - 7200  # CEST is UTC+2
    assert utc.duration_ms == 2000.0 and utc.rows == 1


def test_bad_input_is_counted_with_examples() -> None:
    """Garbage before the first entry, binary bytes, a head with no statement (the log cut
    there) and a damaged Query_time line: counted with examples, the rest still read."""
    log = (
        b"this is not a slow log line\n\x00\xff\xfe binary\n"
        + FIXTURE.read_bytes()
        + b"# User@Host: root[root] @  [127.0.0.1]\n# Query_time: x  Lock_time: y\n"
        b"SET timestamp=1796526097;\nselect 1;\n"
        b"# User@Host: root[root] @  [127.0.0.1]\n# Query_time: 0.1  Lock_time: 0.0  "
        b"Rows_sent: 0  Rows_examined: 0\nSET timestamp=1796526097;\n"
    )
    parser, records = parse(log)
    assert len(records) == STATEMENTS + 1
    damaged = records[-1]
    assert damaged.text == "select 1" and damaged.duration_ms is None
    assert parser.skipped.count == 3
    (l1, r1, t1), (l2, _, t2), (l3, r3, _) = parser.skipped.examples
    assert (l1, l2, t1) == (1, 2, "this is not a slow log line")
    assert "not inside a slow log entry" in r1 and "binary" in t2
    assert l3 == log.count(b"\n") - 2 and "without a statement" in r3
