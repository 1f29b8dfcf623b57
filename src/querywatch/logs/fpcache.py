"""Fingerprints for log statements, cached by the statement's shape rather than its text.

A log of simple-protocol traffic has a different text per statement (the literals differ), so
``querywatch.sql.fingerprint``'s cache, keyed by text, never hits and fingerprinting becomes most
of a digest's time (about 7 µs a statement, five times the parsing). Here the cache key is the
text with its literal *values* blanked — every ``'…'`` string becomes ``''`` and every number
``0`` — so ``… WHERE aid = 5`` and ``… WHERE aid = 9`` share one entry and one fingerprint call.

Blanking is only done where it cannot change the fingerprint: the fingerprint replaces every
string and number literal with ``?`` whatever its value, and a digit inside an identifier
(``t1``) is not blanked (it follows a word character). Texts where a quote or digit might not be
a literal — quoted identifiers (``"col 1"``, backticks), comments, backslash escapes, dollar
quoting, MySQL ``#`` comments — take the exact-text path. tests/test_logs_fpcache.py checks
``fingerprint(key(t)) == fingerprint(t)`` over the fingerprint corpus and generated texts.
"""

from __future__ import annotations

import re

from querywatch.sql.fingerprint import fingerprint

CACHE_LIMIT = 100_000

_STRINGS = re.compile(r"'[^']*(?:''[^']*)*'")  # '' inside is an escaped quote
# A number not inside a word: the lookbehind after the first digit (not before it) lets the
# engine jump from digit to digit instead of trying the assertion at every character.
_NUMBERS = re.compile(r"\d(?<![\w$.']\d)(?<![eE][-+]\d)\d*(?:\.\d*)?(?:[eE][-+]?\d+)?(?![\w$.'])")
_DOLLAR_QUOTE = re.compile(r"\$(?!\d)")


def _unsafe(text: str, mysql: bool) -> bool:
    """True when a quote or digit in ``text`` might not be a literal (``in`` tests run in C)."""
    return (
        '"' in text
        or "`" in text
        or "\\" in text
        or "--" in text
        or "/*" in text
        or ("$" in text and _DOLLAR_QUOTE.search(text) is not None)
        or (mysql and "#" in text)
    )


def shape_key(text: str, dialect: str = "postgres") -> str | None:
    """The text with literal values blanked, or None when blanking is not safe for it."""
    if _unsafe(text, dialect != "postgres"):
        return None
    if "'" in text:
        text = _STRINGS.sub("''", text)
    return _NUMBERS.sub("0", text)


class Fingerprints:
    """``(id, normalized)`` for statement texts of one dialect; see the module docstring."""

    def __init__(self, dialect: str = "postgres") -> None:
        self.dialect = dialect
        self._cache: dict[str, tuple[str, str]] = {}
        self._mysql = dialect != "postgres"

    def __call__(self, text: str) -> tuple[str, str]:
        cache = self._cache
        got = cache.get(text)  # texts without literals (``$1`` parameters) are their own key
        if got is not None:
            return got
        if _unsafe(text, self._mysql):
            return fingerprint(text, self.dialect)  # its own cache, by exact text
        key = _NUMBERS.sub("0", _STRINGS.sub("''", text) if "'" in text else text)
        got = cache.get(key)
        if got is None:
            got = fingerprint(text, self.dialect, remember=False)
            if len(cache) >= CACHE_LIMIT:
                cache.clear()
            cache[key] = got
        return got
