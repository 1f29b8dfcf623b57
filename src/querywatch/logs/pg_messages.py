"""What PostgreSQL's log messages say about statements, whichever file format carried them.

The stderr, csvlog and jsonlog parsers each find a message's parts (time, session, severity,
message, DETAIL, STATEMENT) and hand them here. Both logging styles are understood:

- ``log_min_duration_statement``: ``duration: 1.2 ms  statement: …`` (or ``execute <name>: …``
  with the bind parameters in DETAIL) is a whole record;
- ``log_statement`` + ``log_duration``: ``statement: …`` then, later, ``duration: 1.2 ms`` from
  the same session; the pair is one record. The parse and bind steps' own durations (logged
  before the ``execute`` line) belong to no statement and are counted, not used.

Also: ``auto_explain`` plans (``duration: … plan:``), lock waits (``still waiting`` /
``acquired``), temporary files and errors, each carrying the STATEMENT PostgreSQL logged with it.
"""

from __future__ import annotations

from querywatch.logs.model import LogStatement, ParseOptions, Skipped
from querywatch.logs.pgtime import PgTimes

MAX_PENDING = 10_000
"""Sessions with a logged statement still waiting for its duration line; past this the oldest
are reported without a duration (a session that ended mid-statement would otherwise stay)."""

ERROR_SEVERITIES = frozenset({"ERROR", "FATAL", "PANIC"})

LEADING_WATCH = 10_000
"""Messages at the start of a piece watched for the end of the previous piece's statements."""


class PgMessages:
    """Turns messages into :class:`LogStatement` records, appended to ``out``."""

    def __init__(self, out: list[LogStatement]) -> None:
        self.out = out
        self.pending: dict[str, LogStatement] = {}
        self.step_durations = 0  # parse / bind durations: not a statement's run
        #: For a piece of a log read apart (``digest -j``): sessions whose first message here
        #: ends a statement the previous piece began — its duration, or None for an error.
        self.leading: dict[str, float | None] = {}
        self._seen: set[str] = set()
        self._watch = LEADING_WATCH

    def log(
        self,
        at: float,
        session: str,
        user: str,
        database: str,
        message: str,
        detail: str | None,
        statement: str | None,
        line: int,
    ) -> LogStatement | None:
        """One LOG message; returns the record its DETAIL / STATEMENT lines complete, if any.

        csvlog and jsonlog pass ``detail`` and ``statement`` with the message; the stderr parser
        passes None and sets ``params`` / ``text`` on the returned record when those lines come.
        """
        if message.startswith("duration: "):
            end = message.find(" ms", 10)
            try:
                ms = float(message[10:end])
            except ValueError:
                return None
            rest = message[end + 3 :]
            rec: LogStatement | None
            if rest.startswith("  statement: "):
                rec = LogStatement(at, ms, rest[13:], "statement", line, None, user, database)
            elif rest.startswith("  execute "):
                text = rest[rest.find(": ", 10) + 2 :]
                rec = LogStatement(at, ms, text, "statement", line, _params(detail), user, database)
            elif not rest.strip():
                rec = self.pending.pop(session, None)
                if rec is None:
                    self.step_durations += 1
                    if self._watch:
                        self._first(session, ms, True)
                    return None
                rec.duration_ms = ms
            elif rest.startswith("  plan:"):
                query, plan = split_plan(rest[7:])
                rec = LogStatement(at, ms, query, "plan", line, None, user, database)
                rec.detail = plan
            else:  # parse / bind / fastpath function call
                self.step_durations += 1
                return None
            rec.session = session
            self.out.append(rec)
            return rec
        if message.startswith("statement: "):
            rec = LogStatement(at, None, message[11:], "statement", line, None, user, database)
            rec.session = session
            self._pending(rec)
            return rec
        if message.startswith("execute "):
            colon = message.find(": ", 8)
            if colon < 0:
                return None
            text = message[colon + 2 :]
            rec = LogStatement(at, None, text, "statement", line, _params(detail), user, database)
            rec.session = session
            self._pending(rec)
            return rec
        if message.startswith("temporary file: "):
            size = message.rfind(", size ")
            rec = LogStatement(at, None, statement or "", "temp", line, None, user, database)
            digits = message[size + 7 :] if size > 0 else ""
            rec.size = int(digits) if digits.isdigit() else None
        elif message.startswith("process ") and (
            " still waiting for " in message or " acquired " in message
        ):
            after = message.rfind(" after ")
            wait = None
            if after > 0:
                try:
                    wait = float(message[after + 7 :].removesuffix(" ms"))
                except ValueError:
                    wait = None
            rec = LogStatement(at, wait, statement or "", "lock", line, None, user, database)
        else:
            return None
        rec.session = session
        rec.detail = message
        self.out.append(rec)
        return rec

    def error(
        self,
        at: float,
        session: str,
        user: str,
        database: str,
        severity: str,
        message: str,
        statement: str | None,
        sqlstate: str,
        line: int,
    ) -> LogStatement:
        """One ERROR, FATAL or PANIC: the statement (if logged) failed."""
        pending = self.pending.pop(session, None) if session else None
        if self._watch and pending is None:
            self._first(session, None, True)
        text = statement if statement is not None else (pending.text if pending else "")
        rec = LogStatement(at, None, text, "error", line, None, user, database, session)
        rec.detail = f"{severity}:  {message}"
        rec.sqlstate = sqlstate
        self.out.append(rec)
        return rec

    def finish(self, more_follows: bool = False) -> None:
        """The log ended: statements still waiting for a duration are reported without one —
        unless ``more_follows`` (a piece of a log): they stay in ``pending`` for the caller to
        match with the next piece's ``leading``."""
        if not more_follows:
            self.out.extend(self.pending.values())
            self.pending.clear()

    def _first(self, session: str, ms: float | None, ends: bool) -> None:
        """A session's message near the start of a piece: the first one of each session says
        whether it ends a statement begun before the piece (a bare duration, an error)."""
        self._watch -= 1
        if session not in self._seen:
            self._seen.add(session)
            if ends:
                self.leading[session] = ms
        if not self._watch:
            self._seen.clear()

    def _pending(self, rec: LogStatement) -> None:
        if self._watch:
            self._first(rec.session, None, False)
        before = self.pending.pop(rec.session, None)
        if before is not None:  # the session's previous statement never got a duration line
            self.out.append(before)
        elif len(self.pending) >= MAX_PENDING:
            oldest = next(iter(self.pending))
            self.out.append(self.pending.pop(oldest))
        self.pending[rec.session] = rec


