"""Options that several commands share, written once.

An option that sets a setting takes its environment variable and default from the settings table
(:data:`querywatch.config.SETTINGS`), so `--help`, docs/cli.md and the loader cannot disagree.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar, cast

import click

from querywatch.cli.context import Context
from querywatch.config import setting

F = TypeVar("F", bound=Callable[..., Any])
Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

DEFAULT_DIALECT = "postgres"
"""How `fingerprint` and `lint` read quotes and escapes unless told (--dialect)."""


def setting_help(name: str, text: str | None = None) -> str:
    """``text`` (default: the setting's own help) with its env variable and the table's default,
    so a help string never repeats a default by hand."""
    s = setting(name)
    default = s.default
    shown = (
        ""
        if default is None
        else f"; default {default:g}"
        if isinstance(default, float)
        else f"; default {default}"
    )
    return f"{(text or s.help).rstrip('.')} [env {s.env}{shown}]."


def store_option(f: F) -> F:
    return click.option("--store", help=setting_help("store", "Store path or PostgreSQL URL."))(f)


def dsn_option(text: str) -> Decorator:
    """``--dsn``: what the database is for differs per command; the env variable does not."""
    return click.option("--dsn", help=setting_help("dsn", text))


def env_option(text: str) -> Decorator:
    """``--env/--environment``, the ``environment`` setting."""
    return click.option(
        "--env", "--environment", "environment", help=setting_help("environment", text)
    )


def _mark_json(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    state = ctx.find_object(Context)
    if value and state is not None:
        state.json = True
    return value


def json_option(what: str) -> Decorator:
    """``--json``: ``what`` printed in the JSON envelope (docs/json.md), errors included.

    Eager, so a later bad option already fails as an envelope.
    """
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        is_eager=True,
        callback=_mark_json,
        help=f"Print {what} in the JSON envelope (docs/json.md).",
    )


def since_option(text: str = "Start of the range") -> Decorator:
    return click.option("--since", help=f"{text}: 10m, 2h, 1d, an ISO time or epoch seconds.")


def until_option(f: F) -> F:
    return click.option("--until", help="End of the range (same forms as --since; default now).")(f)


def time_range_options(f: F) -> F:
    """``--since`` and ``--until``; read them with :func:`querywatch.cli.context.time_range`."""
    since: Decorator = since_option()
    return cast(F, since(until_option(f)))


def by_option(text: str) -> Decorator:
    return click.option("--by", help=f"{text} (default: your login name).")


def dialect_option(choices: tuple[str, ...], text: str) -> Decorator:
    return click.option(
        "--dialect",
        type=click.Choice(choices),
        default=DEFAULT_DIALECT,
        show_default=True,
        help=text,
    )


class FiniteFloat(click.FloatRange):
    """A float option that refuses ``nan`` and ``inf``: click's own FloatRange lets NaN through
    every bound (NaN compares false with everything), and ``--duration nan`` would never end."""

    name = "finite float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(
                f"{value!r} is not a finite number (nan and infinity are refused)", param, ctx
            )
        return super().convert(number, param, ctx)
