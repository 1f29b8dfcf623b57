"""Send each alert to every sink, once: dedup, re-notify, and a record for the incident timeline.

The agent calls :meth:`Notifier.notify` every cycle for every open problem; the notifier decides
what goes out. Per sink and per alert key it remembers what it last delivered, so a page is not
repeated before ``renotify_s``, a changed severity or a resolve goes out at once, a sink that failed
is tried again next cycle, and one broken sink never stops the others. The state serializes to JSON
so a restarted agent does not page everyone again. With a ``base_url`` (the dashboard's address)
every alert links to its page: ``<base_url>/incidents/<id>``, or the overview.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

from querywatch.config import DEFAULT_RENOTIFY_S
from querywatch.dsn import redact
from querywatch.errors import StoreError
from querywatch.respond.alerts import Alert
from querywatch.respond.sinks import AlertSink, SinkError

STATE_VERSION = 1
# Keys whose every sink saw "resolved" are forgotten after this long, so the state stays small.
FORGET_RESOLVED_S = 7 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class Delivery:
    """What one :meth:`Notifier.notify` did: for an "alerted" timeline event."""

    at: float
    alert: Alert
    succeeded: tuple[str, ...]
    failed: tuple[tuple[str, str], ...]  # (sink name, one-line error)

    @property
    def ok(self) -> bool:
        return bool(self.succeeded) and not self.failed

    @property
    def message(self) -> str:
        parts = []
        if self.succeeded:
            parts.append(f"{self.alert.severity} alert sent to {', '.join(self.succeeded)}")
        parts.extend(error for _, error in self.failed)
        return "; ".join(parts)

    @property
    def data(self) -> dict[str, Any]:
        return {
            "key": self.alert.key,
            "kind": self.alert.kind,
            "severity": self.alert.severity,
            "sinks": list(self.succeeded),
            "failed": {name: error for name, error in self.failed},
        }


@dataclass(slots=True)
class _Sent:
    at: float
    severity: str
    kind: str


@dataclass(slots=True)
class _State:
    by_key: dict[str, dict[str, _Sent]] = field(default_factory=dict)


class Notifier:
    """Fan an alert out to the sinks, holding back repeats."""

    def __init__(
        self,
        sinks: Sequence[AlertSink],
        *,
        renotify_s: float = DEFAULT_RENOTIFY_S,
        clock: Callable[[], float] = time.time,
        base_url: str | None = None,
    ):
        self.sinks = tuple(sinks)
        self.names = _unique_names(self.sinks)
        self.renotify_s = renotify_s
        self.clock = clock
        self.base_url = base_url.rstrip("/") if base_url else None
        self.deliveries: list[Delivery] = []
        self._state = _State()

    def notify(self, alert: Alert) -> bool:
        """Send ``alert`` to every sink it is due at; True when any sink was tried."""
        if self.base_url and alert.url is None:
            alert = replace(alert, url=page_url(self.base_url, alert.incident_id))
        now = self.clock()
        sent = self._state.by_key.setdefault(alert.key, {})
        due = [
            (name, sink)
            for name, sink in zip(self.names, self.sinks, strict=True)
            if self._is_due(alert, sent.get(name), sink, now)
        ]
        if not due:
            return False
        succeeded: list[str] = []
        failed: list[tuple[str, str]] = []
        for name, sink in due:
            try:
                sink.send(alert)
            except SinkError as err:
                failed.append((name, str(err)))
                continue
            except Exception as err:  # a broken sink must not silence the others
                failed.append((name, redact(f"{name}: {type(err).__name__}: {err}")))
                continue
            succeeded.append(name)
            sent[name] = _Sent(now, alert.severity, alert.kind)
        self.deliveries.append(Delivery(now, alert, tuple(succeeded), tuple(failed)))
        self._forget_old(now)
        return True

    def take_deliveries(self) -> list[Delivery]:
        """Deliveries since the last call, for the caller to append "alerted" timeline events."""
        taken, self.deliveries = self.deliveries, []
        return taken

    def forget(self, key: str) -> None:
        self._state.by_key.pop(key, None)

    def _is_due(self, alert: Alert, last: _Sent | None, sink: AlertSink, now: float) -> bool:
        if last is None:
            return True
        if alert.kind == "resolved":
            return last.kind != "resolved"  # a resolve goes out once, at once
        if last.kind != alert.kind or last.severity != alert.severity:
            return True
        renotify = getattr(sink, "renotify_s", None)
        interval = self.renotify_s if renotify is None else min(float(renotify), self.renotify_s)
        return now - last.at >= interval

    def _forget_old(self, now: float) -> None:
        stale = [
            key
            for key, sinks in self._state.by_key.items()
            if sinks
            and all(s.kind == "resolved" and now - s.at > FORGET_RESOLVED_S for s in sinks.values())
        ]
        for key in stale:
            del self._state.by_key[key]

    def to_json(self) -> str:
        """The dedup state (not the sinks): the caller keeps it with ``store.set_state``."""
        return json.dumps(
            {
                "version": STATE_VERSION,
                "sent": {
                    key: {
                        name: {"at": s.at, "severity": s.severity, "kind": s.kind}
                        for name, s in sinks.items()
                    }
                    for key, sinks in self._state.by_key.items()
                    if sinks
                },
            },
            sort_keys=True,
        )

    def load_json(self, text: str) -> None:
        """Restore state saved by :meth:`to_json` (from an earlier run of the agent)."""
        try:
            data = json.loads(text)
            if data.get("version") != STATE_VERSION:
                raise ValueError(f"unknown version {data.get('version')!r}")
            state = _State(
                {
                    str(key): {
                        str(name): _Sent(float(s["at"]), str(s["severity"]), str(s["kind"]))
                        for name, s in sinks.items()
                    }
                    for key, sinks in data["sent"].items()
                }
            )
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            raise StoreError(f"notifier state is unreadable: {err}") from err
        self._state = state

    @classmethod
    def from_json(
        cls,
        text: str,
        sinks: Sequence[AlertSink],
        *,
        renotify_s: float = DEFAULT_RENOTIFY_S,
        clock: Callable[[], float] = time.time,
        base_url: str | None = None,
    ) -> Notifier:
        notifier = cls(sinks, renotify_s=renotify_s, clock=clock, base_url=base_url)
        notifier.load_json(text)
        return notifier


def page_url(base_url: str, incident_id: str | None) -> str:
    """The dashboard page an alert links to: its incident's, or the overview."""
    if incident_id is None:
        return f"{base_url}/"
    return f"{base_url}/incidents/{quote(incident_id, safe='')}"


def sink_name(sink: AlertSink) -> str:
    name = getattr(sink, "name", None)
    return name if isinstance(name, str) and name else type(sink).__name__


def _unique_names(sinks: Sequence[AlertSink]) -> tuple[str, ...]:
    """Stable names for the state: "webhook", "webhook#2" when a kind is configured twice."""
    counts: dict[str, int] = {}
    names = []
    for sink in sinks:
        base = sink_name(sink)
        counts[base] = counts.get(base, 0) + 1
        names.append(base if counts[base] == 1 else f"{base}#{counts[base]}")
    return tuple(names)
