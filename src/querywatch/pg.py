"""Safe access to a monitored PostgreSQL: the only way querywatch opens a connection to one.

The monitored database is someone's production: every session we open is read-only by default,
autocommit (we never hold a transaction open), and carries a short ``statement_timeout`` and
``lock_timeout`` so a query of ours can never pile up behind a lock or run away. Every statement we
send starts with :data:`TAG` so pg_stat_statements (which keeps the comment of the first text it
saw) lets us recognise, and drop, our own queries. Errors become one redacted line.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow

from querywatch.config import DEFAULT_STATEMENT_TIMEOUT_MS
from querywatch.dsn import redact, secret_spans
from querywatch.errors import DatabaseUnavailable

TAG = "/* querywatch */"
"""Leading comment on every statement querywatch sends, so its own queries can be excluded."""

Connection = psycopg.Connection[TupleRow]


def tagged(sql: str) -> str:
    """``sql`` with querywatch's tag in front (idempotent)."""
    return sql if sql.startswith(TAG) else f"{TAG} {sql}"


def connect(
    dsn: str,
    *,
    application_name: str = "querywatch",
    statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS,
    lock_timeout_ms: int = 1000,
    connect_timeout_s: int = 5,
    read_only: bool = True,
) -> Connection:
    """Open an autocommit session with short timeouts, read-only unless asked otherwise.

    Raises :class:`DatabaseUnavailable` with one line naming the (redacted) DSN and the reason.
    The session settings are applied with one tagged ``set_config`` query rather than the
    ``options`` startup parameter, because connection poolers such as PgBouncer reject that.
    """
    try:
        conn = psycopg.connect(
            dsn,
            autocommit=True,
            connect_timeout=connect_timeout_s,
            application_name=application_name,
        )
    except psycopg.Error as exc:
        message = f"cannot connect to {display_dsn(dsn)}: {reason(exc, dsn)}"
        raise DatabaseUnavailable(message) from exc
    settings: list[tuple[str, str]] = [
        ("statement_timeout", str(int(statement_timeout_ms))),
        ("lock_timeout", str(int(lock_timeout_ms))),
        ("idle_in_transaction_session_timeout", str(max(int(statement_timeout_ms) * 2, 10000))),
    ]
    if read_only:
        settings.append(("default_transaction_read_only", "on"))
    calls = ", ".join("set_config(%s, %s, false)" for _ in settings)
    params: list[Any] = [v for pair in settings for v in pair]
    try:
        conn.execute(tagged(f"SELECT {calls}"), params)
    except psycopg.Error as exc:
        conn.close()
        raise DatabaseUnavailable(
            f"cannot configure session on {display_dsn(dsn)}: {reason(exc, dsn)}"
        ) from exc
    return conn


def display_dsn(dsn: str) -> str:
    """The DSN as it may be shown to a user: password replaced, or withheld if unparseable."""
    try:
        conninfo_to_dict(dsn)
    except psycopg.Error:
        return "the given DSN (malformed, not shown)"
    return _scrub(redact(dsn), dsn)


def reason(exc: BaseException, dsn: str | None = None) -> str:
    """The meaningful line of a (multi-line) psycopg error, lower-cased and redacted.

    libpq's messages read ``connection failed: connection to server at "h", port p failed:
    FATAL:  <reason>`` followed by hint lines; only ``<reason>`` (plus the "is the server
    running" hint) tells the user anything.
    """
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    text = primary or str(exc)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    first = lines[0]
    first = re.sub(r"^connection (?:failed|is bad):\s*", "", first)
    first = re.sub(r"^connection to server (?:at|on) .*? failed:\s*", "", first)
    first = re.sub(r"^(?:FATAL|ERROR|PANIC):\s+", "", first)
    if first[:1].isupper() and not first[1:2].isupper():
        first = first[0].lower() + first[1:]
    hint = next((ln for ln in lines[1:] if ln.lower().startswith("is the server running")), None)
    if hint:
        first += f" ({hint[0].lower()}{hint[1:].replace('TCP/IP', 'TCP')})"
    if dsn:
        first = first.replace(dsn, "<dsn>")
        first = _scrub(first, dsn)
    return redact(first)


def _scrub(text: str, dsn: str) -> str:
    """Mask the DSN's passwords wherever they appear in ``text`` (e.g. echoed by libpq).

    A DSN libpq cannot parse has no parsed password, yet libpq quotes the offending part back
    (``unexpected spaces found in "my secret"``, ``missing "=" after "'s'"`` for
    ``password='it''s'``): a quoted fragment that lies inside a password is masked too.
    """
    secrets = secret_spans(dsn)
    try:
        parsed = conninfo_to_dict(dsn)
    except psycopg.Error:
        text = re.sub(r'"([^"]*)"', lambda m: _mask_quoted(m, secrets), text)
        parsed = {}
    secrets += [v for k, v in parsed.items() if k in _SECRET_KEYS and isinstance(v, str)]
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= 3:
            text = text.replace(secret, "***")
    return text


_SECRET_KEYS = ("password", "sslpassword")


def _mask_quoted(match: re.Match[str], secrets: list[str]) -> str:
    fragment = match.group(1).strip("'")
    if fragment and any(fragment in secret for secret in secrets):
        return '"***"'
    return match.group(0)
