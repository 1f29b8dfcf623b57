"""`querywatch incidents`, `incident show|ack|note|mitigate|resolve` and `postmortem`."""

from __future__ import annotations

import click
from rich.console import Console

from querywatch.cli.context import Context, emit_json, login, opened_store, time_range
from querywatch.cli.options import by_option, json_option, since_option, store_option
from querywatch.incidents import service
from querywatch.incidents.codec import incident_to_dict
from querywatch.incidents.model import STATUSES, Status
from querywatch.incidents.repository import list_incidents
from querywatch.incidents.view import incident_lines, incidents_table
from querywatch.terminal import one_line
from querywatch.timefmt import duration

_by_option = by_option("Who did it")


@click.command("incidents")
@store_option
@click.option(
    "--status",
    type=click.Choice([*STATUSES, "unresolved"]),
    help="Only incidents in this status (unresolved: open, acknowledged or mitigated).",
)
@since_option("Opened since")
@click.option("--release", help="Only incidents that blame a deploy of this release (version).")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@json_option("the incidents as a list")
@click.pass_obj
def incidents(
    obj: Context,
    store: str | None,
    status: str | None,
    since: str | None,
    release: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Incidents, newest first: id, status, when, what, the culprit and the deploy."""
    since_ts, _, _ = time_range(since, None)
    statuses: tuple[Status, ...] | None = None
    if status == "unresolved":
        statuses = ("open", "acknowledged", "mitigated")
    elif status is not None:
        statuses = (status,)  # type: ignore[assignment]
    with opened_store(obj.config(store=store), read_only=True) as the_store:
        found = list_incidents(
            the_store, status=statuses, since=since_ts, limit=limit, release=release
        )
    if as_json:
        emit_json([incident_to_dict(i) for i in found])
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
@store_option
@json_option("the incident")
@click.pass_obj
def show(obj: Context, incident_id: str, store: str | None, as_json: bool) -> None:
    """Everything about one incident: status, deploy, culprits, triage, impact, timeline."""
    with opened_store(obj.config(store=store), read_only=True) as the_store:
        found = service.get_incident(the_store, incident_id)
    if as_json:
        emit_json(incident_to_dict(found))
    else:
        click.echo("\n".join(incident_lines(found)))


@incident.command("ack")
@click.argument("incident_id", metavar="ID")
@_by_option
@store_option
@click.pass_obj
def ack(obj: Context, incident_id: str, by: str | None, store: str | None) -> None:
    """Acknowledge: someone is on it."""
    who = by or login()
    with opened_store(obj.config(store=store)) as the_store:
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
@store_option
@click.pass_obj
def note(
    obj: Context,
    incident_id: str,
    text: str,
    by: str | None,
    misleading: bool,
    tags: tuple[str, ...],
    store: str | None,
) -> None:
    """Add a note to the timeline (any status, also after resolution)."""
    with opened_store(obj.config(store=store)) as the_store:
        service.add_note(
            the_store, incident_id, text, by=by or login(), tags=tags, misleading=misleading
        )
    click.echo(one_line(f"note added to {incident_id}") + (" (misleading)" * misleading))


@incident.command("mitigate")
@click.argument("incident_id", metavar="ID")
@_by_option
@click.option("--note", "note_text", help="What mitigated it (rollback, cache flush…).")
@store_option
@click.pass_obj
def mitigate(
    obj: Context, incident_id: str, by: str | None, note_text: str | None, store: str | None
) -> None:
    """Mark it mitigated: users are no longer hurt, the cause is not fixed yet."""
    who = by or login()
    with opened_store(obj.config(store=store)) as the_store:
        service.mitigate(the_store, incident_id, by=who, note=note_text)
    click.echo(one_line(f"{incident_id} mitigated" + (f" by {who}" if who else "")))


@incident.command("resolve")
@click.argument("incident_id", metavar="ID")
@_by_option
@click.option("--note", "note_text", help="How it was fixed.")
@store_option
@click.pass_obj
def resolve(
    obj: Context, incident_id: str, by: str | None, note_text: str | None, store: str | None
) -> None:
    """Resolve: the fix is in and the figures are normal again. Final."""
    who = by or login()
    with opened_store(obj.config(store=store)) as the_store:
        done = service.resolve(the_store, incident_id, by=who, note=note_text)
    took = duration((done.resolved_at or done.detected_at) - done.detected_at)
    click.echo(
        one_line(f"{incident_id} resolved" + (f" by {who}" if who else ""))
        + f", {took} after detection"
    )


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
@store_option
@click.pass_obj
def postmortem(
    obj: Context, incident_id: str, fmt: str, output: str | None, store: str | None
) -> None:
    """Write the incident's postmortem from its stored facts, in the outage report's shape.

    Timeline contradictions are printed as warnings on stderr (and noted in the document).
    """
    from querywatch.incidents.postmortem import render_postmortem, write_postmortem

    with opened_store(obj.config(store=store), read_only=True) as the_store:
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
