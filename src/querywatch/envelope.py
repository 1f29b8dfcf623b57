"""One JSON shape for every API response and every `--json` output (docs/json.md).

    {"ok": true,  "data": ...}
    {"ok": false, "error": {"code": "not_found", "message": "one line for a human"}}

A CI script checks ``ok`` and reads ``data`` or ``error.message`` the same way everywhere. It sits
low in the layers because the HTTP API and the CLI both speak it; ``tests/test_api.py`` and
``tests/test_json_envelope.py`` check every endpoint and every `--json` command against it.
"""

from __future__ import annotations

import json
from typing import Any

from querywatch.dsn import redact
from querywatch.errors import (
    ConfigError,
    CouldNotCheck,
    DatabaseUnavailable,
    ExtensionMissing,
    InvalidTransition,
    NotFound,
    QuerywatchError,
    SourceError,
    StoreError,
)

Envelope = dict[str, Any]

# Most specific first: the first class an error is an instance of names its code.
_ERROR_CODES: tuple[tuple[type[QuerywatchError], str], ...] = (
    (CouldNotCheck, "could_not_check"),
    (NotFound, "not_found"),
    (InvalidTransition, "conflict"),
    (ConfigError, "config_error"),
    (StoreError, "store_unavailable"),
    (DatabaseUnavailable, "database_unavailable"),
    (ExtensionMissing, "extension_missing"),
    (SourceError, "source_error"),
)


def success(data: Any) -> Envelope:
    return {"ok": True, "data": data}


def failure(code: str, message: str) -> Envelope:
    """An error envelope; the message is flattened to one line and any password redacted."""
    one_line = " ".join(redact(message).split())
    return {"ok": False, "error": {"code": code, "message": one_line}}


def error_code(exc: BaseException) -> str:
    """The envelope's ``error.code`` for a domain error: the class's own ``error_code`` when it
    names one, else by kind (``error`` for any other)."""
    own = getattr(exc, "error_code", None)
    if isinstance(own, str):
        return own
    for kind, code in _ERROR_CODES:
        if isinstance(exc, kind):
            return code
    return "error"


def dumps(envelope: Envelope) -> str:
    """For terminals: indented."""
    return json.dumps(envelope, indent=2)


def encode(envelope: Envelope) -> bytes:
    """For HTTP: compact, one line, newline-terminated (friendly to curl and log scrapers)."""
    return json.dumps(envelope, separators=(",", ":")).encode() + b"\n"
