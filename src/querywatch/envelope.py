"""One JSON shape for every API response and every `--json` output.

    {"ok": true,  "data": ...}
    {"ok": false, "error": {"code": "not_found", "message": "one line for a human"}}

A CI script checks ``ok`` and reads ``data`` or ``error.message`` the same way everywhere, and
``tests/test_api.py`` checks every endpoint and error against this shape.
"""

from __future__ import annotations

import json
from typing import Any

from querywatch.dsn import redact

Envelope = dict[str, Any]


def success(data: Any) -> Envelope:
    return {"ok": True, "data": data}


def failure(code: str, message: str) -> Envelope:
    """An error envelope; the message is flattened to one line and any password redacted."""
    one_line = " ".join(redact(message).split())
    return {"ok": False, "error": {"code": code, "message": one_line}}


def dumps(envelope: Envelope) -> str:
    """For terminals: indented, like the other `--json` outputs."""
    return json.dumps(envelope, indent=2)


def encode(envelope: Envelope) -> bytes:
    """For HTTP: compact, one line, newline-terminated (friendly to curl and log scrapers)."""
    return json.dumps(envelope, separators=(",", ":")).encode() + b"\n"
