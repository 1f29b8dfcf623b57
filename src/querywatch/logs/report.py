"""A digest as plain data: the ``--json`` document and what the terminal and HTML reports show.

Literal values stay out unless asked for (``show_values``): a sample statement is shown as its
normalized text, its bind parameters as ``$1 = ?``, and an auto_explain plan (whose conditions
hold values) is kept only when values may be shown.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from querywatch.logs.digest import Digest, FingerprintStats, Sample, redact_params
from querywatch.logs.scan import FileReport


def ms_text(value: float | None) -> str:
    """Milliseconds as the reports print them: ``1,234.5``, ``0.42``, ``–`` for none."""
    if value is None:
        return "–"
    return f"{value:,.1f}" if value >= 10 else f"{value:.2f}"


def utc_text(ts: float | None, zone: str = " UTC") -> str:
    """A log time in UTC (``–`` when the log had none)."""
    return "–" if not ts else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) + zone


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def sample_json(sample: Sample | None, normalized: str, show_values: bool) -> dict[str, Any] | None:
    if sample is None:
        return None
    params = sample.params
    return {
        "text": sample.text if show_values else normalized,
        "parameters": params if show_values or params is None else redact_params(params),
        "duration_ms": _r(sample.duration_ms),
        "at": sample.at or None,
        "file": sample.file,
        "line": sample.line,
        "redacted": not show_values,
    }


def row_json(st: FingerprintStats, dialect: str, show_values: bool) -> dict[str, Any]:
    """One fingerprint: the row of ``digest --json``."""
    plan = st.slowest_plan
    return {
        "fingerprint": st.fingerprint,
        "normalized": st.normalized,
        "dialect": dialect,
        "calls": st.calls,
        "timed_calls": st.timed,
        "total_ms": round(st.total_ms, 3),
        "mean_ms": _r(st.mean_ms),
        "min_ms": _r(st.min_ms),
        "max_ms": round(st.max_ms, 3),
        "p50_ms": _r(st.quantile(0.5)),
        "p95_ms": _r(st.quantile(0.95)),
        "p99_ms": _r(st.quantile(0.99)),
        "rows": st.rows,
        "rows_examined": st.rows_examined,
        "lock_ms": round(st.lock_ms, 3),
        "errors": st.errors,
        "error_example": st.error_example if show_values else _first_words(st.error_example),
        "lock_waits": st.lock_waits,
        "lock_wait_ms": round(st.lock_wait_ms, 3),
        "temp_files": st.temp_files,
        "temp_bytes": st.temp_bytes,
        "plans": st.plans,
        "first_seen": st.first_seen or None,
        "last_seen": st.last_seen or None,
        "sample": sample_json(st.slowest, st.normalized, show_values),
        "plan": None
        if plan is None
        else {
            "duration_ms": _r(plan.duration_ms),
            "at": plan.at or None,
            "file": plan.file,
            "line": plan.line,
            "text": plan.plan if show_values else None,
            "redacted": not show_values,
        },
    }


def _first_words(message: str) -> str:
    """An error message without what it quotes (``relation "x" does not exist`` keeps names,
    but ``invalid input syntax for type integer: "abc"`` would show a value)."""
    cut = message.find(": ", message.find(":  ") + 3)
    return message if cut < 0 else message[:cut]


def files_json(reports: Sequence[FileReport]) -> list[dict[str, Any]]:
    return [
        {
            "path": r.path,
            "format": r.format,
            "prefix": r.prefix,
            "bytes": r.size,
            "lines": r.lines,
            "records": r.records,
            "skipped": r.skipped.count,
            "skipped_examples": [
                {"line": n, "reason": why, "text": text} for n, why, text in r.skipped.examples
            ],
            "extended_protocol_steps": r.step_durations,
            "unknown_time_zones": sorted(r.unknown_zones),
        }
        for r in reports
    ]


def digest_json(
    digest: Digest,
    reports: Sequence[FileReport],
    *,
    limit: int | None = None,
    sort: str = "total",
    show_values: bool = False,
) -> dict[str, Any]:
    """The ``digest --json`` document (inside the envelope's ``data``)."""
    first, last = digest.span
    rows = digest.all_rows(sort)
    data: dict[str, Any] = {
        "dialect": digest.dialect,
        "files": files_json(reports),
        "first_seen": first or None,
        "last_seen": last or None,
        "records": digest.records,
        "statements": digest.statements,
        "fingerprint_count": len(rows),
        "skipped_lines": sum(r.skipped.count for r in reports),
        "without_statement": dict(digest.unattributed),
        "errors_without_statement": [
            {"message": m if show_values else _first_words(m), "count": n}
            for m, n in sorted(digest.orphan_errors.items(), key=lambda kv: -kv[1])[:20]
        ],
        "fingerprints": [row_json(st, digest.dialect, show_values) for st in rows[:limit]],
        "per_minute": per_minute_json(digest),
    }
    if len(digest.phases) > 1:
        data["phases"] = [
            {
                "label": phase.label,
                "start": phase.start,
                "end": phase.end,
                "fingerprints": [
                    row_json(st, digest.dialect, show_values) for st in digest.rows(i, sort)[:limit]
                ],
            }
            for i, phase in enumerate(digest.phases)
        ]
    return data


def per_minute_json(digest: Digest) -> dict[str, Any]:
    width = digest.minute_width
    return {
        "bucket_seconds": width,
        "points": [
            {"start": m * width, "calls": int(calls), "total_ms": round(ms, 3)}
            for m, (calls, ms) in sorted(digest.per_minute.items())
        ],
    }
