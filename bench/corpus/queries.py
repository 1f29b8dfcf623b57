"""The corpus queries: one ``queries/<family>.sql`` file per anti-pattern family.

A file starts with ``-- family: <id>`` (and optional ``-- source:`` lines naming where the
anti-pattern is described); each query follows as a block of headers and one statement::

    -- name: assignee-open          (unique within the file; the query's id is family/name)
    -- schema: saas                 (the database it runs on: schema/<schema>.sql)
    -- intent: slow|fine            (what it was written to be; labels come from measurement)
    SELECT ...;
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

QUERY_DIR = Path(__file__).resolve().parent / "queries"
SCHEMA_DIR = QUERY_DIR.parent / "schema"
_HEADER = re.compile(r"^--\s*(\w+):\s*(.*?)\s*$")


@dataclass(frozen=True, slots=True)
class Query:
    id: str  # family/name
    family: str
    schema: str
    intent: str
    sql: str

    @property
    def digest(self) -> str:
        """Changes when the statement or its schema file changes (a stale label is re-measured)."""
        data = (SCHEMA_DIR / f"{self.schema}.sql").read_bytes()
        return hashlib.sha256(data + self.sql.encode()).hexdigest()[:16]


class CorpusError(ValueError):
    pass


def parse_file(path: Path) -> list[Query]:
    family: str | None = None
    out: list[Query] = []
    current: dict[str, str] = {}
    body: list[str] = []

    def flush() -> None:
        sql = "\n".join(body).strip().rstrip(";").strip()
        if not current and not sql:
            return
        missing = [k for k in ("name", "schema", "intent") if k not in current]
        if missing or not sql or family is None:
            raise CorpusError(f"{path.name}: query {current.get('name', '?')}: missing {missing}")
        if current["intent"] not in ("slow", "fine"):
            raise CorpusError(f"{path.name}: {current['name']}: intent must be slow or fine")
        out.append(
            Query(f"{family}/{current['name']}", family, current["schema"], current["intent"], sql)
        )

    for line in path.read_text().splitlines():
        m = _HEADER.match(line)
        if m and m.group(1) == "family" and family is None:
            family = m.group(2)
            continue
        if m and m.group(1) == "source":
            continue
        if m and m.group(1) == "name":
            flush()
            current, body = {"name": m.group(2)}, []
            continue
        if m and current and not body and m.group(1) in ("schema", "intent"):
            current[m.group(1)] = m.group(2)
            continue
        if current:
            body.append(line)
    flush()
    return out


def load_queries(families: list[str] | None = None, names: list[str] | None = None) -> list[Query]:
    """Every query, in file then block order; ``families``/``names`` (substrings) narrow it."""
    out: list[Query] = []
    for path in sorted(QUERY_DIR.glob("*.sql")):
        out.extend(parse_file(path))
    seen: set[str] = set()
    for q in out:
        if q.id in seen:
            raise CorpusError(f"duplicate query id {q.id}")
        seen.add(q.id)
    if families:
        out = [q for q in out if q.family in families]
    if names:
        out = [q for q in out if any(n in q.id for n in names)]
    return out
