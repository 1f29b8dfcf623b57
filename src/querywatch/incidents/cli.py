"""`querywatch incidents`, `incident show|ack|note|mitigate|resolve` and `postmortem`.

The commands are built against a function that resolves settings (so ``--store`` and
``QUERYWATCH_STORE`` mean what they mean everywhere) and are registered on the main CLI with
:func:`register`.
"""

from __future__ import annotations

import contextlib
import getpass
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import click
from rich.console import Console

from querywatch import render
from querywatch.incidents import service
from querywatch.incidents.codec import incident_to_dict
from querywatch.incidents.model import STATUSES, Status
from querywatch.incidents.repository import list_incidents
from querywatch.incidents.view import incident_lines, incidents_table
from querywatch.store.base import Store
from querywatch.terminal import one_line
from querywatch.timefmt import duration
from querywatch.timespec import parse_time

ConfigOf = Callable[[Any, "str | None"], Mapping[str, Any]]
"""``(ctx.obj, --store value) -> settings``: how the host CLI resolves ``store``."""

_store_option = click.option("--store", help="Store path or PostgreSQL URL [env QUERYWATCH_STORE].")
_by_option = click.option("--by", help="Who did it (default: your login name).")


def _open(config_of: ConfigOf, obj: Any, store: str | None, *, read_only: bool = False) -> Store:
    """Open the configured store; a missing SQLite file is an error, not a new empty store."""
    from querywatch.store import open_store

    return open_store(str(config_of(obj, store)["store"]), create=False, read_only=read_only)


def _login() -> str | None:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no USER and no passwd entry (some containers)
        return None


def make_commands(config_of: ConfigOf) -> tuple[click.Command, click.Group]:
    """The ``incidents`` command and the ``incident`` group, bound to ``config_of``."""

    @click.command("incidents")
    @_store_option
    @click.option(
        "--status",
        type=click.Choice([*STATUSES, "unresolved"]),
        help="Only incidents in this status (unresolved: open, acknowledged or mitigated).",
    )
    @click.option("--since", help="Opened since: 10m, 2h, 1d, an ISO time or epoch seconds.")
    @click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
    @click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
    @click.pass_obj
    def incidents(
        obj: Any,
        store: str | None,
        status: str | None,
        since: str | None,
        limit: int,
        as_json: bool,
    ) -> None:
        """Incidents, newest first: id, status, when, what, the culprit and the deploy."""
        since_ts = parse_time(since, now=time.time(), option="--since") if since else None
        statuses: tuple[Status, ...] | None = None
        if status == "unresolved":
            statuses = ("open", "acknowledged", "mitigated")
        elif status is not None:
            statuses = (status,)  # type: ignore[assignment]
        with _opened(config_of, obj, store, read_only=True) as the_store:
            found = list_incidents(the_store, status=statuses, since=since_ts, limit=limit)
        if as_json:
            click.echo(render.dumps([incident_to_dict(i) for i in found]))
        elif not found:
            click.echo("no incidents" + (f" {status}" if status else "") + " recorded")
        else:
            out = Console(highlight=False)
            out.print(incidents_table(found, width=out.width))

    @click.group("incident")
    def incident() -> None:
        """Look at one incident and move it along: ack, note, mitigate, resolve."""

    @incident.command("show")
    @click.argument("incident_id", metavar="ID")
    @_store_option
    @click.option("--json", "as_json", is_flag=True, help="Print the incident as a JSON object.")
    @click.pass_obj
    def show(obj: Any, incident_id: str, store: str | None, as_json: bool) -> None:
        """Everything about one incident: status, deploy, culprits, triage, impact, timeline."""
        with _opened(config_of, obj, store, read_only=True) as the_store:
            found = service.get_incident(the_store, incident_id)
        if as_json:
            click.echo(render.dumps(incident_to_dict(found)))
        else:
            click.echo("\n".join(incident_lines(found)))

    @incident.command("ack")
    @click.argument("incident_id", metavar="ID")
    @_by_option
    @_store_option
    @click.pass_obj
    def ack(obj: Any, incident_id: str, by: str | None, store: str | None) -> None:
        """Acknowledge: someone is on it."""
        who = by or _login()
        with _opened(config_of, obj, store) as the_store:
            service.acknowledge(the_store, incident_id, by=who)
        click.echo(one_line(f"{incident_id} acknowledged" + (f" by {who}" if who else "")))

    @incident.command("note")
    @click.argument("incident_id", metavar="ID")
    @click.argument("text")
    @_by_option
    @click.option(
        "--misleading",
        is_flag=True,
        help="This path led nowhere (the postmortem counts it as time lost).",
    )
    @click.option("--tag", "tags", multiple=True, help="Tag the note (repeatable).")
    @_store_option
    @click.pass_obj
    def note(
        obj: Any,
        incident_id: str,
        text: str,
        by: str | None,
        misleading: bool,
        tags: tuple[str, ...],
        store: str | None,
    ) -> None:
        """Add a note to the timeline (any status, also after resolution)."""
        with _opened(config_of, obj, store) as the_store:
            service.add_note(
                the_store, incident_id, text, by=by or _login(), tags=tags, misleading=misleading
            )
        click.echo(one_line(f"note added to {incident_id}") + (" (misleading)" * misleading))

    @incident.command("mitigate")
    @click.argument("incident_id", metavar="ID")
    @_by_option
    @click.option("--note", "note_text", help="What mitigated it (rollback, cache flush…).")
    @_store_option
    @click.pass_obj
    def mitigate(
        obj: Any, incident_id: str, by: str | None, note_text: str | None, store: str | None
    ) -> None:
        """Mark it mitigated: users are no longer hurt, the cause is not fixed yet."""
        who = by or _login()
        with _opened(config_of, obj, store) as the_store:
            service.mitigate(the_store, incident_id, by=who, note=note_text)
        click.echo(one_line(f"{incident_id} mitigated" + (f" by {who}" if who else "")))

    @incident.command("resolve")
    @click.argument("incident_id", metavar="ID")
    @_by_option
    @click.option("--note", "note_text", help="How it was fixed.")
    @_store_option
    @click.pass_obj
    def resolve(
        obj: Any, incident_id: str, by: str | None, note_text: str | None, store: str | None
    ) -> None:
        """Resolve: the fix is in and the figures are normal again. Final."""
        who = by or _login()
        with _opened(config_of, obj, store) as the_store:
            done = service.resolve(the_store, incident_id, by=who, note=note_text)
        took = duration((done.resolved_at or done.detected_at) - done.detected_at)
        click.echo(
            one_line(f"{incident_id} resolved" + (f" by {who}" if who else ""))
            + f", {took} after detection"
        )

    return incidents, incident


