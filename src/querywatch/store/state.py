"""Agent state: small named text values (the poller's last snapshot, the responder's rollbacks,
plans kept before a deploy) that let a restarted agent resume where it stopped."""

from __future__ import annotations

from collections.abc import Callable

from querywatch.store.base import Tx

_UPSERT_STATE = (
    "INSERT INTO state (key, value) VALUES (?, ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)


def get_state(tx: Tx, key: str) -> str | None:
    rows = tx.rows("SELECT value FROM state WHERE key = ?", (key,))
    return str(rows[0][0]) if rows else None


def set_state(tx: Tx, key: str, value: str) -> None:
    tx.run(_UPSERT_STATE, (key, value))


def update_state(tx: Tx, key: str, change: Callable[[str | None], str]) -> str:
    """Read, change and write one value; the caller holds the key's lock (see ``SqlStore``)."""
    value = change(get_state(tx, key))
    set_state(tx, key, value)
    return value


LOGGED_PLAN_PREFIX = "plans:logged:"
"""State key prefix of the plan a log showed for a fingerprint: `digest --store` writes each
top fingerprint's slowest auto_explain plan under ``plans:logged:<fingerprint>`` (JSON: the plan
text, its ``format`` "json" or "text", ``at``, ``duration_ms``, ``file``, ``line``); incidents
read it as plan evidence (:mod:`querywatch.incidents.evidence_gather`)."""


def logged_plan_key(fingerprint: str) -> str:
    """State key of the slowest plan the log showed for ``fingerprint``."""
    return LOGGED_PLAN_PREFIX + fingerprint


GATE_REPORT_KEY = "gate:latest"
"""State key of the latest CI gate report: `querywatch check --store` writes it (JSON, see
:mod:`querywatch.gate.record`) and the dashboard's /checks page shows it."""
