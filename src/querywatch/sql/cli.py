"""`querywatch lint`: static SQL lint of source files, .sql files or one statement.

Exit codes are for CI: 0 clean (``info`` findings, such as ``select-star`` or ``parse-error``,
never fail), 1 a warning or error finding, 2 nothing could be checked as asked (a missing or
unreadable path, a ``--sql`` statement that does not parse, a broken config). Registered on the
main CLI with :func:`register`.

Lint sees no database: a rule whose verdict depends on table sizes and indexes (``needs_plan``)
is reported as ``info`` and does not fail, unless ``--assume-large`` says every table is large.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from querywatch.errors import QuerywatchError
from querywatch.findings import Finding, Location
from querywatch.sql.lint import DIALECTS, RULES, LintParseError, lint_text, without_plan
from querywatch.sql.source_scan import ScanResult, scan

ConfigOf = Callable[[Any], Mapping[str, Any]]
"""``ctx.obj -> settings``: how the host CLI resolves settings (``dialect``, when it exists)."""

EXIT_CLEAN, EXIT_FINDINGS, EXIT_CANNOT_CHECK = 0, 1, 2
_FAILING = ("error", "warning")
_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


class CannotCheck(click.ClickException):
    """The lint could not run as asked; the CLI prints one line and exits 2."""

    exit_code = EXIT_CANNOT_CHECK


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
    for f in result.findings:
        loc = f.location
        place = f"{loc.path}:{loc.line}:{loc.column}: " if loc else ""
        out.print(
            f"{escape(place)}[{_STYLE[f.severity]}]{f.severity}[/] [bold]{f.rule}[/] "
            f"{escape(f.message)}"
        )
        out.print(f"    fix: {escape(f.fix)}", style="dim")
        if f.sql:
            out.print(f"    sql: {escape(f.sql[:200])}", style="dim")
    out.print(_summary(result), style="bold green" if not result.findings else "bold")


def _dialect_of(config_of: ConfigOf, obj: Any, flag: str | None) -> str:
    if flag:
        return flag
    value = config_of(obj).get("dialect")
    return str(value) if value else "postgres"


def make_command(config_of: ConfigOf) -> click.Command:
    """The ``lint`` command, bound to ``config_of``."""

    @click.command("lint")
    @click.argument("paths", nargs=-1, type=click.Path(path_type=str))
    @click.option(
        "--sql",
        "statement",
        help="Lint this SQL text instead of (or besides) files; `-` reads it from stdin.",
    )
    @click.option(
        "--dialect",
        type=click.Choice(DIALECTS),
        help="SQL dialect of the statements [default: postgres].",
    )
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
    @click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
    @click.pass_obj
    def lint(
        obj: Any,
        paths: tuple[str, ...],
        statement: str | None,
        dialect: str | None,
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
        try:
            name = _dialect_of(config_of, obj, dialect)
            result = scan(paths, name) if paths else ScanResult()
            if statement is not None:
                text = sys.stdin.read() if statement == "-" else statement
                found = lint_text(text, name, location=Location("<sql>", 1, 1), strict=True)
                result.findings.extend(found.findings)
                result.statements += found.statements
        except LintParseError as exc:
            raise CannotCheck(str(exc)) from None
        except QuerywatchError as exc:
            raise CannotCheck(str(exc)) from None
        result.findings = [f for f in result.findings if f.rule not in ignored]
        if not assume_large:
            result.findings = without_plan(result.findings)
        if as_json:
            click.echo(json.dumps(_as_json(result, name, assume_large), indent=2))
        else:
            _print(result, Console(highlight=False, soft_wrap=True))
        failing = any(f.severity in _FAILING for f in result.findings)
        sys.exit(EXIT_FINDINGS if failing else EXIT_CLEAN)

    return lint


def _as_json(result: ScanResult, dialect: str, assume_large: bool) -> dict[str, Any]:
    findings: list[Finding] = result.findings
    return {
        "dialect": dialect,
        "assume_large": assume_large,
        "files": result.files,
        "statements": result.statements,
        "fragments": result.fragments,
        "counts": result.counts(),
        "findings": [f.as_dict() for f in findings],
    }


def register(cli: click.Group, config_of: ConfigOf) -> None:
    """Add ``querywatch lint`` to the main CLI."""
    cli.add_command(make_command(config_of))
