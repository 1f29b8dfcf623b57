"""Where alerts go. Each sink is one small class with one method, ``send(alert)``.

Adding a destination is adding a class; the notifier does not know what is behind ``send``. HTTP
sinks share one poster: a short timeout, one retry on a refused connection or a 5xx, no redirects
(a redirected POST silently turns into a GET), no link-local or metadata addresses (see
:mod:`querywatch.respond.egress`), and failures raised as a :class:`SinkError` of one line that
never shows a secret (webhook URLs are credentials: only ``scheme://host/…`` is shown).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit

from rich.console import Console
from rich.text import Text

from querywatch.dsn import redact
from querywatch.errors import ConfigError, QuerywatchError
from querywatch.respond import egress
from querywatch.respond.alerts import Alert
from querywatch.terminal import safe_text
from querywatch.timefmt import clock, rfc3339

USER_AGENT = "querywatch-alerts/1"


class SinkError(QuerywatchError):
    """An alert could not be delivered; the message is one line naming the sink and the reason."""

    def __init__(self, message: str, *, sink: str, url: str | None = None):
        self.sink = sink
        self.url = url  # already redacted
        super().__init__(message)


class AlertSink(Protocol):
    """One destination for alerts. ``send`` raises only :class:`SinkError`."""

    def send(self, alert: Alert) -> None: ...


def display_url(url: str, *, keep_path: bool = False) -> str:
    """A URL safe to print: no user info, no query; the path only when it is not a secret."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<invalid URL>"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    if keep_path:
        path = parts.path or "/"
        return redact(f"{parts.scheme}://{netloc}{path}") + ("?…" if parts.query else "")
    return f"{parts.scheme}://{netloc}/…"


def check_url(url: str, setting: str, *, allow_link_local: bool = False) -> None:
    """An http(s) URL with a host and a valid port, whose host is not a link-local, unspecified
    or metadata address (unless allowed), or a ConfigError naming the setting."""
    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        ok = False
    if not ok:
        raise ConfigError(
            f"{setting}: expected an http:// or https:// URL, got {display_url(url)}",
            setting=setting,
        )
    egress.check_host(parts.hostname or "", setting, allow_link_local=allow_link_local)


class HttpPoster:
    """POST JSON with a timeout and one retry. Injectable so tests and callers can tune it.

    ``allow_link_local`` (the ``webhook_allow_link_local`` setting) lets requests reach
    link-local and metadata addresses, which are refused after DNS resolution otherwise."""

    def __init__(
        self,
        *,
        timeout_s: float = 5.0,
        retry_delay_s: float = 0.5,
        allow_link_local: bool = False,
    ):
        self.timeout_s = timeout_s
        self.retry_delay_s = retry_delay_s
        self.allow_link_local = allow_link_local
        self.opener = egress.opener(allow_link_local=allow_link_local)

    def post_json(
        self,
        url: str,
        payload: Any,
        *,
        sink: str,
        shown_url: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        body = json.dumps(payload).encode()
        all_headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        all_headers.update(headers or {})
        reason = ""
        for attempt in (1, 2):
            retry, reason = self._attempt(url, body, all_headers)
            if not reason:
                return
            if not retry or attempt == 2:
                break
            time.sleep(self.retry_delay_s)
        message = redact(f"{sink}: POST {shown_url} failed: {reason}")
        raise SinkError(" ".join(message.split()), sink=sink, url=shown_url)

    def _attempt(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[bool, str]:
        """One POST: ``(worth retrying, reason)``; an empty reason means delivered."""
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with self.opener.open(request, timeout=self.timeout_s) as response:
                response.read()
            return False, ""
        except urllib.error.HTTPError as err:
            detail = _snippet(err)
            if 300 <= err.code < 400:
                detail = "redirects are not followed, configure the final URL"
            reason = f"HTTP {err.code} {err.reason}" + (f": {detail}" if detail else "")
            return err.code >= 500, reason
        except urllib.error.URLError as err:  # not connected: the request was not sent
            if isinstance(err.reason, egress.BlockedTarget):
                return False, str(err.reason)  # the same address next time: not worth a retry
            return True, _os_reason(err.reason, self.timeout_s)
        except TimeoutError:  # sent, no answer in time: a retry could deliver it twice
            return False, f"no response within {self.timeout_s:g} s"
        except ConnectionError as err:  # dropped before the response arrived
            return True, _os_reason(err, self.timeout_s)
        except OSError as err:
            return False, _os_reason(err, self.timeout_s)


def _snippet(err: urllib.error.HTTPError) -> str:
    try:
        data = err.read(300)
    except OSError:
        return ""
    finally:
        err.close()
    return " ".join(data.decode("utf-8", "replace").split())[:200]


def _os_reason(reason: object, timeout_s: float) -> str:
    if isinstance(reason, TimeoutError):
        return f"no connection within {timeout_s:g} s"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return str(reason) or type(reason).__name__


class TerminalSink:
    """Alerts as lines on the agent's terminal (stderr, so ``--json`` stdout stays clean)."""

    name = "terminal"
    _STYLE: ClassVar[dict[str, str]] = {
        "critical": "bold red",
        "warning": "bold yellow",
        "info": "bold blue",
    }

    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True, highlight=False)

    def send(self, alert: Alert) -> None:
        label, style = (
            ("RESOLVED", "bold green")
            if alert.resolved
            else (alert.severity.upper(), self._STYLE[alert.severity])
        )
        at = alert.ended_at if alert.ended_at is not None else alert.started_at
        # Titles and text hold SQL: shown as written (controls escaped, never read as markup).
        self.console.print(Text.assemble((label, style), f" {clock(at)} ", safe_text(alert.title)))
        self.console.print(Text.assemble("  ", safe_text(alert.text)))
        facts = [
            f"owners {' '.join(alert.owners)}" if alert.owners else "",
            f"incident {alert.incident_id}" if alert.incident_id else "",
            f"fingerprint {alert.fingerprint}" if alert.fingerprint else "",
            alert.url or "",
        ]
        if any(facts):
            facts_line = safe_text(" · ".join(f for f in facts if f), style="dim")
            self.console.print(Text.assemble("  ", facts_line))


class JsonWebhookSink:
    """POST :meth:`Alert.to_dict` as a JSON object: the integration point for anything else."""

    name = "webhook"

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str] | None = None,
        *,
        http: HttpPoster | None = None,
    ):
        self.http = http or HttpPoster()
        check_url(url, "alert_webhook_url", allow_link_local=self.http.allow_link_local)
        self.url = url
        self.headers = dict(headers or {})

    def send(self, alert: Alert) -> None:
        self.http.post_json(
            self.url,
            alert.to_dict(),
            sink=self.name,
            shown_url=display_url(self.url),
            headers=self.headers,
        )


