"""Alerting as configured: the sinks and the CODEOWNERS file the settings name."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console

from querywatch.respond.egress import ALLOW_SETTING
from querywatch.respond.notifier import Notifier
from querywatch.respond.routing import CodeOwners
from querywatch.respond.sinks import (
    AlertmanagerSink,
    AlertSink,
    HttpPoster,
    JsonWebhookSink,
    SlackWebhookSink,
    TerminalSink,
)


def notifier_from_config(cfg: Mapping[str, Any], console: Console | None = None) -> Notifier:
    """The terminal always hears; each configured webhook too."""
    sinks: list[AlertSink] = [TerminalSink(console)]
    http = HttpPoster(allow_link_local=bool(cfg.get(ALLOW_SETTING)))
    if cfg.get("alert_webhook_url"):
        sinks.append(JsonWebhookSink(cfg["alert_webhook_url"], http=http))
    if cfg.get("alert_slack_url"):
        sinks.append(SlackWebhookSink(cfg["alert_slack_url"], http=http))
    if cfg.get("alert_alertmanager_url"):
        sinks.append(AlertmanagerSink(cfg["alert_alertmanager_url"], http=http))
    return Notifier(
        sinks,
        renotify_s=float(cfg.get("alert_renotify_s") or 3600.0),
        base_url=cfg.get("base_url"),
    )


def codeowners_from_config(cfg: Mapping[str, Any], repo_root: Path) -> CodeOwners | None:
    """The configured CODEOWNERS file, else the repository's own, else none."""
    path = cfg.get("alert_codeowners")
    return CodeOwners.load(path) if path else CodeOwners.find(repo_root)
