"""``settings.QUERYWATCH``: querywatch's own settings, plus the few only Django needs.

Keys are the names of :data:`querywatch.config.SETTINGS` (``store``, ``slo_ms``,
``release_header``, ``dsn``…) and :data:`DJANGO_KEYS`. Precedence, as for the CLI: an environment
variable (``QUERYWATCH_<NAME>``) wins, then ``settings.QUERYWATCH``, then ``querywatch.toml``, then
the default. A wrong key or value raises a :class:`~querywatch.errors.ConfigError` that names it
(``settings.QUERYWATCH['slo_ms'] = -1: must be greater than 0``), when Django starts.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from querywatch.capture.recorder import RELEASE_ENV
from querywatch.config import (
    SETTINGS,
    Config,
    _flag,
    _positive_float,
    _positive_int,
    load_config,
    setting,
)
from querywatch.errors import ConfigError

SOURCE = "settings.QUERYWATCH"


@dataclass(frozen=True, slots=True)
class DjangoKey:
    default: Any
    help: str
    kind: Callable[[Any], Any]


DJANGO_KEYS: dict[str, DjangoKey] = {
    "enabled": DjangoKey(
        True, "Capture statements and requests (False: the app does nothing).", _flag
    ),
    "release": DjangoKey(
        None,
        f"The release this process runs (version, git sha); ${RELEASE_ENV} wins over it.",
        lambda v: str(v).strip(),
    ),
    "flush_interval": DjangoKey(
        5.0, "Seconds between writes of what was captured to the store.", _positive_float
    ),
    "repeat_threshold": DjangoKey(
        5,
        "Runs of one statement in one request that count as a repeat (the N+1 signal).",
        _positive_int,
    ),
}


@dataclass(frozen=True, slots=True)
class DjangoSettings:
    """What the app runs with: querywatch's settings and the Django-only keys."""

    config: Config
    enabled: bool = True
    release: str = ""
    flush_interval: float = 5.0
    repeat_threshold: int = 5


def _convert(key: str, value: Any, kind: Callable[[Any], Any], secret: bool) -> Any:
    try:
        return None if value is None else kind(value)
    except (TypeError, ValueError, OverflowError) as exc:
        reason = str(exc) if str(exc).startswith("must") else "must be a number"
        shown = "***" if secret else repr(value)
        raise ConfigError(f"[{key!r}] = {shown}: {reason}", source=SOURCE, setting=key) from exc


def read_settings(
    raw: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> DjangoSettings:
    """Resolve ``raw`` (default ``django.conf.settings.QUERYWATCH``) over the environment,
    ``querywatch.toml`` and the defaults."""
    if raw is None:
        from django.conf import settings

        raw = getattr(settings, "QUERYWATCH", None) or {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"must be a dict, not {type(raw).__name__}", source=SOURCE)
    environ = os.environ if environ is None else environ
    known = [s.name for s in SETTINGS] + list(DJANGO_KEYS)
    for key in raw:
        if key not in known:
            raise ConfigError(
                f"unknown key {key!r} (known: {', '.join(known)})", source=SOURCE, setting=str(key)
            )
    base = load_config({}, environ=environ)
    values = dict(base)
    origins = dict(base.origins)
    extra: dict[str, Any] = {}
    for key, value in raw.items():
        if key in DJANGO_KEYS:
            if value is not None:
                extra[key] = _convert(key, value, DJANGO_KEYS[key].kind, secret=False)
            continue
        s = setting(key)
        if origins.get(key) == s.env:  # the environment wins
            continue
        values[key] = _convert(key, value, s.kind, s.secret)
        origins[key] = f"{SOURCE}[{key!r}]"
    release = environ.get(RELEASE_ENV, "").strip() or extra.get("release") or ""
    return DjangoSettings(
        config=Config(values, origins, base.runbook, base.source),
        enabled=extra.get("enabled", DJANGO_KEYS["enabled"].default),
        release=release,
        flush_interval=extra.get("flush_interval", DJANGO_KEYS["flush_interval"].default),
        repeat_threshold=extra.get("repeat_threshold", DJANGO_KEYS["repeat_threshold"].default),
    )
