"""PostgreSQL's csvlog (``log_destination = 'csvlog'``): one CSV record per message.

Every field PostgreSQL knows is in its column, so nothing is guessed: the message, its DETAIL
(bind parameters) and its STATEMENT come together and go to
:class:`~querywatch.logs.pg_messages.PgMessages` as one message. A quoted field may span lines
(a multi-line statement); Python's C ``csv`` reader follows it across chunks. Columns up to
``query`` are the same since PostgreSQL 9.0; later versions only added columns at the end.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Sequence

from querywatch.logs.model import LogStatement, ParseOptions
from querywatch.logs.pg_messages import ERROR_SEVERITIES, PgParser

# log_time, user_name, database_name, process_id, …, error_severity (11), sql_state_code (12),
# message (13), detail (14), …, query (19)
_TIME, _USER, _DB, _PID, _SESSION, _SEV, _STATE, _MSG, _DETAIL, _QUERY = (
    0,
    1,
    2,
    3,
    5,
    11,
    12,
    13,
    14,
    19,
)
MIN_COLUMNS = 20
FIELD_LIMIT = 1 << 28
_START = re.compile(rb"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?: [A-Za-z0-9+\-:]+)?,")


def sniff(head: Sequence[bytes]) -> bool:
    lines = [line for line in head if line.strip()]
    return bool(lines) and _START.match(lines[0]) is not None and lines[0].count(b",") >= 13


class Parser(PgParser):
    """A PostgreSQL csvlog file."""

    def __init__(self, options: ParseOptions | None = None) -> None:
        super().__init__(options)
        if csv.field_size_limit() < FIELD_LIMIT:  # a logged statement can be megabytes long
            csv.field_size_limit(FIELD_LIMIT)

    def starts_entry(self, line: bytes) -> bool:
        return _START.match(line) is not None

    def parse(self, chunks: Iterable[bytes]) -> Iterator[LogStatement]:
        out = self._out
        first_line = self.options.first_line
        reader = csv.reader(_lines(chunks))
        epoch = self.times.epoch
        log, error = self.messages.log, self.messages.error
        last_ts, last_at = "", 0.0
        while True:
            start = first_line + reader.line_num
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                self.skipped.add(start, "not CSV", str(exc))
                continue
            if len(row) < MIN_COLUMNS or not row[_TIME][:4].isdigit():
                self.skipped.add(start, "not a csvlog record", ",".join(row))
                continue
            ts = row[_TIME]
            if ts != last_ts:
                last_ts, last_at = ts, epoch(ts)
            sev = row[_SEV]
            session = row[_PID] or row[_SESSION]
            if sev == "LOG":
                log(
                    last_at,
                    session,
                    row[_USER],
                    row[_DB],
                    row[_MSG],
                    row[_DETAIL] or None,
                    row[_QUERY] or None,
                    start,
                )
            elif sev in ERROR_SEVERITIES:
                error(
                    last_at,
                    session,
                    row[_USER],
                    row[_DB],
                    sev,
                    row[_MSG],
                    row[_QUERY] or None,
                    row[_STATE],
                    start,
                )
            if out:  # at once: a followed log's reader may wait for the next line after this one
                self.lines = reader.line_num
                yield from out
                out.clear()
        self.lines = reader.line_num
        self.messages.finish(self.options.more_follows)
        yield from out
        out.clear()


def _lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Decoded lines with their line ends: the csv reader keeps them inside quoted fields (every
    text field of a csvlog is quoted, so a split at another line-end character is joined back)."""
    for chunk in chunks:
        yield from chunk.decode("utf-8", "replace").splitlines(keepends=True)
