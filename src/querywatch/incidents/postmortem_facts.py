"""The facts a postmortem is written from, read from the store, and the timeline's sanity check.

Nothing here is estimated or remembered: each figure is a stored field (of the incident, one of its
timeline events or its deploy marker) or a sum over stored statement windows, and each carries the
range or the event it came from so the document can say so. Timeline events are numbered like the
store numbers them (``seq``: the i-th event is #i, from 1).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from querywatch.deploys import find_deploy
from querywatch.detect.model import Culprit
from querywatch.detect.policy import Policy
from querywatch.incidents.model import MISLEADING, Incident, TimelineEvent
from querywatch.records import WINDOW_SECONDS, DeployMarker
from querywatch.store.base import Store
from querywatch.timefmt import utc_stamp

W = WINDOW_SECONDS
FUTURE_SKEW_S = 60.0  # clocks disagree a little; an event this far ahead of now is wrong
MITIGATING_OUTCOMES = ("ok",)  # a rollback that did this mitigated (a dry run did not)


@dataclass(frozen=True, slots=True)
class Event:
    """A timeline event with its number on the timeline (``#seq``), as the store numbers it."""

    seq: int
    event: TimelineEvent

    @property
    def at(self) -> float:
        return self.event.at

    @property
    def data(self) -> dict[str, object]:
        return self.event.data

    @property
    def action(self) -> str:
        return str(self.event.data.get("action") or "")

    @property
    def outcome(self) -> str:
        return str(self.event.data.get("outcome") or "")


@dataclass(frozen=True, slots=True)
class Latency:
    """Mean latency per call of one fingerprint over stored statement windows in [since, until)."""

    since: float  # the range asked for (window starts)
    until: float
    windows: int
    calls: int
    total_ms: float
    first_start: int | None  # the first and last window start actually found
    last_start: int | None

    @property
    def mean_ms(self) -> float | None:
        return self.total_ms / self.calls if self.calls else None


@dataclass(frozen=True, slots=True)
class SlowWindow:
    """The first window during the incident in which a query was already slow (or, new, ran)."""

    start: int
    calls: int
    mean_ms: float


@dataclass(frozen=True, slots=True)
class Suspect:
    """A culprit with its latency before the deploy, during the incident and after mitigation."""

    culprit: Culprit
    before: Latency | None  # None when no deploy is known (nothing to compare against)
    during: Latency
    after: Latency | None  # after mitigation, until resolution or now
    new_in_deploy: bool
    first_slow: SlowWindow | None
    replaced: tuple[str, Latency] | None = None  # the query a new one replaced, and its figures

    @property
    def ratio(self) -> float | None:
        b = self.before.mean_ms if self.before is not None else None
        d = self.during.mean_ms
        return d / b if b and d is not None else None


@dataclass(slots=True)
class Facts:
    """Everything the postmortem says, gathered once."""

    incident: Incident
    deploy: DeployMarker | None
    now: float
    policy: Policy
    harm_start: float
    harm_source: str  # where harm_start comes from, for the reader
    events: list[Event]  # in time order
    mitigated: Event | None  # the first mitigated event or successful rollback
    suspects: list[Suspect] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.event.kind == kind]

    @property
    def detected(self) -> Event | None:
        found = self.of_kind("detected")
        return found[0] if found else None

    @property
    def resolved(self) -> Event | None:
        found = self.of_kind("resolved")
        return found[-1] if found else None

    @property
    def misleading(self) -> list[Event]:
        return [e for e in self.of_kind("note") if MISLEADING in e.event.tags]

    @property
    def end(self) -> float:
        """Where the incident ends for the figures: its resolution, or now while it is open."""
        return self.incident.resolved_at if self.incident.resolved_at is not None else self.now

    @property
    def traffic_start(self) -> float:
        """When the release had all the traffic (its finish, else its start), else harm start."""
        if self.deploy is None:
            return self.harm_start
        d = self.deploy
        return d.finished_at if d.finished_at is not None else d.started_at


