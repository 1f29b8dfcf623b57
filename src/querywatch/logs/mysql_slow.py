"""MySQL and MariaDB slow query logs (``slow_query_log`` with ``log_output=FILE``).

One entry is a few ``#`` header lines, the log's own ``use db;`` and ``SET timestamp=N;``, then
the statement (any number of lines, ending with the ``;`` the server appends)::

    # Time: 261206  2:59:18                     (MariaDB; MySQL 5.7+: 2026-12-06T02:59:18.1234Z)
    # User@Host: app[app] @  [10.0.0.7]         (MySQL adds "Id: 12")
    # Thread_id: 19  Schema: shop  QC_hit: No   (MariaDB)
    # Query_time: 0.000148  Lock_time: 0.000029  Rows_sent: 1  Rows_examined: 1
    # Rows_affected: 0  Bytes_sent: 0           (and other lines of log_slow_verbosity: ignored)
    use `shop`;
    SET timestamp=1796525958;
    SELECT c FROM sbtest2 WHERE id=524;

A command that is not a query is logged as ``# administrator command: Quit;`` in the statement's
place. A server (re)start, a new log file or ``FLUSH SLOW LOGS`` writes three lines of its own
(``…, Version: … started with:``, ``Tcp port: …``, ``Time  Id Command  Argument``), which end
the entry before them.

This reads logs of many gigabytes, so it never walks lines in Python on the common path: in a
chunk (a megabyte of whole lines) it finds the next entry start with ``bytes.find``, reads the
whole head with one regex, and takes the statement as the bytes up to the next entry. A head the
regex does not know (Percona Server's extra lines, a damaged entry) takes the line-by-line path.
A ``#`` line inside a statement (a MySQL comment) stays part of it unless it starts an entry.
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Generator, Iterable, Iterator, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from querywatch.logs.model import LogFormatError, LogStatement, ParseOptions, Skipped

__all__ = ["Parser", "sniff"]

_USER = b"# User@Host:"
_TIME = b"# Time:"
_ADMIN = b"# administrator command: "
_STARTED = b"started with:"

# The usual head, MariaDB's and MySQL's, in one pass (every group is bytes).
_HEAD = re.compile(
    rb"(?:# Time: (?P<time>[^\n]*)\n)?"
    rb"# User@Host: (?P<user>[^\n]*)\n"
    rb"(?:# Thread_id: (?P<thread>[0-9]+)[ \t]+Schema: (?P<schema>\S*)[^\n]*\n)?"
    rb"# Query_time: (?P<qt>[0-9.]+)[ \t]+Lock_time: (?P<lt>[0-9.]+)"
    rb"[ \t]+Rows_sent: (?P<rs>[0-9]+)[ \t]+Rows_examined: (?P<re>[0-9]+)[^\n]*\n"
    rb"(?:#(?! Time:| User@Host:| administrator command: )[^\n]*\n)*"
    rb"(?:use (?P<db>[^\n]*);\n)?"
    rb"(?:SET timestamp=(?P<ts>[0-9]+);\n)?"
)
_OUTSIDE = "not inside a slow log entry (no '# User@Host:' line before it)"
_SPACE = frozenset(" \t\r\n;")
_USE = re.compile(rb"use ([^\n;]*);")
_SET_TS = re.compile(rb"SET timestamp=([0-9.]+);")


class Parser:
    """A slow log parser for one file or byte range (see ``model.Parser``)."""

    dialect = "mysql"

    def __init__(self, options: ParseOptions | None = None) -> None:
        self.options = options or ParseOptions()
        self.lines = 0
        self.skipped = Skipped()
        self._tz = _zone(self.options.timezone)
        self._time_raw = b""  # the last "# Time:" value and its epoch, parsed once per change
        self._time_at = 0.0
        self.database = ""  # the last "use db;": the server writes it only when it changes
        self._users: dict[bytes, tuple[str, str]] = {}
        self._names: dict[bytes, str] = {}

    def starts_entry(self, line: bytes) -> bool:
        return line.startswith(_USER) or line.startswith(_TIME)

    def parse(self, chunks: Iterable[bytes]) -> Iterator[LogStatement]:
        """Yield one ``statement`` record per entry, in file order. An empty chunk means "no
        more for now" (a followed log): the last entry is handed out too when it looks whole
        (it ends with the ``;`` the server writes after every statement)."""
        first = self.options.first_line
        line = first  # line number of buf[0]
        buf = b""
        in_entry = False  # buf starts at an entry (else: before the first one, or after garbage)
        for chunk in chunks:
            if not chunk:
                if buf.endswith(b";\n"):
                    _, line, _ = yield from self._entries(buf, line, in_entry, final=True)
                    buf, in_entry = b"", False
                    self.lines = line - first
                continue
            buf = buf + chunk if buf else chunk
            if not chunk.endswith(b"\n"):  # the last chunk of a file may lack its newline
                continue
            pos, line, in_entry = yield from self._entries(buf, line, in_entry, final=False)
            buf = buf[pos:]
            self.lines = line - first
        if buf:
            if not buf.endswith(b"\n"):
                buf += b"\n"
            _, line, _ = yield from self._entries(buf, line, in_entry, final=True)
        self.lines = line - first

    def _entries(
        self, buf: bytes, line: int, in_entry: bool, final: bool
    ) -> Generator[LogStatement, None, tuple[int, int, bool]]:
        """The records of the entries that end in ``buf``; returns how far it got (bytes),
        the line number there, and whether an entry starts there."""
        pos = 0
        head = _HEAD.match
        find = buf.find
        rfind = buf.rfind
        count = buf.count
        users = self._users
        names = self._names
        while pos < len(buf):
            if not in_entry:
                start = _next_start(buf, pos)
                if start < 0:
                    # No entry begins in what is left; keep a last "# Time:" line, whose
                    # "# User@Host:" may open the next chunk.
                    stop = len(buf)
                    if not final:
                        last = buf.rfind(b"\n", pos, stop - 1) + 1
                        if buf.startswith(_TIME, max(last, pos)):
                            stop = max(last, pos)
                    self._outside(buf[pos:stop], line)
                    line += count(b"\n", pos, stop)
                    pos = stop
                    break
                if start > pos:
                    self._outside(buf[pos:start], line)
                    line += count(b"\n", pos, start)
                pos = start
                in_entry = True
            m = head(buf, pos)
            if m is not None:
                # The common entry, read inline: one regex for the head, finds for the end.
                body_at = m.end()
                nxt = find(b"\n# User@Host:", body_at - 1)
                if nxt < 0:
                    if not final:
                        break  # the entry may go on in the next chunk
                    end = len(buf)
                else:
                    end = nxt + 1
                    t = rfind(b"\n# Time:", body_at - 1, nxt)
                    if t >= 0:
                        end = t + 1
                stamp, user_raw, thread, schema, qt, lt, rs, rx, db, ts = m.groups()
                body = buf[body_at:end]
                if ts is not None and body[-2:] == b";\n" and b"started with:" not in body:
                    if stamp is not None and stamp != self._time_raw:
                        self._set_time(stamp, line)
                    user, session = users.get(user_raw) or self._user(user_raw)
                    if schema is not None:
                        database = names.get(schema) or self._name(schema)
                        session = thread.decode()
                    elif db is not None:
                        database = self.database = self._name(db.strip(b"`"))
                    else:
                        database = self.database
                    text = body[:-2].decode("utf-8", "replace")
                    if text and text[-1] not in _SPACE and text[0] != "#":
                        yield LogStatement(
                            float(ts), float(qt) * 1000.0, text, "statement", line, None, user,
                            database, session, int(rs), int(rx), float(lt) * 1000.0,
                        )  # fmt: skip
                        line += count(b"\n", pos, end)
                        pos = end
                        continue
            else:  # past the entry's "# User@Host:" line (after its "# Time:" line, if any)
                body_at = find(b"\n", pos) + 1
                if buf.startswith(_USER, body_at):
                    body_at = find(b"\n", body_at) + 1 or len(buf)
                end = _next_start(buf, body_at)
                if end < 0:
                    if not final:
                        break  # the entry may go on in the next chunk
                    end = len(buf)
            record = self._slow(buf, pos, end, line)
            if record is not None:
                yield record
            line += count(b"\n", pos, end)
            pos = end
        return pos, line, in_entry

    def _slow(self, buf: bytes, start: int, end: int, line: int) -> LogStatement | None:
        """Any entry, line by line: head lines, the log's ``use``/``SET timestamp``, the
        statement, and server header lines (which end the statement)."""
        lines = buf[start:end].split(b"\n")
        if lines and not lines[-1]:
            lines.pop()
        at: float | None = None
        duration = lock = None
        rows = examined = None
        user = session = ""
        database = self.database
        schema: str | None = None
        body: list[bytes] = []
        in_body = False
        n = line - 1
        for i, raw in enumerate(lines):
            n += 1
            if in_body:
                if _STARTED in raw and b", Version: " in raw:
                    self._outside(b"\n".join(lines[i:]) + b"\n", n)
                    break
                body.append(raw)
                continue
            if raw.startswith(b"#"):
                if raw.startswith(_ADMIN):
                    body.append(raw[2:])
                    in_body = True
                elif raw.startswith(b"# Query_time:"):
                    duration, lock, rows, examined = _query_time(raw)
                elif raw.startswith(_USER):
                    user, sid = self._user(raw[13:])
                    session = sid or session
                elif raw.startswith(b"# Thread_id:"):
                    session, schema = _thread(raw)
                elif raw.startswith(_TIME) and raw[8:] != self._time_raw:
                    self._set_time(raw[8:], n)
                continue  # other "#" lines (log_slow_verbosity, Percona's): nothing we use
            if at is None and (ts := _SET_TS.fullmatch(raw.rstrip())) is not None:
                at = float(ts[1])
                continue
            if at is None and not body and (use := _USE.fullmatch(raw.rstrip())) is not None:
                database = self.database = self._name(use[1].strip(b"`"))
                continue
            body.append(raw)
            in_body = True
        text = b"\n".join(body).decode("utf-8", "replace").rstrip()
        if text.endswith(";"):
            text = text[:-1].rstrip()
        if not text:
            if duration is not None:  # a head alone ("# Time:" before a cut is not an entry)
                self.skipped.add(line, "entry without a statement", lines[0])
            return None
        return LogStatement(
            self._time_at if at is None else at, duration, text, "statement", line, None, user,
            database if schema is None else schema, session, rows, examined, lock,
        )  # fmt: skip

    def _outside(self, data: bytes, line: int) -> None:
        """Lines outside any entry: the server's own header lines, or lines we cannot place."""
        for i, raw in enumerate(data.split(b"\n")[:-1]):
            if raw.startswith(_TIME):  # a time line alone (a byte range may end on one)
                if raw[8:] != self._time_raw:
                    self._set_time(raw[8:], line + i)
                continue
            if (
                not raw.strip()
                or raw.startswith(b"Tcp port:")
                or (raw.startswith(b"Time") and b"Id Command" in raw)
                or (_STARTED in raw and b", Version: " in raw)
            ):
                continue
            self.skipped.add(line + i, _OUTSIDE, raw)

    def _user(self, raw: bytes) -> tuple[str, str]:
        """``app[app] @ host [10.0.0.7]  Id: 12``: the user, and MySQL's thread id (cached)."""
        got = self._users.get(raw)
        if got is None:
            rest = raw.strip()
            cut = rest.find(b"[")
            user = (rest[:cut] if cut >= 0 else rest.split(b" ", 1)[0]).strip()
            i = rest.rfind(b"Id:")
            sid = rest[i + 3 :].strip() if i >= 0 else b""
            got = (user.decode("utf-8", "replace"), sid.decode("ascii", "replace"))
            if len(self._users) > 10_000:
                self._users.clear()
            self._users[raw] = got
        return got

    def _name(self, raw: bytes) -> str:
        got = self._names.get(raw)
        if got is None:
            got = raw.decode("utf-8", "replace")
            if len(self._names) > 10_000:
                self._names.clear()
            self._names[raw] = got
        return got

    def _set_time(self, raw: bytes, line: int) -> None:
        """``# Time: 261206  2:58:59`` (server local time) or ``2026-12-06T02:58:59.123Z``: the
        time of entries without ``SET timestamp`` (the server writes it only when it changes)."""
        self._time_raw = raw
        value = raw.strip().decode("ascii", "replace")
        try:
            if "T" in value:
                stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
                if stamp.tzinfo is None:
                    stamp = stamp.replace(tzinfo=self._tz)
                self._time_at = stamp.timestamp()
                return
            day, _, clock = value.partition(" ")
            parsed = time.strptime(f"{day} {clock.strip()}", "%y%m%d %H:%M:%S")
        except ValueError:
            self.skipped.add(line, "a '# Time:' line this parser cannot read", b"# Time: " + raw)
            return
        if self._tz is None:
            self._time_at = float(calendar.timegm(parsed))
        else:
            self._time_at = datetime(*parsed[:6], tzinfo=self._tz).timestamp()


