"""The app for ``INSTALLED_APPS``: reads ``settings.QUERYWATCH`` and starts the capture."""

from __future__ import annotations

from django.apps import AppConfig


class QueryWatchConfig(AppConfig):  # type: ignore[misc]  # Django ships no type hints
    name = "querywatch.contrib.django"
    label = "querywatch"
    verbose_name = "querywatch"

    def ready(self) -> None:
        from querywatch.contrib.django import capture
        from querywatch.contrib.django.conf import read_settings

        settings = read_settings()  # a wrong key or value stops the start, naming it
        if settings.enabled:
            capture.start(settings)
