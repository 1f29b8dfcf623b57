"""What every log parser yields, so the digest aggregates PostgreSQL and MySQL logs alike.

A parser turns one log, read as chunks of whole lines (bytes; each chunk ends with ``b"\\n"``
except maybe the last of the file; one line per chunk is fine), into :class:`LogStatement`
records, and counts the lines it could not use in :class:`Skipped` (a count and a few examples),
so bad input is reported, never silently dropped. Chunks rather than lines let a parser scan a
megabyte at a time in C (a regex over the chunk) instead of paying a Python step per line; a
line-oriented parser walks them with :func:`iter_lines`.

Adding a format is adding a module with a ``Parser`` class and a ``sniff`` function, and one row in
``querywatch.logs.formats.FORMATS``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from querywatch.errors import SourceError

Kind = Literal["statement", "error", "lock", "temp", "plan"]
"""What a record tells about its statement:

- ``statement``: it ran, taking ``duration_ms`` (``None`` when the log had no duration for it).
- ``error``: it failed; ``detail`` is the error message (``sqlstate`` when the log has it).
- ``lock``: it waited for a lock; ``duration_ms`` is the wait so far, ``detail`` the log's words.
- ``temp``: it wrote a temporary file; ``size`` is its size in bytes.
- ``plan``: an auto_explain plan; ``detail`` is the plan text, ``duration_ms`` the run it explains.
"""

MAX_EXAMPLES = 5


@dataclass(slots=True)
class LogStatement:
    """One thing a log tells about one statement."""

    at: float  # epoch seconds (UTC) of the log line; 0.0 when the line had no time
    duration_ms: float | None
    text: str  # the statement as logged ("" when the record names none, e.g. a lone error)
    kind: Kind = "statement"
    line: int = 0  # line number (1-based) of the record's first line in its file
    params: str | None = None  # bind parameters as logged ("$1 = '42', $2 = 'x'"), unredacted
    user: str = ""
    database: str = ""
    session: str = ""  # process id / thread id / session id, whatever the log identifies it by
    rows: int | None = None  # rows returned (sent), when the log says
    rows_examined: int | None = None
    lock_ms: float | None = None  # time spent waiting for locks inside the statement (MySQL)
    size: int | None = None  # bytes, for ``temp``
    detail: str = ""
    sqlstate: str = ""


@dataclass(slots=True)
class Skipped:
    """Lines a parser could not use: how many, and the first few as examples for the user."""

    count: int = 0
    examples: list[tuple[int, str, str]] = field(default_factory=list)  # (line, reason, text)

    def add(self, line: int, reason: str, raw: bytes | str) -> None:
        self.count += 1
        if len(self.examples) < MAX_EXAMPLES:
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
            self.examples.append((line, reason, text.rstrip("\r\n")[:200]))

    def merge(self, other: Skipped) -> None:
        self.count += other.count
        room = MAX_EXAMPLES - len(self.examples)
        if room > 0:
            self.examples.extend(other.examples[:room])


@dataclass(frozen=True, slots=True)
class ParseOptions:
    """What a parser may be told instead of guessing."""

    prefix: str | None = None  # PostgreSQL log_line_prefix (None: detect it)
    first_line: int = 1  # line number of the first line given (a byte range starts mid-file)
    timezone: str | None = None  # for times logged without a zone (None: UTC)
    #: The lines are a piece of a log and more follow in another piece (``digest -j``): a
    #: statement still waiting for its duration line is handed over, not reported untimed.
    more_follows: bool = False


class Parser(Protocol):
    """A log format's parser: one instance per file (or byte range), fed in order.

    ``parse`` is called once per parser; it yields records as soon as they are complete and the
    rest when the chunks run out. ``lines`` counts every line seen, ``skipped`` the ones not used
    (a parser that read lines but yielded nothing lets the caller say "wrong format").
    """

    dialect: str  # the fingerprint dialect of its statements: "postgres" or "mysql"
    lines: int
    skipped: Skipped

    def parse(self, chunks: Iterable[bytes]) -> Iterator[LogStatement]: ...

    def starts_entry(self, line: bytes) -> bool:
        """True when ``line`` can begin a record: where a byte range may start parsing."""
        ...


def iter_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The lines of chunks of whole lines, without their ``b"\\n"`` (for line-oriented parsers).

    Only ``b"\\n"`` ends a line: a ``b"\\r"`` inside a logged statement stays in its line.
    """
    for chunk in chunks:
        lines = chunk.split(b"\n")
        if not lines[-1]:
            lines.pop()
        yield from lines


class Sniffer(Protocol):
    def __call__(self, head: Sequence[bytes]) -> bool:
        """True when the first lines of a file (up to 200) look like this format."""
        ...


class LogFormatError(SourceError):
    """A log cannot be read as asked: wrong format, a prefix that matches nothing, unreadable."""
