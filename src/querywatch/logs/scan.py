"""Reading log files into a :class:`~querywatch.logs.digest.Digest`: formats, bad input, workers.

Each file's format is named or guessed from its first lines; its parser's output goes straight
into the digest, so nothing is held per statement. What could not be read is counted per file
with examples, and a file nothing could be read from is one clear error (a wrong ``--format`` or
``--prefix``) rather than an empty report. The check runs after the first megabyte too, so a
wrong guess on a 10 GB file fails in a second, not at the end.

``jobs > 1`` runs a process pool over pieces of about :data:`PIECE` bytes (byte ranges of
uncompressed files, starting at log entries; whole compressed files), merging the pieces'
digests in order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from querywatch.logs import formats
from querywatch.logs.digest import Digest, Phase
from querywatch.logs.model import LogFormatError, LogStatement, ParseOptions, Parser, Skipped
from querywatch.logs.reader import ByteRange, LogFile, range_chunks, split_ranges

PIECE = 32 << 20
"""Bytes per piece of work with ``jobs > 1``: small enough to balance and show progress."""

Progress = Callable[[int], None]
"""Called with the bytes (on disk) read so far, across all files."""


@dataclass(slots=True)
class FileReport:
    """What one file gave: its format, its lines, what was skipped and why."""

    path: str
    format: str
    size: int
    prefix: str | None = None
    lines: int = 0
    records: int = 0
    skipped: Skipped = field(default_factory=Skipped)
    step_durations: int = 0  # parse/bind durations (extended protocol steps, not statements)
    unknown_zones: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class Plan:
    """How to read one file, decided from its head in the main process."""

    path: Path
    format: str
    options: ParseOptions
    size: int
    compressed: bool


def plan_files(
    paths: Sequence[Path], fmt: str = "auto", options: ParseOptions | None = None
) -> list[Plan]:
    """Pick each file's format (and PostgreSQL stderr prefix) before reading it whole."""
    options = options or ParseOptions()
    plans: list[Plan] = []
    dialect = None
    for path in paths:
        with LogFile(path) as f:
            head = f.head()
            size, compressed = f.size, f.compression is not None
        if not head:
            plans.append(Plan(path, fmt if fmt != "auto" else "empty", options, size, compressed))
            continue
        chosen = formats.guess(head, str(path)) if fmt == "auto" else formats.get(fmt)
        if dialect is not None and chosen.dialect != dialect:
            raise LogFormatError(
                f"{path}: a {chosen.dialect} log among {dialect} logs; digest each database "
                "engine's logs separately"
            )
        dialect = chosen.dialect
        opts = options
        if chosen.name == "pg-stderr" and options.prefix is None:
            from querywatch.logs.pg_stderr import detect_prefix

            opts = replace(options, prefix=detect_prefix(head))
        plans.append(Plan(path, chosen.name, opts, size, compressed))
    return plans


def dialect_of(plans: Sequence[Plan]) -> str:
    for p in plans:
        if p.format != "empty":
            return formats.get(p.format).dialect
    return "postgres"


def digest_files(
    plans: Sequence[Plan],
    *,
    phases: tuple[Phase, ...] = (Phase("whole log", None, None),),
    digest: Digest | None = None,
    progress: Progress | None = None,
    jobs: int = 1,
    piece: int = PIECE,
) -> tuple[Digest, list[FileReport]]:
    """Read every planned file into one digest (``digest``: add to one, e.g. with a window
    sink for the store; only with ``jobs == 1``). ``piece``: bytes per piece of work with
    ``jobs > 1``."""
    if digest is None:
        digest = Digest(dialect_of(plans), phases=phases)
    if jobs > 1 and digest.window_sink is None:
        return _parallel(plans, digest, progress, jobs, piece)
    reports: list[FileReport] = []
    done = 0
    for plan in plans:
        report = FileReport(str(plan.path), plan.format, plan.size, plan.options.prefix)
        reports.append(report)
        if plan.format == "empty":
            done += plan.size
            continue
        parser = formats.get(plan.format).parser(plan.options)
        with LogFile(plan.path) as f:
            before = digest.records
            chunks = _checked(f.chunks(), parser, report, f, done, progress)
            digest.consume(parser.parse(chunks), str(plan.path))
            report.records = digest.records - before
        _finish_report(report, parser)
        done += plan.size
        if progress is not None:
            progress(done)
    return digest, reports


def _checked(
    chunks: Iterator[bytes],
    parser: Parser,
    report: FileReport,
    f: LogFile,
    done: int,
    progress: Progress | None,
) -> Iterator[bytes]:
    """The chunks, with progress, and the wrong-format check after the first one."""
    for n, chunk in enumerate(chunks):
        if n == 1:
            _check_readable(report, parser.lines, parser.skipped)
        yield chunk
        if progress is not None:
            progress(done + f.position)


