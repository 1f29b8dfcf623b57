"""DSN handling: secrets never reach a terminal, a log or an error message."""

from __future__ import annotations

import re

_URL_PASSWORD = re.compile(
    r"(?P<head>\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)(?P<secret>[^\s/]*)(?=@)", re.I
)
_KV_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<secret>'(?:[^'\\]|\\.)*'|\S+)", re.I)
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&]password=)(?P<secret>[^&\s]*)", re.I)


def redact(text: str) -> str:
    """Replace every password in ``text`` (URL, key=value or ?password= form) with ``***``."""
    for pattern in (_URL_PASSWORD, _KV_PASSWORD, _QUERY_PASSWORD):
        text = pattern.sub(lambda m: m.group("head") + "***", text)
    return text


def is_postgres_url(location: str) -> bool:
    return (
        bool(re.match(r"postgres(?:ql)?://", location))
        or "host=" in location
        or "dbname=" in location
    )
