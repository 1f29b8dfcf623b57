"""Which query, which deploy, which code: the culprits behind a set of detections.

The report's monitor saw "a spike in database query response times" and nothing more; attribution
turns detections into a ranked list a developer can act on: the fingerprint that added the most
database time first, with its normalized text, the deploy it first appeared under, its call sites
and (from ``git blame``) the commit that last changed each call site's line.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from pathlib import Path

from querywatch.detect.model import Culprit, Detection
from querywatch.gitblame import GitBlame
from querywatch.records import WINDOW_SECONDS, DeployMarker, FingerprintSummary
from querywatch.store.base import Store

ALL_FINGERPRINTS = 1_000_000_000
"""``Store.top`` has no per-fingerprint filter: this limit reads every fingerprint once."""


def attribute(
    store: Store,
    detections: list[Detection],
    *,
    repo_root: Path | None = None,
    environment: str | None = None,
) -> list[Culprit]:
    """Culprit fingerprints from ``detections``, most added database time per second first.

    Detections without a fingerprint (e.g. ``load``) name no query and are skipped, and so are
    victims (:mod:`querywatch.detect.victims`): slowed by the load, not causes. A fingerprint's
    added time is the sum over all its detections, N+1 findings included. ``environment`` limits
    the deploys considered for "first seen under". Call sites are blamed in the git checkout that
    holds ``repo_root`` (default: the current directory); outside one, ``commits`` stays empty.
    """
    added: dict[str, float] = {}
    kinds: dict[str, list[str]] = {}
    normalized: dict[str, str] = {}
    for d in detections:
        if d.fingerprint is None or d.kind == "victim":
            continue  # names no query, or only slowed by the load: never a cause
        added[d.fingerprint] = added.get(d.fingerprint, 0.0) + d.added_db_ms_per_s
        seen = kinds.setdefault(d.fingerprint, [])
        if d.kind not in seen:
            seen.append(d.kind)
        if d.normalized and d.fingerprint not in normalized:
            normalized[d.fingerprint] = d.normalized
    if not added:
        return []

    summaries = {s.fingerprint: s for s in store.top(limit=ALL_FINGERPRINTS)}
    deploys = store.deploys(environment=environment)
    blame = GitBlame(repo_root)
    culprits = []
    for fp in sorted(added, key=lambda f: (-added[f], f)):
        summary = summaries.get(fp)
        sites = summary.call_sites if summary is not None else ()
        commits: list[str] = []
        for site in sites:
            found = blame.line(site.path, site.line)
            if found is not None and str(found) not in commits:
                commits.append(str(found))
        culprits.append(
            Culprit(
                fingerprint=fp,
                normalized=normalized.get(fp) or (summary.normalized if summary else ""),
                added_db_ms_per_s=added[fp],
                first_seen_deploy=_first_seen_deploy(summary, deploys),
                call_sites=sites,
                commits=tuple(commits),
                detection_kinds=tuple(kinds[fp]),
            )
        )
    return culprits


def first_seen_deploy(first_seen: float, deploys: Sequence[DeployMarker]) -> DeployMarker | None:
    """The deploy a fingerprint first appeared under: the latest one started by then.

    ``first_seen`` is the start of the 10 s window the fingerprint first appeared in, so a deploy
    that started inside that window counts as started by then: a new query appearing seconds after
    a deploy belongs to it, not to the deploy before. ``None`` when it predates every deploy.
    """
    ordered = sorted(deploys, key=lambda d: (d.started_at, d.id))
    starts = [d.started_at for d in ordered]
    at = bisect.bisect_left(starts, first_seen + WINDOW_SECONDS)
    return ordered[at - 1] if at else None


def _first_seen_deploy(
    summary: FingerprintSummary | None, deploys: Sequence[DeployMarker]
) -> str | None:
    if summary is None:
        return None
    found = first_seen_deploy(summary.first_seen, deploys)
    return found.id if found is not None else None
