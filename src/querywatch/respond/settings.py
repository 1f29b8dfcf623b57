"""What the configuration says about responding in one environment: the ``rollback_*`` and
``recovery_check_s`` settings, and the rollback action (a command template or a webhook).

Read once, when the responder is built, so a bad template or a command and a webhook both set
stop the start with one line, not the first rollback.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from querywatch.errors import ConfigError
from querywatch.respond.actions import Action, CommandAction, WebhookAction
from querywatch.respond.egress import ALLOW_SETTING

#: "Back near baseline": a culprit query's (or an affected route's) mean latency after the
#: rollback is at most this many times its mean in the baseline before the deploy. Means move
#: by ±30% between quiet windows; a regression worth rolling back is several times slower.
RECOVERY_TOLERANCE = 1.5


@dataclass(frozen=True, slots=True)
class RollbackSettings:
    """The rollback settings of one environment (see the rollback_* settings)."""

    environment: str = "production"
    auto: bool = False
    dry_run: bool = False
    cooldown_s: float = 1800.0
    window_s: float = 3600.0
    timeout_s: float = 300.0
    recovery_check_s: float = 60.0
    recovery_tolerance: float = RECOVERY_TOLERANCE

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> RollbackSettings:
        return cls(
            environment=str(cfg.get("environment") or "production"),
            auto=bool(cfg.get("rollback_auto", False)),
            dry_run=bool(cfg.get("rollback_dry_run", False)),
            cooldown_s=float(cfg.get("rollback_cooldown_s", 1800.0)),
            window_s=float(cfg.get("rollback_window_s", 3600.0)),
            timeout_s=float(cfg.get("rollback_timeout_s", 300.0)),
            recovery_check_s=float(cfg.get("recovery_check_s", 60.0)),
        )


def rollback_action_from_config(cfg: Mapping[str, Any], cwd: Path | None = None) -> Action | None:
    """The configured rollback: a command template, a webhook, or ``None``."""
    command = cfg.get("rollback_command")
    url = cfg.get("rollback_webhook_url")
    origins: Mapping[str, str] = getattr(cfg, "origins", {})
    if command and url:
        raise ConfigError(
            "set rollback_command or rollback_webhook_url, not both: querywatch would not know "
            "which one rolls back",
            source=origins.get("rollback_command"),
            setting="rollback_command",
        )
    if command:
        return CommandAction(
            str(command),
            setting="rollback_command",
            source=origins.get("rollback_command"),
            cwd=cwd,
        )
    if url:
        return WebhookAction(str(url), allow_link_local=bool(cfg.get(ALLOW_SETTING)))
    return None
