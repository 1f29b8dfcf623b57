"""The terminal report of `querywatch digest`: what was read, the top fingerprints, and notes.

Drawn from the same ``digest_json`` document as ``--json`` and ``--html``, so the three agree.
The report never ends silently empty: no statements gets a sentence saying which server setting
logs them, and skipped lines are counted with examples.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.text import Text

from querywatch.logs.digest import Digest
from querywatch.logs.report import ms_text as _ms
from querywatch.logs.report import row_json, utc_text
from querywatch.logs.scan import FileReport
from querywatch.terminal import left_for_text, plain_table, safe_text

SAMPLES = 5
"""Top fingerprints whose slowest sample is printed under the table."""

_HOW_TO_LOG = {
    "postgres": "PostgreSQL logs statements with log_min_duration_statement = 0 (or a threshold), "
    "or log_statement = 'all' with log_duration = on",
    "mysql": "MySQL logs statements to the slow log with slow_query_log = ON and "
    "long_query_time = 0 (or a threshold)",
}


def _indented(text: str, depth: int = 2) -> Text:
    """Outside text on one line, indented (safe_text alone would fold the leading spaces)."""
    return Text.assemble(" " * depth, safe_text(text))


def _when(ts: float | None) -> str:
    return utc_text(ts, zone="")


def print_report(
    digest: Digest,
    reports: Sequence[FileReport],
    data: dict[str, Any],
    *,
    sort: str,
    show_values: bool = False,
    console: Console | None = None,
) -> None:
    out = console or Console(highlight=False)
    out.print(safe_text(_headline(data)))
    if not data["statements"]:
        out.print(
            safe_text(
                f"no statements in {_names(reports)}: {_HOW_TO_LOG.get(digest.dialect, '')}.",
                style="bold yellow",
            )
        )
    phases = data.get("phases")
    if phases:
        for phase in phases:
            title = f"{phase['label']}: top {len(phase['fingerprints'])} by {sort}"
            out.print(fingerprint_table(phase["fingerprints"], title, out.width))
    elif data["fingerprints"]:
        title = f"top {len(data['fingerprints'])} of {data['fingerprint_count']:,} by {sort}"
        out.print(fingerprint_table(data["fingerprints"], title, out.width))
    _samples(out, data["fingerprints"][:SAMPLES])
    # Errors, lock waits and temporary files of every fingerprint, not only the top ones.
    _events(out, [row_json(st, digest.dialect, show_values) for st in digest.all_rows(sort)])
    _notes(out, data)


def _names(reports: Sequence[FileReport]) -> str:
    names = [r.path for r in reports]
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _headline(data: dict[str, Any]) -> str:
    formats = sorted({f["format"] for f in data["files"]})
    files = len(data["files"])
    span = (
        f", {_when(data['first_seen'])} to {_when(data['last_seen'])} UTC"
        if data["first_seen"]
        else ""
    )
    return (
        f"{data['statements']:,} statements, {data['fingerprint_count']:,} fingerprints{span}; "
        f"{files} file{'s' if files != 1 else ''} ({', '.join(formats)})"
    )


WIDE = 120
"""Below this many columns the table keeps total, calls, mean and p95 only."""


def fingerprint_table(rows: Sequence[dict[str, Any]], title: str, width: int) -> Any:
    """The top fingerprints; the query takes the width the figures leave."""
    headers = ["total ms", "calls", "mean ms", "p95 ms", "p99 ms", "rows", "last seen"]
    cells = [
        [
            _ms(r["total_ms"]),
            f"{r['calls']:,}",
            _ms(r["mean_ms"]),
            _ms(r["p95_ms"]),
            _ms(r["p99_ms"]),
            "–" if r["rows"] is None else f"{r['rows']:,}",
            _when(r["last_seen"])[5:] if r["last_seen"] else "–",
        ]
        for r in rows
    ]
    keep = len(headers) if width >= WIDE else 4
    headers, cells = headers[:keep], [c[:keep] for c in cells]
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(headers)]
    table = plain_table(title)
    for header, w in zip(headers, widths, strict=True):
        table.add_column(header, justify="right", no_wrap=True, width=w)
    room = left_for_text(width, widths, 20)
    table.add_column("query (fingerprint)", overflow="ellipsis", no_wrap=True, width=room)
    for r, row in zip(rows, cells, strict=True):
        query = safe_text(r["normalized"])
        query.append("\n")
        query.append(r["fingerprint"], style="dim")
        table.add_row(*(Text(c) for c in row), query)
    return table


def _samples(out: Console, rows: Sequence[dict[str, Any]]) -> None:
    shown = [r for r in rows if r["sample"]]
    if not shown:
        return
    out.print(Text("slowest samples", style="bold"))
    for r in shown:
        s = r["sample"]
        where = f"{s['file']}:{s['line']}" if s["file"] else f"line {s['line']}"
        line = f"{r['fingerprint']}  {_ms(s['duration_ms'])} ms at {_when(s['at'])} ({where})"
        out.print(_indented(line), soft_wrap=True)
        if s["parameters"]:
            out.print(_indented(f"parameters: {s['parameters']}", 4), soft_wrap=True)
        if not s["redacted"]:
            out.print(_indented(s["text"], 4), soft_wrap=True)
    if shown[0]["sample"]["redacted"]:
        out.print(Text("  (values redacted: --show-values shows them)", style="dim"))


def _events(out: Console, rows: Sequence[dict[str, Any]]) -> None:
    for key, label, unit in (
        ("errors", "errors", ""),
        ("lock_waits", "lock waits", "lock_wait_ms"),
        ("temp_files", "temporary files", "temp_bytes"),
        ("plans", "auto_explain plans", ""),
    ):
        hit = sorted((r for r in rows if r[key]), key=lambda r: -r[key])[:5]
        if not hit:
            continue
        out.print(Text(label, style="bold"))
        for r in hit:
            extra = ""
            if unit == "lock_wait_ms" and r[unit]:
                extra = f", {_ms(r[unit])} ms waited"
            elif unit == "temp_bytes":
                extra = f", {r[unit] / 2**20:,.1f} MiB"
            elif key == "errors" and r["error_example"]:
                extra = f": {r['error_example']}"
            text = f"{r[key]:,} × {r['fingerprint']} {r['normalized'][:60]}{extra}"
            out.print(_indented(text), soft_wrap=True)


def _notes(out: Console, data: dict[str, Any]) -> None:
    orphans = data["errors_without_statement"]
    if orphans:
        total = sum(o["count"] for o in orphans)
        out.print(safe_text(f"{total:,} errors without a statement, e.g. {orphans[0]['message']}"))
    for f in data["files"]:
        if f["skipped"]:
            out.print(
                safe_text(
                    f"{f['path']}: {f['skipped']:,} of {f['lines']:,} lines skipped", style="yellow"
                )
            )
            for e in f["skipped_examples"][:3]:
                out.print(_indented(f"line {e['line']} ({e['reason']}): {e['text'][:100]}"))
        if f["unknown_time_zones"]:
            zones = ", ".join(f["unknown_time_zones"])
            out.print(
                safe_text(f"{f['path']}: times in {zones} read as UTC (pass --timezone)"),
                style="yellow",
            )
