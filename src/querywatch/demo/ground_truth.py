"""What the bad release changed, read from the releases' source: the answer detection must find.

Every SQL string a release passes to ``db.one`` / ``db.all`` is fingerprinted; the fingerprints
that v2 has and v1 does not are the queries the bad deploy changed or added.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from querywatch.capture.callsite import display_path
from querywatch.sql import fingerprint


@dataclass(frozen=True, slots=True)
class ReleaseQuery:
    fingerprint: str
    normalized: str
    path: str
    line: int
    function: str

    def as_dict(self) -> dict[str, object]:
        return {
            "fingerprint": self.fingerprint,
            "normalized": self.normalized,
            "call_site": f"{self.path}:{self.line}",
            "function": self.function,
        }


def release_queries(path: Path, dialect: str) -> list[ReleaseQuery]:
    """The SQL literals a release file hands to its database helper, with their call lines."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[ReleaseQuery] = []
    for func in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
        for node in ast.walk(func):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("one", "all")
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                fp = fingerprint(node.args[0].value, dialect)
                found.append(
                    ReleaseQuery(
                        fp.id, fp.normalized, display_path(str(path)), node.lineno, func.name
                    )
                )
    return found


def changed_queries(good: Path, bad: Path, dialect: str) -> list[ReleaseQuery]:
    """Queries of ``bad`` whose fingerprint ``good`` never issues."""
    before = {q.fingerprint for q in release_queries(good, dialect)}
    return [q for q in release_queries(bad, dialect) if q.fingerprint not in before]
