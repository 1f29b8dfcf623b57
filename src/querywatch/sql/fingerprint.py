"""Statement fingerprints: the normalized shape of a statement and its stable hash.

PROVISIONAL first version; the final normalizer replaces the body, keeping this API.
"""

from __future__ import annotations

import hashlib
import re
from typing import NamedTuple


class Fingerprint(NamedTuple):
    id: str
    normalized: str


_TOKEN = re.compile(
    r"(?P<comment>--[^\n]*|/\*.*?\*/)"
    r"|(?P<string>'(?:[^']|'')*')"
    r"|(?P<param>\$\d+|%s|%\(\w+\)s|\?|:\w+)"
    r"|(?P<number>\b\d+(?:\.\d+)?\b)",
    re.S,
)


def fingerprint(sql: str, dialect: str = "postgres") -> Fingerprint:
    text = _TOKEN.sub(lambda m: "" if m.group("comment") else "?", sql)
    text = re.sub(r"\s+", " ", text).strip().lower()
    text = re.sub(r"\(\s*\?(?:\s*,\s*\?)*\s*\)", "(?)", text)
    return Fingerprint(hashlib.blake2b(text.encode(), digest_size=8).hexdigest(), text)
