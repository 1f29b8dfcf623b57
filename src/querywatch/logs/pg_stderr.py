"""PostgreSQL's stderr log (``log_destination = 'stderr'``) with any ``log_line_prefix``.

The prefix is given (``--prefix``, the server's ``log_line_prefix`` as written in
postgresql.conf) or detected: the known prefixes of the PostgreSQL, Debian, pgBadger and cloud
defaults are tried on the first lines, and when none fits a generic reading finds the severity
and takes the time, process id, user and database from whatever stands before it.

The hot loop: one regex, built from the prefix, runs over a megabyte chunk at a time
(``finditer`` in C) and matches a whole entry — its first line and the tab-indented lines
PostgreSQL continues it with — so Python sees one match per entry, never per line. Lines between
two matches did not fit the prefix: they are counted as skipped, with examples. The match's
groups feed :class:`~querywatch.logs.pg_messages.PgMessages`; an entry's DETAIL and STATEMENT
lines follow it directly (PostgreSQL writes a message's lines together), so a message is
complete when the next one starts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence

from querywatch.logs.model import LogStatement, ParseOptions
from querywatch.logs.pg_messages import ERROR_SEVERITIES, PgParser

SEVERITIES = (
    "LOG|ERROR|FATAL|PANIC|WARNING|NOTICE|INFO|DEBUG[1-5]?|DETAIL|HINT|CONTEXT|STATEMENT|QUERY"
    "|LOCATION"
)
_TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?: [A-Za-z0-9+\-:]+)?"
_ESCAPES: dict[str, str] = {
    "a": r"[^\n]*?",  # application_name
    "u": r"(?P<u>[^\n]*?)",
    "d": r"(?P<d>[^\n]*?)",
    "r": r"\S*?",  # host(port)
    "h": r"\S*?",
    "b": r"[^\n]*?",  # backend type
    "p": r"(?P<p>\d+)",
    "P": r"\d*",
    "t": rf"(?P<t>{_TIME})",
    "m": rf"(?P<t>{_TIME})",
    "n": r"(?P<t>\d+\.\d+)",
    "i": r"[^\n]*?",  # command tag
    "e": r"(?P<e>[0-9A-Z]{5})",
    "c": r"(?P<c>[0-9a-f]+\.[0-9a-f]+)",  # read as the session when there is no %p
    "l": r"\d+",
    "s": _TIME,
    "v": r"[-\d/]*",
    "x": r"\d+",
    "Q": r"-?\d+",
}
#: Prefixes in the wild, tried in order when none is given: PostgreSQL's default since 10,
#: Debian's, pgBadger's recommended ones, Amazon RDS's fixed one, and a few common variants.
KNOWN_PREFIXES = (
    "%m [%p] ",
    "%m [%p] %q%u@%d ",
    "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
    "%t [%p]: user=%u,db=%d,app=%a,client=%h ",
    "%t [%p]: [%l-1] user=%u,db=%d ",
    "%t [%p]: [%l-1] ",
    "%m [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
    "%m [%p] %q[user=%u,db=%d,app=%a] ",
    "%t:%r:%u@%d:[%p]:",  # Amazon RDS
    "%m [%p]: [%l-1] db=%d,user=%u ",
    "%t [%p-%l] %q%u@%d ",
    "%t [%p] ",
    "%m ",
    "%t ",
)
FIELDS = ("t", "p", "u", "d", "e")
_GENERIC_FIELDS = (
    ("t", re.compile(_TIME)),
    ("p", re.compile(r"\[(\d+)(?:-\d+)?\]")),
    ("u", re.compile(r"\buser=([^,\s\]]*)")),
    ("d", re.compile(r"\bdb=([^,\s\]]*)")),
)
_AT = re.compile(r"(?:^|\s)([\w\-.\[\]]*)@([\w\-.\[\]]*)(?:\s|$)")


def prefix_pattern(prefix: str) -> str:
    """The regex (as text) for lines starting with ``prefix``, a ``log_line_prefix`` value."""
    out: list[str] = []
    optional_from: int | None = None
    i = 0
    seen: set[str] = set()
    while i < len(prefix):
        ch = prefix[i]
        if ch != "%" or i + 1 == len(prefix):
            out.append(re.escape(ch))
            i += 1
            continue
        j = i + 1
        while j < len(prefix) and (prefix[j].isdigit() or prefix[j] == "-"):
            j += 1  # padding: %-10u, %10p
        code = prefix[j] if j < len(prefix) else ""
        padded = j > i + 1
        i = j + 1
        if code == "%":
            out.append("%")
        elif code == "q":
            optional_from = len(out)
        elif code in _ESCAPES:
            pattern = _ESCAPES[code]
            if code in seen or code == "s":  # a name may appear once: later ones don't capture
                pattern = re.sub(r"\(\?P<\w+>", "(?:", pattern)
            seen.add(code)
            out.append(rf" *{pattern} *" if padded else pattern)
        else:
            out.append(re.escape("%" + code))
    if optional_from is not None:
        out[optional_from:] = ["(?:" + "".join(out[optional_from:]) + ")?"]
    pattern = "".join(out)
    if "p" not in seen and "c" in seen:  # the session id stands for the process id
        pattern = pattern.replace("(?P<c>", "(?P<p>", 1)
    # Every field group exists (empty when the prefix lacks it), so one m.group() call reads all.
    missing = [g for g in FIELDS if f"(?P<{g}>" not in pattern]
    return pattern + "".join(f"(?P<{g}>)" for g in missing)


def entry_regex(prefix_re: str) -> re.Pattern[str]:
    """One whole entry: prefix, severity, message, and its tab-indented continuation lines."""
    return re.compile(
        rf"^{prefix_re}(?P<sev>{SEVERITIES}):  (?P<msg>[^\n]*(?:\n\t[^\n]*)*)", re.MULTILINE
    )


_GENERIC = entry_regex(r"(?P<pre>[^\n]*?)" + "".join(f"(?P<{g}>)" for g in FIELDS))


def detect_prefix(head: Sequence[bytes]) -> str | None:
    """The known prefix that fits the first lines best (None: read generically)."""
    lines = [b.decode("utf-8", "replace") for b in head if b and not b.startswith(b"\t")]
    if not lines:
        return None
    best, best_hits = None, 0
    for prefix in KNOWN_PREFIXES:
        regex = entry_regex(prefix_pattern(prefix))
        hits = sum(1 for line in lines if regex.match(line))
        if hits > best_hits:
            best, best_hits = prefix, hits
    if best is not None and best_hits >= max(1, int(len(lines) * 0.9)):
        return best
    return None


def sniff(head: Sequence[bytes]) -> bool:
    lines = [b.decode("utf-8", "replace") for b in head if b and not b.startswith(b"\t")]
    hits = sum(1 for line in lines if _GENERIC.match(line))
    return bool(lines) and hits >= max(1, len(lines) // 2)


class Parser(PgParser):
    """A PostgreSQL stderr log; see the module docstring."""

    def __init__(self, options: ParseOptions | None = None) -> None:
        super().__init__(options)
        self.prefix = self.options.prefix
        self._regex: re.Pattern[str] | None = None
        self._generic = False
        self._cur: LogStatement | None = None
        self._last_ts: str | None = None
        self._last_at = 0.0
        if self.prefix is not None:
            self._regex = entry_regex(prefix_pattern(self.prefix))

    def starts_entry(self, line: bytes) -> bool:
        """A message's first line: prefixed, and not the DETAIL or STATEMENT of the one before."""
        if line.startswith(b"\t"):
            return False
        m = (self._regex or _GENERIC).match(line.decode("utf-8", "replace").rstrip("\n"))
        return m is not None and m["sev"] not in _AUX

    def parse(self, chunks: Iterable[bytes]) -> Iterator[LogStatement]:
        """Records of the chunks in order. An empty chunk means "no more for now" (a followed
        log): what is read so far is finished and handed out, and reading goes on after it."""
        out = self._out
        line_no = self.options.first_line
        carry = ""
        for chunk in chunks:
            if self._regex is None and not self._generic and chunk:
                self._choose_prefix(chunk)
            text = carry + chunk.decode("utf-8", "replace")
            if chunk:
                # The last entry may go on in the next chunk (tab-indented lines): keep it.
                cut = _last_entry_start(text)
                text, carry = text[:cut], text[cut:]
            else:
                carry = ""
            line_no = self._scan(text, line_no)
            if chunk and len(out) > 1:
                # The last record may still get its DETAIL or STATEMENT from the next chunk.
                last = out.pop()
                yield from out
                out.clear()
                out.append(last)
            elif not chunk and out:
                yield from out
                out.clear()
        if carry:
            self._scan(carry, line_no)
        self.messages.finish(self.options.more_follows)
        yield from out
        out.clear()

    def _choose_prefix(self, first: bytes) -> None:
        self.prefix = detect_prefix(first.split(b"\n", 400)[:400])
        if self.prefix is not None:
            self._regex = entry_regex(prefix_pattern(self.prefix))
        else:
            self._generic = True

    def _scan(self, text: str, line_no: int) -> int:
        """Every entry in ``text`` (whole entries only); returns the next line's number.

        The hot path, ``LOG:  duration: … ms  statement|execute …``, is inline; every other
        message goes through :class:`PgMessages`. ``cur`` is the record the message's DETAIL
        (bind parameters) and STATEMENT (the text of an error, lock wait or temporary file)
        lines complete.
        """
        regex = self._regex or _GENERIC
        generic = self._generic
        index = regex.groupindex
        fields = (index["t"], index["p"], index["u"], index["d"], index["e"], index["sev"])
        msg_group, pre_group = index["msg"], index.get("pre", 0)
        epoch = self.times.epoch
        messages = self.messages
        out = self._out
        append = out.append
        count = text.count
        cur = self._cur
        last_ts, last_at = self._last_ts, self._last_at
        pos = 0
        for m in regex.finditer(text):
            start, end = m.span()
            if start != pos:
                line_no = self._skip(text, pos, start, line_no)
            ts, session, user, database, sqlstate, sev = m.group(*fields)
            msg = m.group(msg_group)
            if "\n" in msg:
                msg = msg.replace("\n\t", "\n")
                line = line_no
                line_no += count("\n", start, end) + 1
            else:
                line = line_no
                line_no += 1
            pos = end + 1
            if sev in _AUX:
                if cur is not None:
                    if sev == "DETAIL":
                        if msg.startswith("parameters: "):
                            cur.params = msg[12:]
                    elif sev == "STATEMENT" and cur.kind != "statement":
                        cur.text = msg
                continue
            if generic:
                ts, session, user, database, sqlstate = _generic_fields(m.group(pre_group))
            if ts != last_ts:
                last_ts, last_at = ts, (epoch(ts) if ts else 0.0)
            if sev == "LOG":
                if msg.startswith("duration: "):
                    i = msg.find(" ms  ", 10)
                    start = 0  # where the statement's text starts
                    if i > 0:
                        if msg.startswith("statement: ", i + 5):
                            start = i + 16
                        elif msg.startswith("execute ", i + 5):
                            start = msg.find(": ", i + 13) + 2
                    if start > 1:
                        try:
                            ms = float(msg[10:i])
                        except ValueError:
                            ms = None
                        if ms is not None:
                            cur = LogStatement(
                                last_at, ms, msg[start:], "statement", line, None, user, database,
                                session,
                            )  # fmt: skip
                            append(cur)
                            continue
                cur = messages.log(last_at, session, user, database, msg, None, None, line)
            elif sev in ERROR_SEVERITIES:
                cur = messages.error(
                    last_at, session, user, database, sev, msg, None, sqlstate, line
                )
            else:
                cur = None
        if pos < len(text):
            line_no = self._skip(text, pos, len(text), line_no)
        self._cur = cur
        self._last_ts, self._last_at = last_ts, last_at
        self.lines = line_no - self.options.first_line
        return line_no

    def _skip(self, text: str, start: int, end: int, line_no: int) -> int:
        """Lines in ``text[start:end]`` that no entry matched."""
        for raw in text[start:end].split("\n"):
            if raw:
                reason = (
                    "continuation line with no entry"
                    if raw.startswith("\t")
                    else (
                        "does not match the log_line_prefix" if not self._generic else "no severity"
                    )
                )
                self.skipped.add(line_no, reason, raw)
            line_no += 1
        return line_no - 1 if text[start:end].endswith("\n") else line_no


_AUX = frozenset({"DETAIL", "HINT", "CONTEXT", "STATEMENT", "QUERY", "LOCATION"})


def _generic_fields(pre: str) -> tuple[str | None, str, str, str, str]:
    ts = session = user = database = None
    for name, regex in _GENERIC_FIELDS:
        m = regex.search(pre)
        if m is None:
            continue
        value = m[1] if m.groups() else m[0]
        if name == "t":
            ts = value
        elif name == "p":
            session = value
        elif name == "u":
            user = value
        else:
            database = value
    if user is None and (at := _AT.search(pre)):
        user, database = at[1], at[2]
    return ts, session or "", user or "", database or "", ""


def _last_entry_start(text: str) -> int:
    """Where the chunk's last entry starts: after the last newline not followed by a tab
    (the chunk ends with its own newline, which does not count)."""
    end = len(text) - 1
    while True:
        nl = text.rfind("\n", 0, end)
        if nl < 0:
            return 0
        if text[nl + 1] != "\t":
            return nl + 1
        end = nl
