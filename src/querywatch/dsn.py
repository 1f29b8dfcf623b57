"""DSN handling: secrets never reach a terminal, a log or an error message.

:func:`redact` hides passwords in the forms they take in the text we print:

- URL userinfo: ``postgresql://user:secret@host`` — the password may hold unencoded spaces
  (libpq refuses them, but its error message and ours would still show them);
- ``key=value`` where the key ends in ``password``: ``password=…``, ``sslpassword=…``,
  ``PGPASSWORD=…`` (an environment assignment), single-quoted with ``\\'`` or SQL's doubled
  ``''`` inside, or double-quoted;
- URL query parameters: ``?password=…``, ``&sslpassword=…``.

When in doubt it hides more rather than less.
"""

from __future__ import annotations

import re

_URL_PASSWORD = re.compile(
    # userinfo "user:" then everything up to the last "@" before the path: a password typed
    # unencoded may hold spaces or "@"; a "/" or a line break ends the userinfo.
    r"(?P<head>\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)(?P<secret>[^/\r\n]*)(?=@[^\s@/])",
    re.I,
)
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&](?:ssl)?password=)(?P<secret>[^&#\s]*)", re.I)
_KV_PASSWORD = re.compile(
    r"(?P<head>(?<![?&\w])\w*password\s*=\s*)"
    # closed quotes first; an unclosed quote hides the rest of the line
    r"(?P<secret>'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.)*\"|['\"][^\r\n]*|\S+)",
    re.I,
)
_PATTERNS = (_URL_PASSWORD, _QUERY_PASSWORD, _KV_PASSWORD)


def redact(text: str) -> str:
    """Replace every password in ``text`` (URL, key=value or ?password= form) with ``***``."""
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group("head") + "***", text)
    return text


def secret_spans(text: str) -> list[str]:
    """The password values :func:`redact` would hide in ``text``, without their quotes.

    Used to scrub fragments of a malformed DSN that libpq quotes back in its error messages
    (``unexpected spaces found in "my secret"``).
    """
    found: list[str] = []
    for pattern in _PATTERNS:
        for match in pattern.finditer(text):
            secret = match.group("secret")
            if secret[:1] in ("'", '"') and secret[-1:] == secret[:1] and len(secret) >= 2:
                secret = secret[1:-1]
            if secret and secret != "***":
                found.append(secret)
    return found


def is_postgres_url(location: str) -> bool:
    return (
        bool(re.match(r"postgres(?:ql)?://", location))
        or "host=" in location
        or "dbname=" in location
    )
