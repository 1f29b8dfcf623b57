"""Find the application frame that issued a statement.

Walking the stack costs a few microseconds, so callers sample it (see ``aggregate``); the
"is this a library file?" decision is cached per file name so a walk is a handful of dict lookups.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from types import FrameType
from typing import Any

from querywatch.records import CallSite

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _library_prefixes() -> tuple[str, ...]:
    prefixes = {_PACKAGE_DIR}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            prefixes.add(os.path.abspath(path) + os.sep)
    return tuple(sorted(prefixes))


_prefixes = _library_prefixes()
_app_prefixes: tuple[str, ...] = ()
_is_library: dict[str, bool] = {}
_display: dict[str, str] = {}


def add_library_path(path: str) -> None:
    """Treat files under ``path`` as library code too (e.g. your own database helper package)."""
    global _prefixes
    _prefixes = (*_prefixes, os.path.abspath(path) + os.sep)
    _is_library.clear()


def add_application_path(path: str) -> None:
    """Treat files under ``path`` as application code even inside a library directory (the
    demo's shop releases live inside querywatch's own package)."""
    global _app_prefixes
    _app_prefixes = (*_app_prefixes, os.path.abspath(path) + os.sep)
    _is_library.clear()


def is_library(filename: str) -> bool:
    """True for the stdlib, site-/dist-packages, frozen modules and querywatch itself."""
    known = _is_library.get(filename)
    if known is None:
        known = _classify(filename)
        _is_library[filename] = known
    return known


def _classify(filename: str) -> bool:
    if filename.startswith("<frozen"):
        return True
    if filename.startswith("<"):
        # <stdin>, <string>: the user's own code; "<sqlalchemy generated warnings>", "<attrs
        # generated init ...>": code a library compiled for itself.
        return " generated" in filename
    path = os.path.abspath(filename)
    if path.startswith(_app_prefixes):
        return False
    parts = path.split(os.sep)
    if "site-packages" in parts or "dist-packages" in parts:
        return True
    return path.startswith(_prefixes)


def display_path(filename: str) -> str:
    """The file relative to the working directory when inside it (stable across hosts)."""
    shown = _display.get(filename)
    if shown is None:
        path = os.path.abspath(filename)
        cwd = os.getcwd() + os.sep
        shown = path[len(cwd) :] if path.startswith(cwd) else path
        _display[filename] = shown
    return shown


def find_call_site(frame: FrameType | None) -> CallSite | None:
    """The innermost frame at or above ``frame`` that is application code, as a CallSite.

    A stack that ends inside a greenlet (SQLAlchemy's asyncio engines run the ORM in one) goes
    on in the parent greenlet, where the application's coroutine awaits the result.
    """
    glet: Any = None
    while True:
        while frame is not None:
            code = frame.f_code
            filename = code.co_filename
            library = _is_library.get(filename)
            if library is None:
                library = is_library(filename)
            if not library:
                return CallSite(display_path(filename), frame.f_lineno, code.co_qualname)
            frame = frame.f_back
        frame, glet = _parent_greenlet_frame(glet)
        if frame is None:
            return None


def _parent_greenlet_frame(glet: Any) -> tuple[FrameType | None, Any]:
    """Where the parent of ``glet`` (default: the current greenlet) is suspended, and that
    parent; ``(None, None)`` without greenlets."""
    module = sys.modules.get("greenlet")
    if module is None:
        return None, None
    parent = (glet or module.getcurrent()).parent
    if parent is None:
        return None, None
    return parent.gr_frame, parent
