"""The slowest auto_explain plan per fingerprint, kept in the store by `digest --store`.

A log's plan is the plan the server really ran at the time, with its real times: evidence an
incident can use when the database cannot be EXPLAINed now, or next to the plan EXPLAIN gives now.
Only the top :data:`TOP_LOGGED_PLANS` fingerprints by total time are kept (one state value each,
``plans:logged:<fingerprint>``, see :func:`querywatch.store.state.logged_plan_key`).

The store keeps no literal values (customer ids, emails in a filter): a logged plan's conditions
are kept with their constants as ``?`` (:func:`redact_plan`), as its statement is kept normalized.
"""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING, Any

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
            "plan": redact_plan(plan.plan),
            "at": plan.at or None,
            "duration_ms": round(plan.duration_ms, 3),
            "file": plan.file,
            "line": plan.line,
            "stored_at": stored_at,
        }
        store.set_state(logged_plan_key(st.fingerprint), json.dumps(value, sort_keys=True))
        kept += 1
    return kept


# A quoted constant ('...' with '' inside, E'...' too) or a number that is no part of a name or
# a parameter ($1).
_STRING = re.compile(r"[EeBbXxNn]?'(?:[^']|'')*'")
_NUMBER = re.compile(r"(?<![\w.$])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.])")
_EXPRESSION_KEYS = ("Cond", "Filter", "Output", "Key", "Query Text")
_EXPRESSION_LABEL = re.compile("|".join(_EXPRESSION_KEYS))


def redact_plan(plan: str) -> str:
    """``plan`` (auto_explain's text or JSON) with the constants of its conditions as ``?``."""
    if plan.lstrip().startswith(("{", "[")):
        try:
            data = json.loads(plan)
        except ValueError:
            return _redact_text(plan)
        return json.dumps(_redact_json(data))
    return _redact_text(plan)


def _redact_expression(text: str) -> str:
    return _NUMBER.sub("?", _STRING.sub("?", text))


def _redact_text(plan: str) -> str:
    """Text plans: the lines of conditions, keys and outputs (``Filter: (id = 42)``) have their
    constants redacted; node lines and counters (``Rows Removed by Filter: 990``) stay."""
    out = []
    for line in plan.splitlines(keepends=True):
        label, colon, rest = line.partition(":")
        if colon and _EXPRESSION_LABEL.search(label) and "Removed" not in label:
            line = label + colon + _redact_expression(rest)
        out.append(line)
    return "".join(out)


def _redact_json(node: Any, key: str = "") -> Any:
    if isinstance(node, dict):
        return {k: _redact_json(v, k) for k, v in node.items()}
    if isinstance(node, list):
        return [_redact_json(v, key) for v in node]
    if isinstance(node, str) and any(part in key for part in _EXPRESSION_KEYS):
        return _redact_expression(node)
    return node
