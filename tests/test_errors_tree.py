"""errors.py's docstring names every domain exception and the module it lives in, so a reader
who starts there finds them all; this keeps that list true as exceptions are added or moved."""

from __future__ import annotations

import importlib
import pkgutil
import re

import querywatch
from querywatch import errors
from querywatch.errors import QuerywatchError


def all_domain_exceptions() -> set[type[QuerywatchError]]:
    for info in pkgutil.walk_packages(querywatch.__path__, "querywatch."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
    found: set[type[QuerywatchError]] = set()
    todo = [QuerywatchError]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub.__module__.startswith("querywatch.") and sub not in found:
                found.add(sub)
                todo.append(sub)
    return found


def test_errors_docstring_names_every_domain_exception_and_where_it_lives() -> None:
    doc = errors.__doc__ or ""
    listed_elsewhere = set(re.findall(r"^ (querywatch\.[\w.]+)\s+(\w+)", doc, re.MULTILINE))
    missing = []
    for exc in all_domain_exceptions():
        if exc.__module__ == "querywatch.errors":
            if not re.search(rf"[─ ]{exc.__name__}\b", doc):
                missing.append(exc.__name__)
        elif (exc.__module__, exc.__name__) not in listed_elsewhere:
            missing.append(f"{exc.__module__}.{exc.__name__}")
    assert not missing, f"add to errors.py's docstring: {sorted(missing)}"
    # and nothing listed that is gone or moved
    for module, name in listed_elsewhere:
        assert issubclass(getattr(importlib.import_module(module), name), QuerywatchError)