@contextlib.contextmanager
def _opened(
    config_of: ConfigOf, obj: Any, store: str | None, *, read_only: bool = False
) -> Iterator[Store]:
    """Open the store for one command and always close it."""
    the_store = _open(config_of, obj, store, read_only=read_only)
    try:
        yield the_store
    finally:
        the_store.close()


def make_postmortem_command(config_of: ConfigOf) -> click.Command:
    """``querywatch postmortem ID [--format md|html] [-o FILE]``, bound to ``config_of``."""

    @click.command("postmortem")
    @click.argument("incident_id", metavar="ID")
    @click.option(
        "--format",
        "fmt",
        type=click.Choice(["md", "html"]),
        default="md",
        show_default=True,
        help="Markdown, or a self-contained HTML page.",
    )
    @click.option(
        "-o",
        "--output",
        "output",
        type=click.Path(dir_okay=False),
        help="Write to FILE (atomically; your edits to a postmortem already there are kept).",
    )
    @_store_option
    @click.pass_obj
    def postmortem(
        obj: Any, incident_id: str, fmt: str, output: str | None, store: str | None
    ) -> None:
        """Write the incident's postmortem from its stored facts, in the outage report's shape.

        Timeline contradictions are printed as warnings on stderr (and noted in the document).
        """
        from querywatch.incidents.postmortem import render_postmortem, write_postmortem

        with _opened(config_of, obj, store, read_only=True) as the_store:
            if output is None:
                done = render_postmortem(the_store, incident_id, fmt)
            else:
                done = write_postmortem(the_store, incident_id, output, fmt)
        for warning in done.warnings:
            click.echo(f"warning: {one_line(warning)}", err=True)
        for title in done.kept_sections:
            click.echo(f"kept your edits to {one_line(title)}", err=True)
        for where in done.kept_additions:
            click.echo(f"kept {one_line(where)}", err=True)
        if output is None:
            click.echo(done.text, nl=False)
        else:
            click.echo(one_line(f"postmortem of {incident_id} written to {output}"))

    return postmortem


def register(group: click.Group, config_of: ConfigOf) -> None:
    """Add ``incidents``, ``incident`` and ``postmortem`` to the host CLI's group."""
    for command in (*make_commands(config_of), make_postmortem_command(config_of)):
        group.add_command(command)
