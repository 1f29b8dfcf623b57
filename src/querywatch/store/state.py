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
