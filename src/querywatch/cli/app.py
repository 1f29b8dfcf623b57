"""The `querywatch` group, its commands, and :func:`main`: the one place errors become exit codes.

Exit codes: 0 done; 1 a domain error (or, for the checks, problems found); 2 could not check
(:class:`~querywatch.errors.CouldNotCheck`) or a usage error; 130 interrupted.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import click

from querywatch.cli.context import Context, fail
from querywatch.envelope import error_code
from querywatch.errors import CouldNotCheck, QuerywatchError

EXIT_INTERRUPTED = 130


#: Every command, by name: where it lives. Imported when it runs (or ``--help`` lists it), so
#: ``watch``, the long-running agent, never loads sqlglot, the gate or the HTTP server.
COMMANDS = {
    "canary": "querywatch.cli.canary:canary",
    "check": "querywatch.cli.gate:check",
    "demo": "querywatch.cli.watch:demo",
    "digest": "querywatch.cli.digest:digest_cmd",
    "deploy": "querywatch.cli.deploys:deploy",
    "deploys": "querywatch.cli.deploys:deploys_cmd",
    "explain": "querywatch.cli.explain:explain_cmd",
    "fingerprint": "querywatch.cli.lint:fingerprint_cmd",
    "incident": "querywatch.cli.incidents:incident",
    "incidents": "querywatch.cli.incidents:incidents",
    "lint": "querywatch.cli.lint:lint",
    "postmortem": "querywatch.cli.incidents:postmortem",
    "rollback": "querywatch.cli.respond:rollback",
    "runbook": "querywatch.cli.respond:runbook",
    "serve": "querywatch.cli.serve:serve",
    "settings": "querywatch.cli.views:settings",
    "top": "querywatch.cli.views:top",
    "watch": "querywatch.cli.watch:watch",
}


class _LazyGroup(click.Group):
    """A group whose commands are imported by name when asked for (see :data:`COMMANDS`)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in COMMANDS:
            module, name = COMMANDS[cmd_name].split(":")
            command = getattr(importlib.import_module(module), name)
            assert isinstance(command, click.Command), COMMANDS[cmd_name]
            self.add_command(command, cmd_name)
        return command


@click.group(
    cls=_LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
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
