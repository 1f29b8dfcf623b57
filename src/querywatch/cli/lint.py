"""`querywatch lint` (static SQL lint) and `querywatch fingerprint` (one statement's identity).

Lint's exit codes are for CI: 0 clean (``info`` findings, such as ``select-star`` or
``parse-error``, never fail), 1 a warning or error finding, 2 nothing could be checked as asked (a
missing or unreadable path, a ``--sql`` statement that does not parse, a broken config).

Lint sees no database: a rule whose verdict depends on table sizes and indexes (``needs_plan``)
is reported as ``info`` and does not fail, unless ``--assume-large`` says every table is large.
"""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.console import Console
from rich.text import Text

from querywatch.cli.context import Context, could_not_check, emit_json
from querywatch.cli.options import dialect_option, json_option
from querywatch.findings import Location
from querywatch.sql.lint import DIALECTS, RULES, lint_text, without_plan
from querywatch.sql.source_scan import ScanResult, scan
from querywatch.terminal import one_line, safe_text

EXIT_CLEAN, EXIT_FINDINGS = 0, 1
_FAILING = ("error", "warning")
_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 or word == "info" else "s")


def _summary(result: ScanResult) -> str:
    counts = result.counts()
    where = (
        f"{_plural(result.statements, 'statement')} from {_plural(result.files, 'file')}"
        if result.files
        else _plural(result.statements, "statement")
    )
    if result.fragments:
        where += f" ({_plural(result.fragments, 'fragment')} of statements skipped)"
    if not result.findings:
        return f"no findings in {where}"
    parts = ", ".join(_plural(n, s) for s, n in counts.items() if n)
    line = f"{_plural(len(result.findings), 'finding')} ({parts}) in {where}"
    unjudged = sum(bool(f.evidence.get("needs_plan")) for f in result.findings)
    if unjudged:
        verb, them = ("depends", "it") if unjudged == 1 else ("depend", "them")
        line += (
            f"; {unjudged} {verb} on table sizes and indexes, which lint cannot see: info until"
            f" a plan judges {them} (querywatch explain, the CI gate)"
        )
    return line


def _print(result: ScanResult, out: Console) -> None:
    """Paths, messages and SQL come from the code linted: shown literally (no markup, controls
    escaped), styled only by appending to a Text."""
    for f in result.findings:
        loc = f.location
        place = one_line(f"{loc.path}:{loc.line}:{loc.column}: ") + " " if loc else ""
        out.print(
            Text.assemble(
                place,
                (f.severity, _STYLE[f.severity]),
                " ",
                (one_line(f.rule), "bold"),
                " ",
                safe_text(f.message),
            )
        )
        out.print(Text(f"    fix: {one_line(f.fix)}", style="dim"))
        if f.sql:
            out.print(Text(f"    sql: {one_line(f.sql[:200])}", style="dim"))
    out.print(_summary(result), style="bold green" if not result.findings else "bold")


@click.command("lint")
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@click.option(
    "--sql",
    "statement",
    help="Lint this SQL text instead of (or besides) files; `-` reads it from stdin.",
)
@dialect_option(DIALECTS, "SQL dialect of the statements.")
@click.option(
    "--ignore",
    "ignored",
    multiple=True,
    metavar="RULE",
    help="Skip this rule everywhere (repeatable); see docs/lint.md for rule ids.",
)
@click.option(
    "--assume-large",
    is_flag=True,
    help="Treat every table as large: findings that depend on table sizes keep their "
    "rule's severity (warning) instead of info.",
)
@json_option("the findings")
@click.pass_obj
def lint(
    obj: Context,
    paths: tuple[str, ...],
    statement: str | None,
    dialect: str,
    ignored: tuple[str, ...],
    assume_large: bool,
    as_json: bool,
) -> None:
    """Lint SQL in .py and .sql files (or one statement) for shapes that defeat indexes.

    Exits 1 when a finding is a warning or an error, 2 when something could not be checked.
    Findings that depend on table sizes and indexes are info unless --assume-large.
    Silence one place with a `querywatch: ignore[rule-id]` comment.
    """
    if not paths and statement is None:
        raise click.UsageError("give a PATH to lint, or --sql 'SELECT …'")
    unknown = sorted(set(ignored) - set(RULES))
    if unknown:
        raise click.BadParameter(
            f"unknown rule {', '.join(unknown)} (rules: {', '.join(sorted(RULES))})",
            param_hint="--ignore",
        )
    with could_not_check():
        obj.config()  # a broken config file is "could not check", as before any file is read
        result = scan(paths, dialect) if paths else ScanResult()
        if statement is not None:
            text = sys.stdin.read() if statement == "-" else statement
            found = lint_text(text, dialect, location=Location("<sql>", 1, 1), strict=True)
            result.findings.extend(found.findings)
            result.statements += found.statements
    result.findings = [f for f in result.findings if f.rule not in ignored]
    if not assume_large:
        result.findings = without_plan(result.findings)
    if as_json:
        emit_json(_as_json(result, dialect, assume_large))
    else:
        _print(result, Console(highlight=False, soft_wrap=True))
    failing = any(f.severity in _FAILING for f in result.findings)
    sys.exit(EXIT_FINDINGS if failing else EXIT_CLEAN)


def _as_json(result: ScanResult, dialect: str, assume_large: bool) -> dict[str, Any]:
    return {
        "dialect": dialect,
        "assume_large": assume_large,
        "files": result.files,
        "statements": result.statements,
        "fragments": result.fragments,
        "counts": result.counts(),
        "findings": [f.as_dict() for f in result.findings],
    }


@click.command("fingerprint")
@click.argument("sql")
@dialect_option(("postgres", "mysql", "sqlite"), "How to read quotes and escapes.")
@json_option("{fingerprint, normalized}")
def fingerprint_cmd(sql: str, dialect: str, as_json: bool) -> None:
    """The fingerprint and normalized text of one statement (`-` reads it from stdin)."""
    from querywatch.sql import fingerprint

    text = sys.stdin.read() if sql == "-" else sql
    fp = fingerprint(text, dialect)
    if as_json:
        emit_json({"fingerprint": fp.id, "normalized": fp.normalized})
    else:
        click.echo(f"{fp.id}  {one_line(fp.normalized)}")
