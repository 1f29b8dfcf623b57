"""The shop's releases: ``v1`` (good), ``v1.1`` (a harmless change) and ``v2`` (ships the slow
query and an N+1).

A release is a module defining ``VERSION`` and the page functions ``home``, ``product``,
``customer_orders``, ``order`` and ``search``. Its commit id is derived from the file's bytes,
so editing a release changes its "commit" the way a real one would.
"""

from __future__ import annotations

import hashlib
import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

RELEASES: tuple[str, ...] = ("v1", "v1.1", "v2")
GOOD = "v1"
BAD = "v2"


@dataclass(frozen=True)
class Release:
    """One loadable release: its version, fake commit id, source file and page functions."""

    version: str
    commit: str
    path: Path
    module: ModuleType


def commit_of(version: str) -> str:
    """A 12-hex commit-like id: sha1 of the release file's contents."""
    return hashlib.sha1(_path(version).read_bytes()).hexdigest()[:12]


def _path(version: str) -> Path:
    if version not in RELEASES:
        raise ValueError(f"unknown release {version!r} (known: {', '.join(RELEASES)})")
    return Path(__file__).with_name(_module(version) + ".py")


def _module(version: str) -> str:
    return version.replace(".", "_")


def load_release(version: str) -> Release:
    """Import release ``version`` (``v1`` or ``v2``)."""
    path = _path(version)
    module = importlib.import_module(f"{__name__}.{_module(version)}")
    return Release(version, commit_of(version), path, module)
