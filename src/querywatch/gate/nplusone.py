"""N+1: repeated reads issued by the application within one call of a test.

The run counts, per test and fingerprint, the most times one call of the test body into the
application issued a statement (``Usage.max_per_call``, see :mod:`querywatch.gate.collect`):
test loops, Hypothesis examples and statements the test code issues itself are not in it. Only
reads count; a write repeated per row is a batching matter, not N+1 read advice.
"""

from __future__ import annotations

import re

from querywatch.findings import Finding, Location
from querywatch.gate.collect import SESSION, GateRun, RunStatement

N_PLUS_ONE = "n-plus-one"

_WRITE = re.compile(r"\b(?:insert into|delete from|merge into|update \S+ set)\b")


def is_read(normalized: str) -> bool:
    """Statements that only read (a SELECT, VALUES, or a WITH whose statements write nothing):
    N+1 is repeated reads; a write repeated per row is a batching matter, not N+1."""
    text = normalized.lstrip().lower()
    if text.startswith("with"):
        return _WRITE.search(text) is None
    return text.startswith(("select", "(", "values", "table "))


_BATCH_READS = {
    "postgres": "WHERE id = ANY(%s) with the list of ids",
    "sqlite": "WHERE id IN (?, ?, …) with the list of ids (IN (SELECT value FROM json_each(?))"
    " for a long one)",
    "mysql": "WHERE id IN (%s, %s, …) with the list of ids",
}


def n_plus_one(run: GateRun, stmt: RunStatement, max_repeats: int) -> Finding | None:
    """One finding per fingerprint that only reads: the test whose single call into the
    application repeats it most, at its busiest call site."""
    if not is_read(stmt.normalized):
        return None
    fp = stmt.fingerprint
    over = [
        (usage.max_per_call, test_id, usage)
        for test_id, usages in run.tests.items()
        if test_id != SESSION
        and (usage := usages.get(fp)) is not None
        and usage.max_per_call > max_repeats
    ]
    if not over:
        return None
    calls, test_id, usage = min(over, key=lambda x: (-x[0], x[1]))  # most calls, then by id
    others = len(over) - 1
    also = f" (and {others} other test{'s' if others > 1 else ''})" if others else ""
    site = max(usage.sites.items(), key=lambda kv: kv[1])[0] if usage.sites else None
    call = f" in one call of {usage.call}" if usage.call else ""
    batch = _BATCH_READS.get(stmt.dialect, _BATCH_READS["sqlite"])
    return Finding(
        N_PLUS_ONE,
        "warning",
        f"{test_id} runs this statement {calls} times (more than {max_repeats}){call}: one query"
        f" per row{also}",
        f"load the rows in one query (a JOIN, or {batch}) or prefetch them instead of querying"
        " inside a loop",
        {"test": test_id, "calls": calls, "max_repeats": max_repeats, "tests": len(over)},
        location=None if site is None else Location(site.path, site.line, 1, site.function),
    )
