"""Incidents in the store: their SQL and row mapping, over the store's transactions.

The store creates the ``incidents`` and ``incident_events`` tables (migration 4) but knows
nothing of incidents; this module reads and writes them through :meth:`Store.transaction`, so the
SQL is the same on SQLite and PostgreSQL (``?`` placeholders, ``ON CONFLICT`` upserts). Rules
(which status may follow which) live in :mod:`querywatch.incidents.service`, not here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from querywatch.errors import NotFound
from querywatch.incidents.codec import body_parts, body_to_json, dumps
from querywatch.incidents.model import EventKind, Incident, Status, TimelineEvent
from querywatch.store.base import Store, Tx

_INCIDENT_COLUMNS = "id, status, opened_at, detected_at, resolved_at, title, deploy_id, body"
# opened_at, detected_at and deploy_id describe how the incident began and never change.
_UPSERT_INCIDENT = f"""
INSERT INTO incidents ({_INCIDENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
  status = excluded.status,
  resolved_at = excluded.resolved_at,
  title = excluded.title,
  body = excluded.body
"""
_CLAIM_INCIDENT = (
    f"INSERT INTO incidents ({_INCIDENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO NOTHING RETURNING id"
)
_EVENT_COLUMNS = "incident_id, seq, at, kind, message, author, tags, data"
_INSERT_EVENT = f"INSERT INTO incident_events ({_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"


def no_incident(incident_id: str) -> NotFound:
    """The one line the CLI prints for an unknown id."""
    return NotFound(f"no incident {incident_id} (querywatch incidents lists them)")


def create_incident(store: Store, incident: Incident, id_prefix: str) -> Incident:
    """Insert a new incident numbered ``{id_prefix}-N`` with the next free N, and its timeline.

    Numbering and insert share one transaction, and a number taken by a concurrent writer is
    skipped, so two agents on one store never hand out the same id. Returns the stored incident.
    """
    pattern = id_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")

    def create(tx: Tx) -> Incident:
        taken = [
            row[0][len(id_prefix) + 1 :]
            for row in tx.rows(
                "SELECT id FROM incidents WHERE id LIKE ? ESCAPE '\\'", (pattern + "-%",)
            )
        ]
        n = max((int(t) for t in taken if t.isdigit()), default=0)
        while True:
            n += 1
            incident.id = f"{id_prefix}-{n}"
            if tx.rows(_CLAIM_INCIDENT, _incident_params(incident)):
                break
        for seq, event in enumerate(incident.timeline, start=1):
            tx.run(_INSERT_EVENT, _event_params(incident.id, seq, event))
        return incident

    return store.transaction(create)


def save_incident(store: Store, incident: Incident) -> None:
    """Insert the incident, or update its status, resolved_at, title and body.

    Timeline events are stored by position (the i-th event has seq i+1) and never rewritten:
    events already stored stay, new positions are appended. To append while others may write
    too, use :func:`add_event` or :func:`update_incident`.
    """

    def save(tx: Tx) -> None:
        tx.run(_UPSERT_INCIDENT, _incident_params(incident))
        events = [
            _event_params(incident.id, seq, event)
            for seq, event in enumerate(incident.timeline, start=1)
        ]
        if events:
            tx.run_many(_INSERT_EVENT + " ON CONFLICT (incident_id, seq) DO NOTHING", events)

    store.transaction(save)


def load_incident(store: Store, incident_id: str) -> Incident | None:
    """The incident with its timeline in order, or ``None`` if there is no such id.

    :func:`querywatch.incidents.service.get_incident` raises :class:`NotFound` instead.
    """
    return store.transaction(lambda tx: _load(tx, incident_id), write=False)


def list_incidents(
    store: Store,
    status: Status | Sequence[Status] | None = None,
    since: float | None = None,
    limit: int = 50,
    release: str | None = None,
) -> list[Incident]:
    """Incidents newest first (opened at or after ``since``), optionally in some statuses, or
    only those that blame a deploy of ``release`` (the version a canary or a deploy shipped)."""
    clauses, params = [], list[object]()
    if status is not None:
        statuses = [status] if isinstance(status, str) else list(status)
        if not statuses:
            return []
        clauses.append(f"status IN ({', '.join('?' * len(statuses))})")
        params.extend(statuses)
    if since is not None:
        clauses.append("opened_at >= ?")
        params.append(since)
    if release is not None:
        clauses.append("deploy_id IN (SELECT id FROM deploys WHERE version = ?)")
        params.append(release)
    where = " WHERE " + " AND ".join(clauses) if clauses else ""
    sql = (
        f"SELECT {_INCIDENT_COLUMNS} FROM incidents{where} ORDER BY opened_at DESC, id DESC LIMIT ?"
    )

    def read(tx: Tx) -> list[Incident]:
        rows = tx.rows(sql, [*params, limit])
        timelines = _timelines(tx, [r[0] for r in rows])
        return [_incident(r, timelines[r[0]]) for r in rows]

    return store.transaction(read, write=False)


def add_event(store: Store, incident_id: str, event: TimelineEvent) -> int:
    """Append one event to the timeline; returns its seq. Raises NotFound for an unknown id."""

    def add(tx: Tx) -> int:
        tx.run("UPDATE incidents SET status = status WHERE id = ?", (incident_id,))
        if not tx.rows("SELECT 1 FROM incidents WHERE id = ?", (incident_id,)):
            raise no_incident(incident_id)
        return _append_events(tx, incident_id, [event])

    return store.transaction(add)


def set_status(store: Store, incident_id: str, status: Status, at: float) -> None:
    """Set the status (``resolved_at`` = ``at`` when resolved). No rules: see the service."""

    def update(tx: Tx) -> None:
        if not tx.rows("SELECT 1 FROM incidents WHERE id = ?", (incident_id,)):
            raise no_incident(incident_id)
        tx.run(
            "UPDATE incidents SET status = ?, resolved_at = ? WHERE id = ?",
            (status, at if status == "resolved" else None, incident_id),
        )

    store.transaction(update)


def update_incident(
    store: Store, incident_id: str, change: Callable[[Incident], Sequence[TimelineEvent]]
) -> Incident:
    """Read, change and write one incident in one transaction, with its row locked.

    ``change`` edits the incident in place (status, findings…) and returns events to append;
    raising from it changes nothing. This is how lifecycle rules are checked without a race.
    """

    def update(tx: Tx) -> Incident:
        incident = _load(tx, incident_id, lock=True)
        if incident is None:
            raise no_incident(incident_id)
        events = list(change(incident))
        incident.id = incident_id  # the id is the row: a change cannot move it
        tx.run(_UPSERT_INCIDENT, _incident_params(incident))
        _append_events(tx, incident_id, events)
        # The timeline as stored: what was there, then what was appended.
        return _load(tx, incident_id) or incident

    return store.transaction(update)


# -- rows -----------------------------------------------------------------------------------------


def _incident_params(incident: Incident) -> tuple[object, ...]:
    return (
        incident.id,
        incident.status,
        incident.opened_at,
        incident.detected_at,
        incident.resolved_at,
        incident.title,
        incident.deploy_id,
        body_to_json(incident),
    )


def _event_params(incident_id: str, seq: int, event: TimelineEvent) -> tuple[object, ...]:
    return (
        incident_id,
        seq,
        event.at,
        event.kind,
        event.message,
        event.author,
        dumps(list(event.tags)),
        dumps(event.data),
    )


def _incident(row: Sequence[Any], timeline: list[TimelineEvent]) -> Incident:
    id_, status, opened, detected, resolved, title, deploy_id, body = row
    detections, culprits, triage, impact, plans = body_parts(body)
    return Incident(
        id=id_,
        status=status,
        opened_at=float(opened),
        detected_at=float(detected),
        title=title,
        deploy_id=deploy_id,
        detections=detections,
        culprits=culprits,
        triage=triage,
        impact=impact,
        timeline=timeline,
        resolved_at=None if resolved is None else float(resolved),
        plans=plans,
    )


def _timelines(tx: Tx, incident_ids: Sequence[str]) -> dict[str, list[TimelineEvent]]:
    found: dict[str, list[TimelineEvent]] = {i: [] for i in incident_ids}
    for start in range(0, len(incident_ids), 500):
        chunk = incident_ids[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        for incident_id, at, kind, message, author, tags, data in tx.rows(
            "SELECT incident_id, at, kind, message, author, tags, data FROM incident_events "
            f"WHERE incident_id IN ({marks}) ORDER BY incident_id, seq",
            chunk,
        ):
            kind_: EventKind = kind
            found[incident_id].append(
                TimelineEvent(
                    float(at), kind_, message, author, tuple(json.loads(tags)), json.loads(data)
                )
            )
    return found


def _load(tx: Tx, incident_id: str, *, lock: bool = False) -> Incident | None:
    if lock:
        # A no-op update takes the row lock on PostgreSQL (SQLite's BEGIN IMMEDIATE already
        # serialises writers), so a concurrent change waits and then sees this one.
        tx.run("UPDATE incidents SET status = status WHERE id = ?", (incident_id,))
    rows = tx.rows(f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE id = ?", (incident_id,))
    if not rows:
        return None
    return _incident(rows[0], _timelines(tx, [incident_id])[incident_id])


def _append_events(tx: Tx, incident_id: str, events: Sequence[TimelineEvent]) -> int:
    """Append after the last stored event; the caller holds the incident's row lock."""
    rows = tx.rows(
        "SELECT COALESCE(MAX(seq), 0) FROM incident_events WHERE incident_id = ?", (incident_id,)
    )
    seq = int(rows[0][0])
    for event in events:
        seq += 1
        tx.run(_INSERT_EVENT, _event_params(incident_id, seq, event))
    return seq
