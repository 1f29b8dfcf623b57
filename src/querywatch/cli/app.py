"""The `querywatch` group, its commands, and :func:`main`: the one place errors become exit codes.

Exit codes: 0 done; 1 a domain error (or, for the checks, problems found); 2 could not check
(:class:`~querywatch.errors.CouldNotCheck`) or a usage error; 130 interrupted.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from querywatch.cli.context import Context, fail
from querywatch.envelope import error_code
from querywatch.errors import CouldNotCheck, QuerywatchError

EXIT_INTERRUPTED = 130


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--debug", is_flag=True, help="Show the full traceback on errors.")
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path),
    help="Config file (default: ./querywatch.toml or [tool.querywatch] in pyproject.toml).",
)
@click.version_option(package_name="querywatch")
@click.pass_context
def cli(ctx: click.Context, debug: bool, config_file: Path | None) -> None:
    """Catch the SQL query that takes your service down, name it, and close the loop."""
    state = ctx.ensure_object(Context)
    state.debug = debug
    state.config_file = config_file


def _register() -> None:
    from querywatch.cli.deploys import deploy, deploys_cmd
    from querywatch.cli.explain import explain_cmd
    from querywatch.cli.gate import check
    from querywatch.cli.incidents import COMMANDS as INCIDENT_COMMANDS
    from querywatch.cli.lint import fingerprint_cmd, lint
    from querywatch.cli.respond import COMMANDS as RESPOND_COMMANDS
    from querywatch.cli.serve import serve
    from querywatch.cli.views import settings, top
    from querywatch.cli.watch import demo, watch

    for command in (
        watch,
        demo,
        top,
        fingerprint_cmd,
        settings,
        *INCIDENT_COMMANDS,
        deploy,
        deploys_cmd,
        serve,
        *RESPOND_COMMANDS,
        lint,
        check,
        explain_cmd,
    ):
        cli.add_command(command)


_register()


def main(argv: list[str] | None = None) -> None:
    """Run the CLI: a domain error is one red line (and an error envelope under --json), with
    exit code 2 for "could not check", 1 for any other; ``--debug`` shows the traceback."""
    args = sys.argv[1:] if argv is None else argv
    state = Context(debug="--debug" in args)
    try:
        cli.main(args=args, prog_name="querywatch", standalone_mode=False, obj=state)
    except (click.exceptions.Abort, KeyboardInterrupt):
        fail("interrupted", EXIT_INTERRUPTED, error="interrupted", as_json=state.json)
    except click.ClickException as exc:
        if state.debug:
            raise
        code = "usage_error" if isinstance(exc, click.UsageError) else "error"
        as_json = state.json or _asked_for_json(exc, args)
        fail(exc.format_message(), exc.exit_code, error=code, as_json=as_json)
    except QuerywatchError as exc:
        if state.debug:
            raise
        exit_code = exc.exit_code if isinstance(exc, CouldNotCheck) else 1
        fail(str(exc), exit_code, error=error_code(exc), as_json=state.json)


def _asked_for_json(exc: click.ClickException, args: list[str]) -> bool:
    """A usage error the parser raised before ``--json`` was read (``top --json --bogus``): the
    command asked for still has a ``--json`` flag, and it is on the command line."""
    ctx = getattr(exc, "ctx", None)
    if ctx is None or "--json" not in args:
        return False
    return any(p.name == "as_json" for p in ctx.command.params)