def gather(
    store: Store, incident: Incident, *, now: float | None = None, policy: Policy | None = None
) -> Facts:
    """Read what the postmortem needs: the deploy marker and the culprits' statement windows."""
    when = time.time() if now is None else now
    deploy = find_deploy(store, incident.deploy_id) if incident.deploy_id else None
    if deploy is not None:
        harm_start, harm_source = deploy.started_at, f"deploy {deploy.id} started_at"
    else:
        harm_start, harm_source = incident.detected_at, "incident detected_at"
    # In time order (a note may be written after the fact with an earlier time), numbered as
    # stored.
    numbered = [Event(n, e) for n, e in enumerate(incident.timeline, start=1)]
    events = sorted(numbered, key=lambda e: (e.at, e.seq))
    facts = Facts(
        incident=incident,
        deploy=deploy,
        now=when,
        policy=policy or Policy(),
        harm_start=harm_start,
        harm_source=harm_source,
        events=events,
        mitigated=first_mitigation(events),
    )
    facts.suspects = [_suspect(store, facts, c) for c in suspects_of(incident)]
    return facts


def first_mitigation(events: Sequence[Event]) -> Event | None:
    """The first ``mitigated`` event or rollback that went through, whichever came first."""
    found = [
        e
        for e in events
        if e.event.kind == "mitigated"
        or (e.event.kind == "action" and e.action == "rollback" and e.outcome == "ok")
    ]
    return min(found, key=lambda e: (e.at, e.seq), default=None)


def suspects_of(incident: Incident) -> list[Culprit]:
    """The culprits; with none, the detections that name a query stand in (without call sites),
    victims aside: a query only slowed by the load is never a suspect."""
    if incident.culprits:
        return list(incident.culprits)
    seen: dict[str, Culprit] = {}
    for d in incident.detections:
        if d.fingerprint and d.fingerprint not in seen and d.kind != "victim":
            seen[d.fingerprint] = Culprit(
                d.fingerprint,
                d.normalized or "",
                d.added_db_ms_per_s,
                d.deploy_id,
                detection_kinds=(d.kind,),
            )
    return list(seen.values())


def latency(store: Store, fingerprint: str, since: float, until: float) -> Latency:
    """Sum the fingerprint's windows starting in [since, until): calls, time, the range found."""
    windows = [
        w
        for w in store.statement_windows(fingerprint, since, until)
        if w.fingerprint == fingerprint
    ]
    return Latency(
        since=since,
        until=until,
        windows=len(windows),
        calls=sum(w.calls for w in windows),
        total_ms=sum(w.total_ms for w in windows),
        first_start=windows[0].window_start if windows else None,
        last_start=windows[-1].window_start if windows else None,
    )


def _floor(t: float) -> int:
    return math.floor(t / W) * W


def _ceil(t: float) -> int:
    return math.ceil(t / W) * W


def _suspect(store: Store, facts: Facts, culprit: Culprit) -> Suspect:
    """Before: whole windows in the baseline before the deploy started (as the detector reads it).
    During: whole windows from when the release had the traffic until mitigation (else the end).
    After: whole windows from mitigation until the end. Straddling windows belong to neither."""
    fp = culprit.fingerprint
    before: Latency | None = None
    if facts.deploy is not None:
        end = _floor(facts.deploy.started_at)
        before = latency(store, fp, end - facts.policy.baseline_seconds, end)
    stop = facts.mitigated.at if facts.mitigated is not None else facts.end
    during_start = _ceil(facts.traffic_start)
    during = latency(store, fp, during_start, _floor(stop) if stop > during_start else during_start)
    after: Latency | None = None
    if facts.mitigated is not None:
        after = latency(store, fp, _ceil(facts.mitigated.at), facts.end)
    # New: so detected, or no call in the baseline before the deploy (the windows decide, not
    # the culprit's first-seen deploy, which only says which deploy preceded its first sighting).
    new = "new_fingerprint" in culprit.detection_kinds or (before is not None and before.calls == 0)
    replaced: tuple[str, Latency] | None = None
    for d in facts.incident.detections:
        other = d.evidence.get("replaced_fingerprint")
        if d.fingerprint == fp and isinstance(other, str) and before is not None:
            label = str(d.evidence.get("replaced_normalized") or other)
            replaced = (label, latency(store, other, before.since, before.until))
            break
    first_slow = _first_slow(store, facts, fp, before, during)
    return Suspect(culprit, before, during, after, new, first_slow, replaced)


