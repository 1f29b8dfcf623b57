"""The commit that last changed each call site's line, for the fingerprint page.

``git blame`` in the checkout the server runs in (as ``querywatch watch`` does for culprits),
one line at a time, remembered until the next deploy (a cache older than a deploy would name
stale commits) and bounded in time per page: lines not looked up within the budget say so, and
the next view of the page looks them up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from querywatch.gitblame import GitBlame
from querywatch.records import CallSite

BUDGET_S = 0.1
MAX_CACHED = 4096


@dataclass(frozen=True, slots=True)
class SiteCommit:
    site: CallSite
    commit: str | None  # "abc123def0 author: summary", or None when git cannot say
    looked_up: bool = True  # False: not looked up within this page's budget


class _Cache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.generation: object = None
        self.blame: GitBlame | None = None
        self.found: dict[tuple[str, int], str | None] = {}


_CACHE = _Cache()


def site_commits(
    sites: Sequence[CallSite],
    *,
    generation: object,
    known: dict[tuple[str, int], str] | None = None,
    root: Path | None = None,
    budget_s: float = BUDGET_S,
) -> list[SiteCommit]:
    """Each site with its commit: ``known`` ones (an incident's culprit blamed them when it was
    opened) first, then git blame until the budget runs out. ``generation`` (the latest deploy)
    changing empties the cache."""
    known = known or {}
    deadline = time.monotonic() + budget_s
    out = []
    with _CACHE.lock:
        if _CACHE.generation != generation or _CACHE.blame is None:
            _CACHE.generation = generation
            _CACHE.blame = GitBlame(root if root is not None else Path.cwd())
            _CACHE.found = {}
        blame, found = _CACHE.blame, _CACHE.found
    for site in sites:
        key = (site.path, site.line)
        if key in known:
            out.append(SiteCommit(site, known[key]))
            continue
        if key not in found:
            if time.monotonic() > deadline:
                out.append(SiteCommit(site, None, looked_up=False))
                continue
            got = blame.line(site.path, site.line)
            with _CACHE.lock:
                if len(found) >= MAX_CACHED:
                    found.clear()
                found[key] = None if got is None else str(got)
        out.append(SiteCommit(site, found.get(key)))
    return out
