"""The slowest auto_explain plan per fingerprint, kept in the store by `digest --store`.

A log's plan is the plan the server really ran at the time, with its real times: evidence an
incident can use when the database cannot be EXPLAINed now, or next to the plan EXPLAIN gives now.
Only the top :data:`TOP_LOGGED_PLANS` fingerprints by total time are kept (one state value each,
``plans:logged:<fingerprint>``, see :func:`querywatch.store.state.logged_plan_key`).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from querywatch.logs.digest import OTHER
from querywatch.store.state import logged_plan_key

if TYPE_CHECKING:
    from querywatch.logs.digest import Digest
    from querywatch.store.base import Store

TOP_LOGGED_PLANS = 50
"""Fingerprints whose slowest logged plan `digest --store` keeps: the top ones by total time."""


def store_logged_plans(store: Store, digest: Digest, *, top: int = TOP_LOGGED_PLANS) -> int:
    """Write the slowest logged plan of each of the ``top`` costliest fingerprints that have one
    into store state (replacing what an earlier digest kept for them); returns how many."""
    kept = 0
    stored_at = time.time()
    for st in digest.all_rows("total"):
        if kept >= top:
            break
        plan = st.slowest_plan
        if plan is None or plan.plan is None or st.fingerprint == OTHER:
            continue
        value = {
            "fingerprint": st.fingerprint,
            "normalized": st.normalized,
            "dialect": digest.dialect,
            "format": "json" if plan.plan.lstrip().startswith(("{", "[")) else "text",
            "plan": plan.plan,
            "at": plan.at or None,
            "duration_ms": round(plan.duration_ms, 3),
            "file": plan.file,
            "line": plan.line,
            "stored_at": stored_at,
        }
        store.set_state(logged_plan_key(st.fingerprint), json.dumps(value, sort_keys=True))
        kept += 1
    return kept
