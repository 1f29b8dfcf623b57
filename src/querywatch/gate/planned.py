"""Plans judged while the tests ran, as the run file keeps them.

A test database often lives only as long as the tests (pytest-django drops it when the session's
fixtures are torn down, a test drops the tables it created), so ``pytest --querywatch`` EXPLAINs
each new fingerprint while its database still exists (:mod:`querywatch.gate.early`) and keeps
the verdict here: the plan's signature and the plan rules' findings, or why EXPLAIN rejected it.
The check uses a kept verdict instead of EXPLAINing again, so ``querywatch check`` on a saved run
file gives the same answer after the test database is gone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from querywatch.findings import SEVERITIES, Finding, Location


@dataclass(slots=True)
class PlanRecord:
    """One fingerprint's plan as judged during the run (``error`` None), or why it could not be
    (``error``, EXPLAIN's reason, while the database still existed). ``database`` is where, as
    shown to users (never a password)."""

    database: str
    shape: str | None = None
    access: dict[str, str] = field(default_factory=dict)
    cost: float | None = None
    findings: list[Finding] = field(default_factory=list)
    error: str | None = None

    @property
    def planned(self) -> bool:
        return self.error is None and self.shape is not None

    def to_json(self) -> dict[str, Any]:
        if self.error is not None:
            return {"database": self.database, "error": self.error}
        return {
            "database": self.database,
            "shape": self.shape,
            "access": dict(sorted(self.access.items())),
            "cost": self.cost,
            # evidence holds numbers and names; anything else is kept as its text
            "findings": json.loads(json.dumps([f.as_dict() for f in self.findings], default=str)),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PlanRecord:
        """Raises KeyError, TypeError or ValueError on a damaged entry (the run file says so)."""
        cost = data.get("cost")
        return cls(
            database=str(data["database"]),
            shape=None if data.get("shape") is None else str(data["shape"]),
            access={str(k): str(v) for k, v in dict(data.get("access") or {}).items()},
            cost=None if cost is None else float(cost),
            findings=[finding_from_json(f) for f in data.get("findings") or []],
            error=None if data.get("error") is None else str(data["error"]),
        )


def finding_from_json(data: dict[str, Any]) -> Finding:
    """The inverse of :meth:`Finding.as_dict`."""
    severity = str(data["severity"])
    if severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r}")
    loc = data.get("location")
    return Finding(
        rule=str(data["rule"]),
        severity=severity,
        message=str(data["message"]),
        fix=str(data["fix"]),
        evidence=dict(data.get("evidence") or {}),
        fingerprint=None if data.get("fingerprint") is None else str(data["fingerprint"]),
        sql=None if data.get("sql") is None else str(data["sql"]),
        location=None
        if not loc
        else Location(
            str(loc["path"]),
            int(loc["line"]),
            int(loc.get("column") or 1),
            None if loc.get("function") is None else str(loc["function"]),
        ),
    )
