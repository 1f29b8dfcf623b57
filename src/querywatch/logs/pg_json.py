"""PostgreSQL's jsonlog (``log_destination = 'jsonlog'``, PostgreSQL 15+): one object a line.

Keys are PostgreSQL's own (``timestamp``, ``user``, ``dbname``, ``pid``, ``error_severity``,
``state_code``, ``message``, ``detail``, ``statement``); a message arrives whole, with its DETAIL
and STATEMENT, and goes to :class:`~querywatch.logs.pg_messages.PgMessages`. A line that is not
a JSON object (a truncated write, garbage) is skipped and counted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence

from querywatch.logs.model import LogStatement
from querywatch.logs.pg_messages import ERROR_SEVERITIES, PgParser


def sniff(head: Sequence[bytes]) -> bool:
    lines = [line.strip() for line in head if line.strip()]
    return bool(lines) and lines[0].startswith(b'{"timestamp":')


class Parser(PgParser):
    """A PostgreSQL jsonlog file."""

    def starts_entry(self, line: bytes) -> bool:
        return line.startswith(b"{")

    def parse(self, chunks: Iterable[bytes]) -> Iterator[LogStatement]:
        out = self._out
        loads = json.loads
        epoch = self.times.epoch
        log, error = self.messages.log, self.messages.error
        line_no = self.options.first_line - 1
        last_ts, last_at = "", 0.0
        for chunk in chunks:
            for raw in chunk.split(b"\n"):
                line_no += 1
                if not raw:
                    continue
                try:
                    doc = loads(raw)
                    ts = doc["timestamp"]
                    sev = doc["error_severity"]
                except (ValueError, KeyError, TypeError):
                    self.skipped.add(line_no, "not a jsonlog record", raw)
                    continue
                if ts != last_ts:
                    last_ts, last_at = ts, epoch(ts)
                get = doc.get
                session = str(get("pid") or get("session_id") or "")
                if sev == "LOG":
                    log(
                        last_at,
                        session,
                        get("user", ""),
                        get("dbname", ""),
                        get("message", ""),
                        get("detail"),
                        get("statement"),
                        line_no,
                    )
                elif sev in ERROR_SEVERITIES:
                    error(
                        last_at,
                        session,
                        get("user", ""),
                        get("dbname", ""),
                        sev,
                        get("message", ""),
                        get("statement"),
                        get("state_code", ""),
                        line_no,
                    )
            line_no -= 1 if chunk.endswith(b"\n") else 0
            self.lines = line_no - self.options.first_line + 1
            if out:
                yield from out
                out.clear()
        self.lines = line_no - self.options.first_line + 1
        self.messages.finish(self.options.more_follows)
        yield from out
        out.clear()