def _check_readable(report: FileReport, lines: int, skipped: Skipped) -> None:
    """A file (or its first megabyte) whose every line was skipped is in another format."""
    if lines == 0 or skipped.count < lines:
        return
    example = skipped.examples[0][2][:120] if skipped.examples else ""
    if report.format == "pg-stderr" and report.prefix is not None:
        raise LogFormatError(
            f"{report.path}: no line matches the log_line_prefix {report.prefix!r} "
            f"(line 1: {example!r}); pass the server's log_line_prefix with --prefix"
        )
    raise LogFormatError(
        f"{report.path}: none of its {lines} lines read as {report.format} "
        f"(line 1: {example!r}); name the right one with --format"
    )


def _finish_report(report: FileReport, parser: Parser) -> None:
    report.lines = parser.lines
    report.skipped = parser.skipped
    _check_readable(report, parser.lines, parser.skipped)
    messages = getattr(parser, "messages", None)
    report.step_durations = getattr(messages, "step_durations", 0)
    times = getattr(parser, "times", None)
    report.unknown_zones = set(getattr(times, "unknown_zones", set()))
    if getattr(parser, "prefix", None) is not None:
        report.prefix = parser.prefix  # type: ignore[attr-defined]


# -- jobs > 1 ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Piece:
    plan: Plan
    part: ByteRange | None  # None: the whole file (compressed, or small)
    last: bool = True  # the file's last piece


@dataclass(slots=True)
class _Done:
    """A worker's result: its digest and report, and what crosses into the next piece."""

    digest: Digest
    report: FileReport
    pending: list[LogStatement]  # statements still waiting for their duration at the end
    leading: dict[str, float | None]  # sessions whose first message ends an earlier statement


def _pieces(plans: Sequence[Plan], piece: int) -> list[_Piece]:
    out: list[_Piece] = []
    for plan in plans:
        if plan.format == "empty":
            continue
        if plan.compressed or plan.size < 2 * piece:
            out.append(_Piece(plan, None))
            continue
        parser = formats.get(plan.format).parser(plan.options)
        parts = split_ranges(plan.path, max(1, plan.size // piece), parser.starts_entry)
        out.extend(_Piece(plan, part, i == len(parts) - 1) for i, part in enumerate(parts))
    return out


def _run_piece(piece: _Piece, phases: tuple[Phase, ...], dialect: str) -> _Done:
    """One worker's job: a digest and a report of one piece (line numbers from its start)."""
    plan = piece.plan
    size = piece.part.end - piece.part.start if piece.part else plan.size
    report = FileReport(str(plan.path), plan.format, size, plan.options.prefix)
    options = replace(plan.options, more_follows=not piece.last)
    parser = formats.get(plan.format).parser(options)
    digest = Digest(dialect, phases=phases)
    if piece.part is None:
        with LogFile(plan.path) as f:
            digest.consume(parser.parse(f.chunks()), str(plan.path))
    else:
        digest.consume(parser.parse(range_chunks(piece.part)), str(plan.path))
    report.records = digest.records
    report.lines = parser.lines
    report.skipped = parser.skipped
    messages = getattr(parser, "messages", None)
    report.step_durations = getattr(messages, "step_durations", 0)
    pending = list(getattr(messages, "pending", {}).values())
    return _Done(digest, report, pending, dict(getattr(messages, "leading", {})))


def _parallel(
    plans: Sequence[Plan], digest: Digest, progress: Progress | None, jobs: int, piece: int
) -> tuple[Digest, list[FileReport]]:
    pieces = _pieces(plans, piece)
    reports = {
        str(p.path): FileReport(str(p.path), p.format, p.size, p.options.prefix) for p in plans
    }
    offsets = dict.fromkeys(reports, 0)  # lines before the next piece of each file
    handed: list[LogStatement] = []  # the previous piece's statements waiting for a duration
    done = 0
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(_run_piece, p, digest.phases, digest.dialect) for p in pieces]
        for future in futures:
            result = future.result()
            report, path = result.report, result.report.path
            _shift_lines(result.digest, report, offsets[path])
            if handed:
                digest.consume(_hand_over(handed, result.leading), path)
                report.step_durations -= sum(1 for r in handed if result.leading.get(r.session))
            handed = result.pending
            offsets[path] += report.lines
            whole = reports[path]
            whole.lines += report.lines
            whole.records += report.records
            whole.skipped.merge(report.skipped)
            whole.step_durations += report.step_durations
            digest.merge(result.digest)
            done += report.size
            if progress is not None:
                progress(done)
    for report in reports.values():
        _check_readable(report, report.lines, report.skipped)
    return digest, list(reports.values())


def _hand_over(handed: list[LogStatement], leading: dict[str, float | None]) -> list[LogStatement]:
    """The previous piece's waiting statements, completed by this piece's first messages: a
    duration times it, an error drops it (this piece counted the error), else it ran untimed."""
    out = []
    for rec in handed:
        if rec.session in leading:
            ms = leading[rec.session]
            if ms is None:
                continue
            rec.duration_ms = ms
        out.append(rec)
    return out


def _shift_lines(part: Digest, report: FileReport, offset: int) -> None:
    """Line numbers of a piece counted from its start, made the file's."""
    if not offset:
        return
    report.skipped.examples = [(n + offset, why, text) for n, why, text in report.skipped.examples]
    for phase in part.by_phase:
        for st in phase.values():
            for sample in (st.slowest, st.slowest_plan):
                if sample is not None:
                    sample.line += offset
