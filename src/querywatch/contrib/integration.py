"""What every integration shares: its settings, read from the framework's configuration, and
its recorder with the handles it instrumented.

Flask's ``app.config["QUERYWATCH_STORE"]`` or a keyword argument are one more layer over
querywatch's settings: they win over the environment and ``querywatch.toml``, and are checked by
the same rules, so a wrong value is the same one-line ``ConfigError``. Three options exist only
for capture and are not settings: ``release`` (default ``$QUERYWATCH_RELEASE``),
``repeat_threshold`` (runs of one statement in one request that count as a repeat, default 5) and
``flush_interval`` (seconds between writes to the store, default 5).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from querywatch.capture.instrument import Instrumentation, instrument
from querywatch.capture.recorder import Recorder
from querywatch.config import SETTINGS, load_config
from querywatch.errors import ConfigError

_SETTINGS = frozenset(s.name for s in SETTINGS)


def _count(value: Any) -> int:
    if isinstance(value, bool) or int(value) != float(value) or int(value) < 1:
        raise ValueError("must be a whole number, at least 1")
    return int(value)


def _seconds(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("must be a number")
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ValueError("must be a number of seconds greater than 0")
    return number


CAPTURE_OPTIONS: dict[str, Callable[[Any], Any]] = {
    "release": lambda value: str(value).strip(),
    "repeat_threshold": _count,
    "flush_interval": _seconds,
}


class CaptureOptions(TypedDict, total=False):
    """The keyword options of an integration that has no configuration of its own."""

    store: str
    slo_ms: float
    release_header: str
    release: str
    repeat_threshold: int
    flush_interval: float


@dataclass(frozen=True, slots=True)
class CaptureSettings:
    """The values the recorder and the middleware are built from."""

    store: str
    slo_ms: float
    release_header: str
    """``""``: read no release header."""
    release: str | None = None
    """``None``: the recorder reads ``$QUERYWATCH_RELEASE``."""
    repeat_threshold: int = 5
    flush_interval: float = 5.0

    def recorder(self) -> Recorder:
        """A recorder writing to the store these settings name."""
        return Recorder(
            self.store,
            flush_interval=self.flush_interval,
            repeat_threshold=self.repeat_threshold,
            release=self.release,
        )


def capture_settings(
    values: Mapping[str, Any],
    *,
    source: str,
    name_of: Callable[[str], str] = str,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> CaptureSettings:
    """Settings (``store``, ``slo_ms``, ``release_header``, ...) and capture options from
    ``values`` (``None`` values are ignored), over the environment and the config file.
    ``source`` says where ``values`` came from (``app.config``) and ``name_of`` spells an option
    the way the user wrote it there (``slo_ms`` -> ``QUERYWATCH_SLO_MS``), for error messages."""
    given = {name: value for name, value in values.items() if value is not None}
    unknown = sorted(set(given) - _SETTINGS - set(CAPTURE_OPTIONS))
    if unknown:
        known = [*CAPTURE_OPTIONS, "store", "slo_ms", "release_header"]
        raise ConfigError(
            f"unknown option {name_of(unknown[0])} (known: {', '.join(map(name_of, known))},"
            " and every setting of docs/configuration.md)",
            source=source,
            setting=unknown[0],
        )
    options: dict[str, Any] = {}
    for name, kind in CAPTURE_OPTIONS.items():
        if name in given:
            value = given.pop(name)
            try:
                options[name] = kind(value)
            except (TypeError, ValueError, OverflowError) as exc:
                reason = str(exc) if str(exc).startswith("must") else "must be a number"
                raise ConfigError(
                    f"{name_of(name)} = {value!r}: {reason}", source=source, setting=name
                ) from exc
    try:
        config = load_config(given, environ=environ, cwd=cwd)
    except ConfigError as exc:
        bad = exc.setting
        if bad is not None and bad in given:
            shown = str(exc).split(f"{bad} = ", 1)[-1]  # "'abc': must be a number"
            raise ConfigError(f"{name_of(bad)} = {shown}", source=source, setting=bad) from exc
        raise
    return CaptureSettings(
        store=str(config["store"]),
        slo_ms=float(config["slo_ms"]),
        release_header=str(config["release_header"] or "").strip(),
        **options,
    )


class Integration:
    """What every integration holds: the settings, the recorder (its own unless one was passed
    in, e.g. a Flask app's shared with its Celery tasks) and the handles it instrumented."""

    def __init__(self, settings: CaptureSettings, recorder: Recorder | None = None) -> None:
        self.settings = settings
        self._owns_recorder = recorder is None
        self.recorder = recorder or settings.recorder()
        self.instrumentations: list[Instrumentation] = []

    def instrument(self, target: Any) -> Instrumentation:
        """Record the statements of an engine or connection into this recorder."""
        inst = instrument(target, recorder=self.recorder)
        self.instrumentations.append(inst)
        return inst

    def flush(self, timeout: float = 30.0) -> bool:
        """Write what was recorded so far to the store now; True when it took it all."""
        return self.recorder.flush(timeout)

    def close(self) -> None:
        """Stop recording the instrumented handles and flush (also happens at exit); the
        recorder is closed too unless it was passed in."""
        for inst in self.instrumentations:
            inst.close()
        self.instrumentations.clear()
        if self._owns_recorder:
            self.recorder.close()
        else:
            self.recorder.flush()