def _next_start(buf: bytes, pos: int) -> int:
    """Where the next entry begins at or after ``pos`` (a line start), or -1: its ``# Time:``
    line when one comes right before its ``# User@Host:`` line."""
    if buf.startswith(_USER, pos):
        at = pos
    else:
        at = buf.find(b"\n# User@Host:", pos)
        if at < 0:
            return -1
        at += 1
    if at > pos:
        prev = buf.rfind(b"\n", pos, at - 1) + 1
        if prev < pos:
            prev = pos
        if buf.startswith(_TIME, prev):
            return prev
    return at


def _zone(name: str | None) -> ZoneInfo | None:
    if not name or name.upper() == "UTC":
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise LogFormatError(f"unknown time zone {name!r}: use a name like Europe/Berlin") from None


def _query_time(raw: bytes) -> tuple[float | None, float | None, int | None, int | None]:
    """``# Query_time: 0.1  Lock_time: 0.0  Rows_sent: 1  Rows_examined: 1 …``."""
    p = raw.split()
    fields = dict(zip(p[1::2], p[2::2], strict=False))
    return (
        _num(fields.get(b"Query_time:"), 1000.0),
        _num(fields.get(b"Lock_time:"), 1000.0),
        _int(fields.get(b"Rows_sent:")),
        _int(fields.get(b"Rows_examined:")),
    )


def _num(value: bytes | None, scale: float) -> float | None:
    try:
        return float(value) * scale if value is not None else None
    except ValueError:
        return None


def _int(value: bytes | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _thread(raw: bytes) -> tuple[str, str | None]:
    """``# Thread_id: 19  Schema: shop  QC_hit: No`` (MariaDB; Schema may be empty)."""
    p = raw.split()
    session = p[2].decode("ascii", "replace") if len(p) > 2 else ""
    schema = None
    if len(p) > 3 and p[3] == b"Schema:":
        schema = "" if len(p) < 5 or p[4] == b"QC_hit:" else p[4].decode("utf-8", "replace")
    return session, schema


def sniff(head: Sequence[bytes]) -> bool:
    """A slow log has ``# User@Host:`` and ``# Query_time:`` lines near its top (the server's
    three header lines alone are shared with the general query log)."""
    user = query = False
    for line in head:
        if line.startswith(_USER):
            user = True
        elif line.startswith(b"# Query_time:"):
            query = True
        if user and query:
            return True
    return False