def _first_slow(
    store: Store, facts: Facts, fp: str, before: Latency | None, during: Latency
) -> SlowWindow | None:
    """The first window of the incident at ``min_latency_ratio`` × the mean before (a new query:
    its first window with calls)."""
    base = before.mean_ms if before is not None else None
    limit = base * facts.policy.min_latency_ratio if base is not None else None
    for w in store.statement_windows(fp, during.since, during.until):
        if w.fingerprint != fp or not w.calls:
            continue
        if limit is None or w.mean_ms >= limit:
            return SlowWindow(w.window_start, w.calls, w.mean_ms)
    return None


# -- consistency ----------------------------------------------------------------------------------


def check_consistency(facts: Facts) -> list[str]:
    """Everything in the stored timeline that cannot have happened as recorded, one line each.

    The report this project started from says the outage began at 12:00 PM and was detected at
    11:45 PM; a postmortem should point out such a contradiction instead of repeating it.
    """
    i, deploy = facts.incident, facts.deploy
    found: list[str] = []
    if deploy is not None and i.detected_at < deploy.started_at:
        found.append(
            f"detection ({utc_stamp(i.detected_at)}) is before the harm began: deploy {deploy.id} "
            f"started at {utc_stamp(deploy.started_at)}"
        )
    if (
        deploy is not None
        and deploy.finished_at is not None
        and deploy.finished_at < deploy.started_at
    ):
        found.append(
            f"deploy {deploy.id} finished ({utc_stamp(deploy.finished_at)}) before it started "
            f"({utc_stamp(deploy.started_at)})"
        )
    if i.resolved_at is not None and i.resolved_at < i.detected_at:
        found.append(
            f"resolution ({utc_stamp(i.resolved_at)}) is before detection "
            f"({utc_stamp(i.detected_at)})"
        )
    if i.status == "resolved" and i.resolved_at is None:
        found.append("the incident is resolved but has no resolution time")
    if i.status != "resolved" and i.resolved_at is not None:
        found.append(f"the incident is {i.status} but has a resolution time")
    found += _event_warnings(facts)
    found += _impact_warnings(facts)
    return list(dict.fromkeys(found))


def _event_warnings(facts: Facts) -> list[str]:
    i = facts.incident
    found: list[str] = []
    detected = facts.detected
    first_detection = detected.at if detected is not None else i.detected_at
    began = (
        f"deploy {facts.deploy.id} started at {utc_stamp(facts.deploy.started_at)}"
        if facts.deploy is not None
        else f"it was detected at {utc_stamp(i.detected_at)}"
    )
    for e in facts.events:
        what = f"timeline #{e.seq} ({e.event.kind}, {utc_stamp(e.at)})"
        if e.at > facts.now + FUTURE_SKEW_S:
            found.append(f"{what} is in the future (now is {utc_stamp(facts.now)})")
        kind = e.event.kind
        if kind == "detected" and e.at == i.detected_at:
            pass  # said above, against the deploy
        elif e.at < facts.harm_start:
            found.append(f"{what} is before the incident began: {began}")
        if kind in ("alerted", "acknowledged", "mitigated", "resolved") and e.at < first_detection:
            found.append(f"{what} is before the detection ({utc_stamp(first_detection)})")
        if kind == "resolved" and e.at < i.opened_at - FUTURE_SKEW_S:
            found.append(f"{what} is before the incident was opened ({utc_stamp(i.opened_at)})")
        if kind == "mitigated" and i.resolved_at is not None and e.at > i.resolved_at:
            found.append(f"{what} is after the resolution ({utc_stamp(i.resolved_at)})")
    return found


def _impact_warnings(facts: Facts) -> list[str]:
    m = facts.incident.impact
    if m is None:
        return []
    found: list[str] = []
    if min(m.users, m.affected_users, m.requests, m.failed_requests) < 0:
        found.append("the impact holds a negative count")
    if m.affected_users > m.users:
        found.append(f"impact: {m.affected_users:,} affected users of only {m.users:,} users")
    if m.failed_requests > m.requests:
        found.append(
            f"impact: {m.failed_requests:,} failed requests of only {m.requests:,} requests"
        )
    if m.since is not None and m.until is not None and m.until < m.since:
        found.append(
            f"impact was measured over a range that ends ({utc_stamp(m.until)}) before it starts "
            f"({utc_stamp(m.since)})"
        )
    return found
