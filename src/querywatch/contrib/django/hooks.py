"""Django's own statement hook, on every connection: ``connection.execute_wrappers``.

Django keeps one ``DatabaseWrapper`` per alias and thread, so wrapping "the" connection once is
not enough: :class:`ConnectionHook` wraps the ones this thread has open now and, through the
``connection_created`` signal, every connection opened later, in any thread. Each wrapper is put
first in the list (outermost), so a ``with connection.execute_wrapper(...)`` block that pops the
last wrapper at its end never removes ours.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

ExecuteWrapper = Callable[..., Any]
"""``wrapper(execute, sql, params, many, context)``, as Django calls it."""

_DIALECTS = {"postgresql": "postgres", "sqlite": "sqlite", "mysql": "mysql"}


def dialect_of(connection: Any) -> str:
    """querywatch's dialect name for a Django connection (``vendor`` ``postgresql`` ->
    ``postgres``)."""
    vendor = str(getattr(connection, "vendor", "postgresql"))
    return _DIALECTS.get(vendor, vendor)


def skip_django_frames() -> None:
    """Never take a call site in Django itself, even when it is not installed in site-packages
    (a source checkout, ``pip install -e``): the call site is the project's own line."""
    import django

    from querywatch.capture.callsite import add_library_path

    add_library_path(os.path.dirname(os.path.abspath(django.__file__)))


class ConnectionHook:
    """Puts the wrapper ``make(connection)`` returns on every Django connection, once each.

    ``uid`` tells this hook's wrappers from any other's (the gate's and the capture's may both be
    on one connection); :meth:`uninstall` removes them from this thread's connections and stops
    wrapping new ones (wrappers on other threads' connections stay, and see they are detached
    through ``is_installed``).
    """

    def __init__(self, uid: str, make: Callable[[Any], ExecuteWrapper]) -> None:
        self.uid = uid
        self._make = make
        self.installed = False

    def install(self) -> None:
        from django.db import connections
        from django.db.backends.signals import connection_created

        connection_created.connect(self._created, weak=False, dispatch_uid=self.uid)
        self.installed = True
        for conn in connections.all(initialized_only=True):
            self.attach(conn)

    def uninstall(self) -> None:
        from django.db import connections
        from django.db.backends.signals import connection_created

        self.installed = False
        connection_created.disconnect(dispatch_uid=self.uid)
        for conn in connections.all(initialized_only=True):
            conn.execute_wrappers[:] = [w for w in conn.execute_wrappers if not self.owns(w)]

    def owns(self, wrapper: object) -> bool:
        return getattr(wrapper, "querywatch_uid", None) == self.uid

    def attach(self, connection: Any) -> None:
        """Wrap ``connection`` unless it already is (a reconnect fires the signal again)."""
        wrappers = connection.execute_wrappers
        if not any(self.owns(w) for w in wrappers):
            wrapper = self._make(connection)
            wrapper.querywatch_uid = self.uid  # type: ignore[attr-defined]
            wrappers.insert(0, wrapper)

    def _created(self, sender: Any, connection: Any, **kwargs: Any) -> None:
        if self.installed:
            self.attach(connection)
