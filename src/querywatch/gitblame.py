"""Which commit last changed a call site's line: ``git blame`` for one line at a time.

An alert that names the query and its call site is good; one that also names the commit (and its
author) that last touched that line sends the page straight to the person who can fix it. Blame is
best effort: git may be missing, the file untracked, the line uncommitted or the path outside the
repository. Every such case gives ``None``, never an exception, so attribution always completes.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

TIMEOUT_S = 5.0
"""A blame that takes longer than this (a huge history, a slow disk) is abandoned."""

SHORT = 10
"""Characters of the commit id shown (unambiguous in any repository of sensible size)."""

_UNCOMMITTED = "0" * 40
# No pager, no prompts, and untranslated messages, whatever the user's git configuration says.
_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat", "LC_ALL": "C"}


@dataclass(frozen=True, slots=True)
class Blame:
    """The commit that last changed one line."""

    commit: str  # full object id
    author: str
    summary: str  # the commit message's first line

    @property
    def short(self) -> str:
        return self.commit[:SHORT]

    def __str__(self) -> str:
        return f"{self.short} {self.author}: {self.summary}"


class GitBlame:
    """Blame lines under one repository root, caching each (path, line) and the repository top.

    One instance per attribution run: a cache that outlived a deploy would name stale commits.
    """

    def __init__(self, repo_root: Path | str | None = None, *, timeout_s: float = TIMEOUT_S):
        self.root = Path(repo_root if repo_root is not None else os.getcwd()).resolve()
        self.timeout_s = timeout_s
        self._toplevel: Path | bool | None = False  # False: not looked up yet
        self._cache: dict[tuple[str, int], Blame | None] = {}

    def toplevel(self) -> Path | None:
        """The checkout holding ``repo_root``, or ``None`` when it is not inside one."""
        if self._toplevel is False:
            out = self._git(self.root, "rev-parse", "--show-toplevel")
            self._toplevel = Path(out.strip()).resolve() if out and out.strip() else None
        return self._toplevel if isinstance(self._toplevel, Path) else None

    def line(self, path: str | Path, line: int) -> Blame | None:
        """The last commit that changed ``line`` (1-based) of ``path``; relative paths are taken
        against ``repo_root``. ``None`` when git cannot say."""
        key = (str(path), int(line))
        if key not in self._cache:
            self._cache[key] = self._blame(Path(path), int(line))
        return self._cache[key]

    def _blame(self, path: Path, line: int) -> Blame | None:
        top = self.toplevel()
        if top is None or line < 1:
            return None
        try:
            full = (path if path.is_absolute() else self.root / path).resolve()
            relative = full.relative_to(top)
        except (OSError, ValueError):  # outside the checkout, or an unresolvable path
            return None
        out = self._git(top, "blame", "--porcelain", "-L", f"{line},{line}", "--", str(relative))
        return _parse(out) if out else None

    def _git(self, cwd: Path, *args: str) -> str | None:
        """``git args`` in ``cwd``: its output, or ``None`` on any failure (never raises)."""
        try:
            done = subprocess.run(
                ["git", "-C", str(cwd), *args],
                capture_output=True,
                timeout=self.timeout_s,
                env={**os.environ, **_ENV},
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except (OSError, subprocess.SubprocessError, ValueError):
            return None
        if done.returncode != 0:
            return None
        return done.stdout.decode("utf-8", "replace")


def _parse(porcelain: str) -> Blame | None:
    """The commit, author and summary from ``git blame --porcelain`` output for one line."""
    lines = porcelain.splitlines()
    if not lines:
        return None
    commit = lines[0].split(" ", 1)[0]
    if len(commit) < 40 or commit == _UNCOMMITTED:  # a line changed in the working tree only
        return None
    author = summary = ""
    for text in lines[1:]:
        if text.startswith("\t"):  # the line's content ends the headers
            break
        if text.startswith("author "):
            author = text[len("author ") :]
        elif text.startswith("summary "):
            summary = text[len("summary ") :]
    return Blame(commit, author, summary)


def blame_line(path: str | Path, line: int, repo_root: Path | str | None = None) -> Blame | None:
    """One-off :meth:`GitBlame.line` (no cache shared between calls)."""
    return GitBlame(repo_root).line(path, line)
