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

from querywatch.config import (
    DEFAULT_ENVIRONMENT,
    DEFAULT_RECOVERY_CHECK_S,
    DEFAULT_ROLLBACK_COOLDOWN_S,
    DEFAULT_ROLLBACK_TIMEOUT_S,
    DEFAULT_ROLLBACK_WINDOW_S,
)
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

    environment: str = DEFAULT_ENVIRONMENT
    auto: bool = False
    dry_run: bool = False
    cooldown_s: float = DEFAULT_ROLLBACK_COOLDOWN_S
    window_s: float = DEFAULT_ROLLBACK_WINDOW_S
    timeout_s: float = DEFAULT_ROLLBACK_TIMEOUT_S
    recovery_check_s: float = DEFAULT_RECOVERY_CHECK_S
    recovery_tolerance: float = RECOVERY_TOLERANCE

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> RollbackSettings:
        return cls(
            environment=str(cfg.get("environment") or DEFAULT_ENVIRONMENT),
            auto=bool(cfg.get("rollback_auto", False)),
            dry_run=bool(cfg.get("rollback_dry_run", False)),
            cooldown_s=float(cfg.get("rollback_cooldown_s", DEFAULT_ROLLBACK_COOLDOWN_S)),
            window_s=float(cfg.get("rollback_window_s", DEFAULT_ROLLBACK_WINDOW_S)),
            timeout_s=float(cfg.get("rollback_timeout_s", DEFAULT_ROLLBACK_TIMEOUT_S)),
            recovery_check_s=float(cfg.get("recovery_check_s", DEFAULT_RECOVERY_CHECK_S)),
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
