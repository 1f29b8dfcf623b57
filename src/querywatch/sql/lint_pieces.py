"""Pieces of statements: source code builds SQL from them (``"SELECT * FROM "``, ``" AND x =
?"``). :func:`incomplete_piece` says why a text found in source cannot be a whole statement, so
the lint runner counts it as a fragment instead of reporting a parse error."""

from __future__ import annotations

import re

from querywatch.sql.lint_parse import UNCHECKED, lexer

__all__ = ["incomplete_piece"]

_NEVER_FIRST = frozenset(
    """WHERE AND OR FROM JOIN INNER LEFT RIGHT FULL OUTER CROSS NATURAL ON USING ORDER GROUP
    HAVING LIMIT OFFSET INTO UNION INTERSECT EXCEPT RETURNING WINDOW AS BY IN NOT LIKE ILIKE
    THEN ELSE WHEN IS NULL ASC DESC SET FOR""".split()  # noqa: SIM905
)
_NEVER_LAST = frozenset(
    """SELECT FROM WHERE AND OR JOIN ON SET VALUES INTO BY IN NOT LIKE ILIKE AS IS UPDATE TABLE
    INSERT DELETE EXISTS LIMIT OFFSET DISTINCT UNION HAVING WHEN THEN ELSE CASE RETURNING
    USING WITH BETWEEN ESCAPE INTERSECT EXCEPT""".split()  # noqa: SIM905
)
_COMPLETE_ENDINGS = {"VALUES": "DEFAULT", "UPDATE": "FOR KEY", "SET": "CHARACTER"}
"""Words that end a statement when the word before is one of these (DEFAULT VALUES, FOR
UPDATE, FOR NO KEY UPDATE…)."""


def incomplete_piece(text: str, dialect: str) -> str | None:
    """Why ``text`` is a piece of a statement rather than one (``None`` when it could be whole):
    it starts with a clause that cannot begin a statement (``WHERE …``, ``AND …``), ends with a
    word or sign that expects more (``SELECT * FROM``, ``… = ``, ``VALUES``), or leaves a
    parenthesis open. Query builders compose SQL from such pieces."""
    # comments go; strings, quoted names, parameters and holes are each one value "v"
    code = lexer(dialect).sub(lambda m: " " if m.group("c") is not None else " v ", text).strip()
    if not code:
        return None
    words = re.findall(r"[A-Za-z_]\w*", code)
    first = words[0].upper() if words and code[0].isalpha() else None
    if first in UNCHECKED:
        return None
    if code[0] in ",)=<>+*/|." or first in _NEVER_FIRST:
        return f"starts with {code.split()[0]!r}"
    if code.count("(") > code.count(")"):
        return "leaves a parenthesis open"
    if code[-1] in ",(=<>+-|.":
        return f"ends with {code[-1]!r}"
    last = words[-1].upper() if words and re.search(r"[A-Za-z_]\w*\Z", code) else None
    if last in _NEVER_LAST:
        before = words[-2].upper() if len(words) > 1 else ""
        if before not in _COMPLETE_ENDINGS.get(last, "").split():
            return f"ends with {words[-1]!r}"
    return None