def slack_payload(alert: Alert) -> dict[str, Any]:
    """An incoming-webhook message: ``text`` for notifications, ``blocks`` for the channel."""
    icon = (
        ":white_check_mark:"
        if alert.resolved
        else {
            "critical": ":red_circle:",
            "warning": ":large_orange_circle:",
            "info": ":information_source:",
        }[alert.severity]
    )
    label = "RESOLVED" if alert.resolved else alert.severity.upper()
    fields = [f"*Severity*\n{label}"]
    if alert.deploy_id:
        fields.append(f"*Deploy*\n{_slack(alert.deploy_id)}")
    if alert.owners:
        fields.append(f"*Owners*\n{_slack(' '.join(alert.owners))}")
    if alert.incident_id:
        fields.append(f"*Incident*\n{_slack(alert.incident_id)}")
    if alert.source:
        fields.append(f"*Source*\n{_slack(alert.source)}")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": alert.title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _slack(alert.text)[:3000]}},
        {
            "type": "section",
            "fields": [{"type": "mrkdwn", "text": f[:2000]} for f in fields[:10]],
        },
    ]
    if alert.normalized:
        sql = _slack(alert.normalized)[:2900]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"```{sql}```"}})
    context = [f"`{_slack(str(site))}`" for site in alert.call_sites[:5]]
    if alert.url:
        context.append(f"<{alert.url}|open in querywatch>")
    if context:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(context)}]}
        )
    return {
        "text": f"{icon} *{label}* {_slack(alert.title)}\n{_slack(alert.text)}",
        "blocks": blocks,
    }


def _slack(text: str) -> str:
    """Slack's mrkdwn needs only these three escaped; SQL is full of ``<`` and ``>``."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackWebhookSink:
    """A Slack incoming webhook. The URL is a credential: errors show only its host."""

    name = "slack"

    def __init__(self, url: str, *, http: HttpPoster | None = None):
        self.http = http or HttpPoster()
        check_url(url, "alert_slack_url", allow_link_local=self.http.allow_link_local)
        self.url = url

    def send(self, alert: Alert) -> None:
        self.http.post_json(
            self.url, slack_payload(alert), sink=self.name, shown_url=display_url(self.url)
        )


def alertmanager_payload(alert: Alert) -> list[dict[str, Any]]:
    """Alertmanager API v2: a list of alerts; identical labels make a resolve end the firing one."""
    labels = {
        "alertname": alert.alertname,
        "severity": alert.severity,
        "service": "querywatch",
        "incident": alert.incident_id,
        "source": alert.source,
        "fingerprint": alert.fingerprint,
        "deploy": alert.deploy_id,
        "owner": ",".join(alert.owners),
    }
    annotations = {
        "summary": alert.title,
        "description": alert.text,
        "query": alert.normalized,
        "call_sites": "; ".join(str(s) for s in alert.call_sites),
    }
    item: dict[str, Any] = {
        "labels": {k: v for k, v in labels.items() if v},
        "annotations": {k: v for k, v in annotations.items() if v},
        "startsAt": rfc3339(alert.started_at),
    }
    if alert.ended_at is not None:
        item["endsAt"] = rfc3339(alert.ended_at)
    if alert.url:
        item["generatorURL"] = alert.url
    return [item]


class AlertmanagerSink:
    """Hand alerts to an existing Alertmanager, which then groups, silences and routes them.

    Alertmanager ends a firing alert that is not re-sent within its ``resolve_timeout`` (5 min by
    default), so this sink asks the notifier to repeat firing alerts every ``renotify_s``.
    """

    name = "alertmanager"

    def __init__(self, url: str, *, renotify_s: float = 60.0, http: HttpPoster | None = None):
        self.http = http or HttpPoster()
        check_url(url, "alert_alertmanager_url", allow_link_local=self.http.allow_link_local)
        base = url.rstrip("/")
        self.url = base if base.endswith("/api/v2/alerts") else base + "/api/v2/alerts"
        self.renotify_s = renotify_s

    def send(self, alert: Alert) -> None:
        self.http.post_json(
            self.url,
            alertmanager_payload(alert),
            sink=self.name,
            shown_url=display_url(self.url, keep_path=True),
        )