def _params(detail: str | None) -> str | None:
    if detail is not None and detail.startswith("parameters: "):
        return detail[12:]
    return None


def split_plan(body: str) -> tuple[str, str]:
    """An auto_explain plan's query text and plan, from the text after ``plan:``.

    Text format: ``Query Text: …`` (possibly several lines) then the plan, whose first line
    carries ``(cost=`` or ``(actual``; JSON format: an object with "Query Text" and "Plan".
    """
    body = body.strip("\n")
    if body.lstrip().startswith("{"):
        import json

        try:
            doc = json.loads(body)
        except ValueError:
            return "", body
        if isinstance(doc, dict):
            return str(doc.get("Query Text", "")), json.dumps(doc.get("Plan", doc), indent=2)
        return "", body
    lines = body.split("\n")
    if not lines or not lines[0].lstrip().startswith("Query Text: "):
        return "", body
    query = [lines[0].lstrip()[12:]]
    for i, text in enumerate(lines[1:], 1):
        if "(cost=" in text or "(actual " in text or "(never executed)" in text:
            return "\n".join(query), "\n".join(lines[i:])
        query.append(text)
    return query[0], "\n".join(lines[1:])


class PgParser:
    """What the stderr, csvlog and jsonlog parsers share: their options, line and skip counts,
    log times, and the message reader their records come from."""

    dialect = "postgres"

    def __init__(self, options: ParseOptions | None = None) -> None:
        self.options = options or ParseOptions()
        self.lines = 0
        self.skipped = Skipped()
        self.times = PgTimes(self.options.timezone)
        self._out: list[LogStatement] = []
        self.messages = PgMessages(self._out)
