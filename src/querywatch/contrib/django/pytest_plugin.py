"""``pytest --querywatch`` under pytest-django (the ``querywatch_django`` pytest11 entry point).

Inactive unless ``--querywatch`` is given and Django is set up (pytest-django does that from
``DJANGO_SETTINGS_MODULE`` or ``--ds``); importing it imports nothing from Django. Then the app's
own capture (production traffic to the store) is stopped for the session, Django's
statements reach the gate's collector through Django's hook (:mod:`.gate`), pytest-django's
``django_db_setup`` (creating and migrating the test database) is not recorded, and the N+1
findings of the report name the ORM relation to ``select_related``/``prefetch_related``.
"""

from __future__ import annotations

import sys
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from querywatch.gate.pytest_plugin import PLUGIN_NAME, GatePlugin

if TYPE_CHECKING:
    from querywatch.contrib.django.gate import DjangoGate

DB_SETUP_FIXTURE = "django_db_setup"


def _django_ready() -> bool:
    if "django" not in sys.modules:
        return False
    from django.apps import apps

    return bool(apps.ready)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    gate = config.pluginmanager.get_plugin(PLUGIN_NAME)
    if isinstance(gate, GatePlugin):
        config.pluginmanager.register(DjangoGatePlugin(gate), "querywatch-django")


class DjangoGatePlugin:
    def __init__(self, gate: GatePlugin) -> None:
        self.gate = gate
        self.django: DjangoGate | None = None

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        # Before the gate patches sqlite3/psycopg: the app's own capture stops here (its last
        # flush writes querywatch's store, which is no statement of the project's).
        if not _django_ready():
            return
        from querywatch.contrib.django import capture
        from querywatch.contrib.django.gate import DjangoGate

        capture.stop()

        self.django = DjangoGate(self.gate.collector)
        self.django.install()

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef: Any, request: Any) -> Generator[None, Any, Any]:
        if self.django is None or fixturedef.argname != DB_SETUP_FIXTURE:
            return (yield)
        with self.django.setting_up():
            return (yield)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        # After the gate's own (tryfirst) sessionfinish ran the check, before its summary.
        if self.django is None:
            return
        self.django.uninstall()
        if self.gate.report is not None:
            from querywatch.contrib.django.gate import advise_report

            advise_report(self.gate.report)
