"""Who owns the code that sent the query: CODEOWNERS matched against the culprits' call sites.

The repository already says who owns which files; paging those people (not whoever is on call
for "the database") is what turns "a spike in query times" into a fix. GitHub's rules apply:
the last matching line wins, a line with no owners leaves a path unowned, a leading or inner ``/``
anchors a pattern to the repository root, otherwise it matches at any depth, ``dir/`` matches
everything under any ``dir`` directory, ``docs/*`` only the files directly in ``docs``, and
``**`` any number of directories.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from querywatch.errors import ConfigError
from querywatch.incidents.model import Incident
from querywatch.records import CallSite

# Where GitHub looks, in its order.
CODEOWNERS_LOCATIONS = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS")

_OWNER = re.compile(
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:/[A-Za-z0-9._-]+)?$"  # @user, @org/team
    r"|[^@\s]+@[^@\s]+\.[^@\s]+$"  # e-mail
)


@dataclass(frozen=True, slots=True)
class OwnerRule:
    pattern: str
    owners: tuple[str, ...]
    line: int
    regex: re.Pattern[str]

    def matches(self, path: str) -> bool:
        return self.regex.match(path) is not None


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """Translate one CODEOWNERS pattern (gitignore syntax, GitHub's subset) to a regex."""
    directory = pattern.endswith("/")
    body = pattern.rstrip("/")
    anchored = body.startswith("/") or "/" in body.lstrip("/")
    body = body.lstrip("/")
    out: list[str] = []
    i = 0
    while i < len(body):
        if body.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif body.startswith("**", i) and i + 2 == len(body) and (i == 0 or body[i - 1] == "/"):
            out.append(".*")
            i += 2
        elif body[i] == "*":
            while i < len(body) and body[i] == "*":
                i += 1
            out.append("[^/]*")
        elif body[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(body[i]))
            i += 1
    head = "" if anchored else "(?:.*/)?"
    if directory:
        tail = "/.*"  # only what is under the directory
    elif body.endswith("/*"):
        tail = ""  # GitHub: `docs/*` owns docs/a.md, not docs/sub/b.md
    else:
        tail = "(?:/.*)?"  # a file, or everything under a directory of that name
    return re.compile(head + "".join(out) + tail + r"\Z")


class CodeOwners:
    """Parsed rules plus the repository root that relative call-site paths are resolved against."""

    def __init__(self, rules: Iterable[OwnerRule], *, root: Path | None = None):
        self.rules = tuple(rules)
        self.root = root

    @classmethod
    def parse(
        cls, text: str, *, source: str = "CODEOWNERS", root: Path | None = None
    ) -> CodeOwners:
        rules = [
            rule for n, line in enumerate(text.splitlines(), 1) if (rule := _rule(line, n, source))
        ]
        return cls(rules, root=root)

    @classmethod
    def load(cls, path: str | Path) -> CodeOwners:
        """Read a CODEOWNERS file; its repository root is the directory above .github/ or docs/."""
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
            raise ConfigError(f"cannot read CODEOWNERS: {reason}", source=str(file)) from err
        parent = file.resolve().parent
        root = parent.parent if parent.name in (".github", "docs") else parent
        return cls.parse(text, source=str(file), root=root)

    @classmethod
    def find(cls, repo_root: str | Path) -> CodeOwners | None:
        """The repository's CODEOWNERS from GitHub's usual locations, or None when there is none."""
        for location in CODEOWNERS_LOCATIONS:
            candidate = Path(repo_root) / location
            if candidate.is_file():
                return cls.load(candidate)
        return None

    def relative(self, path: str) -> str | None:
        """The path as CODEOWNERS sees it (POSIX, from the root), or None when outside the repo."""
        path = path.replace("\\", "/")
        if os.path.isabs(path) or path.startswith("/"):
            if self.root is None:
                return None
            try:
                path = Path(path).resolve().relative_to(self.root.resolve()).as_posix()
            except ValueError:
                return None
        parts = [p for p in PurePosixPath(path).parts if p not in ("", ".")]
        if not parts or ".." in parts:
            return None
        return "/".join(parts)

    def owners_of(self, path: str) -> tuple[str, ...]:
        """Owners of one file: the last matching rule's, or none."""
        rel = self.relative(path)
        if rel is None:
            return ()
        for rule in reversed(self.rules):
            if rule.matches(rel):
                return rule.owners
        return ()

    def owners_for(self, call_sites: Iterable[CallSite]) -> tuple[str, ...]:
        """Union of the owners of every call site, first seen first, without duplicates."""
        seen: dict[str, None] = {}
        for site in call_sites:
            for owner in self.owners_of(site.path):
                seen.setdefault(owner, None)
        return tuple(seen)

    def owners_for_incident(self, incident: Incident) -> tuple[str, ...]:
        """Owners over the culprits' call sites, in culprit (blame) order."""
        return self.owners_for(site for c in incident.culprits for site in c.call_sites)


def _rule(raw: str, number: int, source: str) -> OwnerRule | None:
    line = raw.strip()
    if not line or line.startswith("#"):
        return None
    tokens = line.split()
    pattern, rest = tokens[0], tokens[1:]
    where = f"{source}:{number}"
    if pattern.startswith("\\#"):
        pattern = pattern[1:]
    if pattern.startswith("!"):
        raise ConfigError(f"negated pattern {pattern!r} is not supported", source=where)
    if any(ch in pattern for ch in "[]\\"):
        raise ConfigError(
            f"pattern {pattern!r}: character ranges and escapes are not supported", source=where
        )
    owners: list[str] = []
    for token in rest:
        if token.startswith("#"):  # an inline comment ends the line
            break
        if not _OWNER.match(token):
            raise ConfigError(
                f"{token!r} is not an owner (expected @user, @org/team or an e-mail)",
                source=where,
            )
        owners.append(token)
    return OwnerRule(pattern, tuple(owners), number, pattern_regex(pattern))
