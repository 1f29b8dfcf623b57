"""``parse-error``: a statement that does not parse in the dialect could not be checked. It is
``info``: it says nothing about performance, and valid SQL that our parser does not know must
not fail a CI gate. Its check is not run on a tree: the runner calls it with the reason."""

from __future__ import annotations

from collections.abc import Callable

from querywatch.findings import Rule


def describe(reason: str, dialect: str) -> tuple[str, str]:
    """Message and fix for a statement that does not parse."""
    return (
        f"cannot parse this statement as {dialect} SQL: {reason}",
        f"fix the syntax, or lint with the right dialect (--dialect; this was {dialect}); "
        "nothing else was checked in this statement",
    )


RULE: Rule[Callable[[str, str], tuple[str, str]]] = Rule(
    "parse-error",
    "info",
    "The statement does not parse in the dialect: nothing in it was checked.",
    describe,
)
