"""What the configuration says about canary rollouts: the ``canary_*`` settings and their actions.

The weight and promote actions are command templates or webhooks built exactly as the rollback's
(:mod:`querywatch.respond.actions`: split first and run without a shell, a value starting with
``-`` refused, a timeout that kills the process group, webhooks under the egress rules), with
three more placeholders: ``{release}`` (the canary), ``{stable_release}`` and ``{weight}`` (a
percentage, ``0`` on abort). Read once, so a bad template stops ``canary start``, not an abort.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from querywatch.config import (
    DEFAULT_CANARY_FAIL_THRESHOLD,
    DEFAULT_CANARY_INTERVAL_S,
    DEFAULT_CANARY_STEPS,
    DEFAULT_CANARY_TIMEOUT_S,
    DEFAULT_ENVIRONMENT,
    DEFAULT_SLO_MS,
)
from querywatch.errors import ConfigError
from querywatch.respond.actions import PLACEHOLDERS, Action, CommandAction, WebhookAction
from querywatch.respond.canary_state import MAX_VERDICTS
from querywatch.respond.egress import ALLOW_SETTING

#: What a canary command template may name: the rollback's values and the canary's own.
CANARY_PLACEHOLDERS = (*PLACEHOLDERS, "release", "stable_release", "weight")

#: A release name: what QUERYWATCH_RELEASE, a git sha, an image tag or a pod-template hash look
#: like. It reaches commands as an argument, so nothing starting with '-' and no whitespace.
_RELEASE = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.:+/@-]{0,199}")


def parse_steps(text: str, setting: str = "canary_steps") -> tuple[float, ...]:
    """``"5,25,50,100"`` as rising percentages (the setting's validator already checked it; an
    option given on the command line is checked here)."""
    steps: list[float] = []
    for item in text.split(","):
        try:
            number = float(item.strip())
        except ValueError:
            raise ConfigError(
                f"{setting}: {item.strip()!r} is not a percentage (write e.g. 5,25,50,100)",
                setting=setting,
            ) from None
        if not 0 < number <= 100 or (steps and number <= steps[-1]):
            raise ConfigError(
                f"{setting}: {text!r} must be rising percentages above 0, at most 100",
                setting=setting,
            )
        steps.append(number)
    return tuple(steps)


def check_release(name: str, what: str) -> str:
    """A release name fit to reach a command as one argument, or a one-line error."""
    if not _RELEASE.fullmatch(name):
        shown = name[:60].encode("unicode_escape").decode("ascii")
        raise ConfigError(
            f"{what} '{shown}' is not a release name: letters, digits and . _ : + / @ - (not "
            "first), no spaces, at most 200 characters"
        )
    return name


@dataclass(frozen=True, slots=True)
class CanarySettings:
    """The canary settings of one environment."""

    environment: str = DEFAULT_ENVIRONMENT
    steps: tuple[float, ...] = parse_steps(DEFAULT_CANARY_STEPS)
    interval_s: float = DEFAULT_CANARY_INTERVAL_S
    timeout_s: float = DEFAULT_CANARY_TIMEOUT_S
    dry_run: bool = False
    slo_ms: float = DEFAULT_SLO_MS
    fail_threshold: int = DEFAULT_CANARY_FAIL_THRESHOLD

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> CanarySettings:
        threshold = int(cfg.get("canary_fail_threshold", DEFAULT_CANARY_FAIL_THRESHOLD))
        if threshold > MAX_VERDICTS:  # the state keeps that many verdicts: it could never abort
            raise ConfigError(
                f"canary_fail_threshold: {threshold} is more than the {MAX_VERDICTS} verdicts a "
                "rollout keeps; it would never abort (2 is the default)",
                source=getattr(cfg, "origins", {}).get("canary_fail_threshold"),
                setting="canary_fail_threshold",
            )
        return cls(
            environment=str(cfg.get("environment") or DEFAULT_ENVIRONMENT),
            steps=parse_steps(str(cfg.get("canary_steps") or DEFAULT_CANARY_STEPS)),
            interval_s=float(cfg.get("canary_interval_s", DEFAULT_CANARY_INTERVAL_S)),
            timeout_s=float(cfg.get("canary_timeout_s", DEFAULT_CANARY_TIMEOUT_S)),
            dry_run=bool(cfg.get("rollback_dry_run", False)),
            slo_ms=float(cfg.get("slo_ms", DEFAULT_SLO_MS)),
            fail_threshold=threshold,
        )


def canary_action_from_config(
    cfg: Mapping[str, Any], kind: str, cwd: Path | None = None
) -> Action | None:
    """The configured ``canary_<kind>_command`` or ``canary_<kind>_webhook_url`` (kind: weight or
    promote), or ``None``; both set is an error."""
    command_setting, url_setting = f"canary_{kind}_command", f"canary_{kind}_webhook_url"
    command, url = cfg.get(command_setting), cfg.get(url_setting)
    origins: Mapping[str, str] = getattr(cfg, "origins", {})
    if command and url:
        raise ConfigError(
            f"set {command_setting} or {url_setting}, not both: querywatch would not know which "
            f"one sets the canary's {kind}",
            source=origins.get(command_setting),
            setting=command_setting,
        )
    if command:
        return CommandAction(
            str(command),
            setting=command_setting,
            source=origins.get(command_setting),
            cwd=cwd,
            placeholders=CANARY_PLACEHOLDERS,
        )
    if url:
        return WebhookAction(
            str(url),
            name=f"canary_{kind}",
            setting=url_setting,
            allow_link_local=bool(cfg.get(ALLOW_SETTING)),
        )
    return None
