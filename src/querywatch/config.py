"""Settings are data: one table feeds the loader, `--help`, the docs and (later) the dashboard.

Precedence: command-line flags, then environment variables (QUERYWATCH_*), then `querywatch.toml`
(or `[tool.querywatch]` in pyproject.toml) in the working directory or the file given by --config.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from querywatch.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    default: Any
    help: str
    kind: Callable[[Any], Any] = str
    secret: bool = False

    @property
    def env(self) -> str:
        return "QUERYWATCH_" + self.name.upper()


def _finite(value: Any) -> float:
    """``value`` as a float, refusing NaN and infinity.

    NaN compares false with everything, so ``rollback_timeout_s = nan`` would mean "no timeout"
    and a NaN cooldown or window would make a guard refuse forever; ``inf`` (or ``1e400``, which
    reads as infinity) is no better.
    """
    if isinstance(value, bool):
        raise ValueError("must be a number")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("must be a finite number (not nan or infinity)")
    return number


def _positive_float(value: Any) -> float:
    number = _finite(value)
    if number <= 0:
        raise ValueError("must be greater than 0")
    return number


_NON_FINITE = ("nan", "inf", "infinity")


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _percent_steps(value: Any) -> str:
    """Canary weights: rising percentages above 0, at most 100 (``"5,25,50,100"`` or a TOML list),
    kept as the comma-separated text ``querywatch.respond.canary_settings`` parses."""
    items = value if isinstance(value, list) else str(value).split(",")
    steps: list[float] = []
    for item in items:
        text = str(item).strip()
        if not text:
            raise ValueError("must be percentages separated by commas, e.g. 5,25,50,100")
        number = _finite(item if isinstance(item, int | float) else text)
        if not 0 < number <= 100:
            raise ValueError(f"must be percentages above 0 and at most 100 (got {text})")
        if steps and number <= steps[-1]:
            raise ValueError(f"must rise from one step to the next ({text} after {steps[-1]:g})")
        steps.append(number)
    if not steps:
        raise ValueError("must name at least one percentage")
    return ",".join(f"{s:g}" for s in steps)


def _non_negative_float(value: Any) -> float:
    number = _finite(value)
    if number < 0:
        raise ValueError("must be 0 or more")
    return number


def _positive_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("must be a whole number")
    if isinstance(value, float):
        if not _finite(value).is_integer():
            raise ValueError("must be a whole number")
    elif isinstance(value, str) and value.strip().lower().lstrip("+-") in _NON_FINITE:
        raise ValueError("must be a finite number (not nan or infinity)")
    number = int(value)
    if number <= 0:
        raise ValueError("must be greater than 0")
    return number


#: The most fingerprint series /metrics may expose: beyond this a Prometheus server pays for
#: series nobody graphs, and the rest is summed into ``fingerprint="other"`` anyway.
MAX_METRICS_TOP_N = 1000


def _base_url(value: Any) -> str:
    """The dashboard's address as people open it: http(s), a host, maybe a path; no query,
    fragment or credentials (it is pasted into every alert). Kept without a trailing slash."""
    text = str(value).strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// address, e.g. https://qw.example.com")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError("must be a plain address: no query, fragment or credentials")
    return text.rstrip("/")


def _metrics_top_n(value: Any) -> int:
    number = _positive_int(value)
    if number > MAX_METRICS_TOP_N:
        raise ValueError(f"must be at most {MAX_METRICS_TOP_N} (each one is a Prometheus series)")
    return number


#: Defaults that library functions also use as keyword defaults: named once here and used in the
#: table below, so a function's default and the setting's cannot drift apart.
DEFAULT_INTERVAL_S = 10.0
DEFAULT_STATEMENT_TIMEOUT_MS = 5000
DEFAULT_SLO_MS = 1000.0
DEFAULT_RENOTIFY_S = 3600.0
DEFAULT_ENVIRONMENT = "production"
DEFAULT_ROLLBACK_COOLDOWN_S = 1800.0
DEFAULT_ROLLBACK_WINDOW_S = 3600.0
DEFAULT_ROLLBACK_TIMEOUT_S = 300.0
DEFAULT_RECOVERY_CHECK_S = 60.0
DEFAULT_CANARY_STEPS = "5,25,50,100"
DEFAULT_CANARY_INTERVAL_S = 60.0
DEFAULT_CANARY_TIMEOUT_S = 60.0
DEFAULT_CANARY_FAIL_THRESHOLD = 2
DEFAULT_METRICS_TOP_N = 50

SETTINGS: tuple[Setting, ...] = (
    Setting(
        "dsn", None, "PostgreSQL database to monitor (libpq URL or key=value string).", secret=True
    ),
    Setting(
        "store",
        ".querywatch/store.sqlite3",
        "Where querywatch keeps what it learns: a SQLite file path or a PostgreSQL URL.",
        secret=True,
    ),
    Setting(
        "interval",
        DEFAULT_INTERVAL_S,
        "Seconds between polls of the monitored database.",
        _positive_float,
    ),
    Setting(
        "statement_timeout_ms",
        DEFAULT_STATEMENT_TIMEOUT_MS,
        "statement_timeout for every query querywatch sends to the monitored database.",
        _positive_int,
    ),
    Setting(
        "retention_raw_hours",
        24,
        "How long 10-second windows are kept before rollup.",
        _positive_int,
    ),
    Setting("retention_minute_days", 14, "How long 1-minute windows are kept.", _positive_int),
    Setting(
        "slo_ms",
        DEFAULT_SLO_MS,
        "A request slower than this (ms) counts as failed for impact.",
        _positive_float,
    ),
    Setting(
        "release_header",
        None,
        "Request header naming the release that served a request, set by the load balancer "
        "(e.g. X-Querywatch-Release); the middleware records the request and its statements "
        "under it. Unset: no header is read (clients could name any release).",
    ),
    Setting("alert_webhook_url", None, "POST every alert as JSON to this URL.", secret=True),
    Setting("alert_slack_url", None, "Slack incoming-webhook URL for alerts.", secret=True),
    Setting(
        "alert_alertmanager_url",
        None,
        "Alertmanager base URL; alerts go to its /api/v2/alerts.",
        secret=True,
    ),
    Setting(
        "alert_codeowners",
        None,
        "CODEOWNERS file routing alerts by call site (default: CODEOWNERS, .github/ or docs/).",
    ),
    Setting(
        "alert_renotify_s",
        DEFAULT_RENOTIFY_S,
        "Seconds before the same alert is sent again.",
        _positive_float,
    ),
    Setting(
        "environment",
        DEFAULT_ENVIRONMENT,
        "Environment a deploy marker belongs to when none is given (deploy, deploys, serve).",
    ),
    Setting(
        "api_token",
        None,
        "Write token of `querywatch serve`: the API, /metrics, the dashboard and its actions "
        "(at least 16 characters).",
        secret=True,
    ),
    Setting(
        "api_read_token",
        None,
        "Read token of `querywatch serve`: GET on the API, /metrics and the dashboard's pages, "
        "no actions (at least 16 characters; Prometheus scrapes with it).",
        secret=True,
    ),
    Setting(
        "session_secret",
        None,
        "Key that signs dashboard session cookies, so sign-ins survive a restart and several "
        "servers share them (default: a random key per start).",
        secret=True,
    ),
    Setting(
        "base_url",
        None,
        "Where people open the dashboard, e.g. `https://querywatch.example.com`: alerts link to "
        "`<base_url>/incidents/<id>` (no link when unset).",
        _base_url,
    ),
    Setting(
        "rollback_command",
        None,
        "Command that rolls a deploy back, e.g. `./deploy.sh {previous_version}` (no shell).",
    ),
    Setting(
        "rollback_webhook_url",
        None,
        "POST a rollback request as JSON to this URL (instead of a command).",
        secret=True,
    ),
    Setting(
        "webhook_allow_link_local",
        False,
        "Let alert and rollback webhooks reach link-local (169.254.0.0/16, fe80::/10), "
        "unspecified (0.0.0.0, ::) and cloud metadata addresses, refused otherwise.",
        _flag,
    ),
    Setting(
        "rollback_auto",
        False,
        "Roll back by itself when an incident is proven to come from the latest deploy.",
        _flag,
    ),
    Setting(
        "rollback_dry_run",
        False,
        "Record what a rollback or runbook step would run, and run nothing.",
        _flag,
    ),
    Setting(
        "rollback_cooldown_s",
        DEFAULT_ROLLBACK_COOLDOWN_S,
        "Seconds after a rollback before another one may start in the same environment.",
        _non_negative_float,
    ),
    Setting(
        "rollback_window_s",
        DEFAULT_ROLLBACK_WINDOW_S,
        "Roll back only within this many seconds after the deploy finished.",
        _positive_float,
    ),
    Setting(
        "rollback_timeout_s",
        DEFAULT_ROLLBACK_TIMEOUT_S,
        "Seconds a rollback command or runbook step may run before it is killed.",
        _positive_float,
    ),
    Setting(
        "recovery_check_s",
        DEFAULT_RECOVERY_CHECK_S,
        "Seconds after a rollback before recovery is verified against the baseline.",
        _positive_float,
    ),
    Setting(
        "canary_steps",
        DEFAULT_CANARY_STEPS,
        "Traffic percentages a canary takes in turn, each held for canary_interval_s while its "
        "analysis passes; after the last one it is promoted.",
        _percent_steps,
    ),
    Setting(
        "canary_interval_s",
        DEFAULT_CANARY_INTERVAL_S,
        "Seconds a canary step is held before the analysis may move it on (a pass at its end).",
        _positive_float,
    ),
    Setting(
        "canary_fail_threshold",
        DEFAULT_CANARY_FAIL_THRESHOLD,
        "Failing canary verdicts in a row that abort a rollout (an inconclusive or passing one "
        "in between starts the count again); 1 aborts on the first.",
        _positive_int,
    ),
    Setting(
        "canary_weight_command",
        None,
        "Command that sets the canary's share of traffic, e.g. `./lb-weight.sh {release} "
        "{weight}` (no shell; {weight} is a percentage, 0 on abort).",
    ),
    Setting(
        "canary_weight_webhook_url",
        None,
        "POST the canary's new weight as JSON to this URL (instead of a command).",
        secret=True,
    ),
    Setting(
        "canary_promote_command",
        None,
        "Command that promotes a canary to every user, e.g. `./promote.sh {release}` (no shell).",
    ),
    Setting(
        "canary_promote_webhook_url",
        None,
        "POST a canary promotion as JSON to this URL (instead of a command).",
        secret=True,
    ),
    Setting(
        "canary_timeout_s",
        DEFAULT_CANARY_TIMEOUT_S,
        "Seconds a canary weight or promote command (or webhook) may run before it is killed.",
        _positive_float,
    ),
    Setting(
        "metrics_top_n",
        DEFAULT_METRICS_TOP_N,
        "Fingerprints /metrics exposes one by one (the most database time first, at most 1000); "
        'the rest are summed into one fingerprint="other" series.',
        _metrics_top_n,
    ),
)
_BY_NAME = {s.name: s for s in SETTINGS}


def setting(name: str) -> Setting:
    """The table's entry for ``name``: its default, help and environment variable."""
    return _BY_NAME[name]


CONFIG_FILE = "querywatch.toml"
#: Tables of the config file that are not settings: named runbook steps, and per-environment
#: overrides (``[environments.staging] rollback_command = …``) applied over the file's values.
RUNBOOK_TABLE = "runbook"
ENVIRONMENTS_TABLE = "environments"


class Config(Mapping[str, Any]):
    """Resolved settings, read like a dict; remembers where each value came from."""

    def __init__(
        self,
        values: dict[str, Any],
        origins: dict[str, str],
        runbook: Mapping[str, Any] | None = None,
        source: str = "",
    ) -> None:
        self._values = values
        self.origins = origins
        #: The config file's ``[runbook.<name>]`` tables, checked by :mod:`querywatch.respond`.
        self.runbook: Mapping[str, Any] = runbook or {}
        self.source = source  # the config file, for messages about its tables

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Any:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def _read_file(path: Path, *, table_in_pyproject: bool) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config file: {exc.strerror}", source=str(path)) from exc
    except UnicodeDecodeError as exc:
        # tomllib decodes the whole file as UTF-8 before parsing; TOML allows nothing else.
        raise ConfigError(
            f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}): "
            "TOML files must be saved as UTF-8",
            source=str(path),
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", source=str(path)) from exc
    if table_in_pyproject:
        tool = data.get("tool", {})
        table = tool.get("querywatch", {}) if isinstance(tool, dict) else {}
        if not isinstance(table, dict):
            raise ConfigError("[tool.querywatch] must be a table", source=str(path))
        data = table
    _refuse_non_finite(data, "", str(path))
    return data


def _refuse_non_finite(value: Any, key: str, source: str) -> None:
    """Refuse ``nan``/``inf`` anywhere in our tables (settings, [runbook.*], [environments.*]).

    Checked on the whole table rather than per setting so that the tables read elsewhere (a
    runbook step's ``timeout_s``) get the same rule without each reader remembering it.
    """
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(
            f"{key} = {value!r}: must be a finite number (not nan or infinity)",
            source=source,
            setting=key,
        )
    if isinstance(value, dict):
        for name, item in value.items():
            _refuse_non_finite(item, f"{key}.{name}" if key else str(name), source)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_non_finite(item, f"{key}[{index}]", source)


def find_config_file(cwd: Path) -> tuple[Path, bool] | None:
    """`querywatch.toml`, else a pyproject.toml with a [tool.querywatch] table, in ``cwd``."""
    own = cwd / CONFIG_FILE
    if own.exists():
        return own, False
    pyproject = cwd / "pyproject.toml"
    if pyproject.exists():
        try:
            text = pyproject.read_text(errors="replace")
        except OSError:
            return None
        if "[tool.querywatch]" in text:
            return pyproject, True
    return None


def load_config(
    flags: Mapping[str, Any] | None = None,
    *,
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Config:
    """Resolve every setting from flags, environment and config file, validating each value."""
    flags = flags or {}
    environ = os.environ if environ is None else environ
    file_values: dict[str, Any] = {}
    file_label = ""
    runbook: dict[str, Any] = {}
    if config_file is not None:
        if not config_file.exists():
            raise ConfigError("config file not found", source=str(config_file))
        found: tuple[Path, bool] | None = (config_file, config_file.name == "pyproject.toml")
    else:
        found = find_config_file(cwd or Path.cwd())
    if found:
        path, in_pyproject = found
        file_values = _read_file(path, table_in_pyproject=in_pyproject)
        file_label = str(path)
        runbook = _table(file_values.pop(RUNBOOK_TABLE, {}), RUNBOOK_TABLE, file_label)
        per_environment = _table(
            file_values.pop(ENVIRONMENTS_TABLE, {}), ENVIRONMENTS_TABLE, file_label
        )
        environment = _environment(flags, environ, file_values)
        overrides = _table(
            per_environment.get(environment, {}),
            f"{ENVIRONMENTS_TABLE}.{environment}",
            file_label,
        )
        file_values.update(overrides)
        unknown = sorted(set(file_values) - set(_BY_NAME))
        if unknown:
            raise ConfigError(
                f"unknown setting {unknown[0]!r} (known: {', '.join(_BY_NAME)})",
                source=file_label,
                setting=unknown[0],
            )

    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for setting in SETTINGS:
        if flags.get(setting.name) is not None:
            raw, origin = flags[setting.name], f"--{setting.name.replace('_', '-')}"
        elif setting.env in environ and environ[setting.env] != "":
            raw, origin = environ[setting.env], setting.env
        elif setting.name in file_values:
            raw, origin = file_values[setting.name], f"{file_label}: {setting.name}"
        else:
            values[setting.name], origins[setting.name] = setting.default, "default"
            continue
        try:
            values[setting.name] = None if raw is None else setting.kind(raw)
        except OverflowError as exc:  # a TOML integer too large for a float
            raise ConfigError(
                f"{setting.name} = {'***' if setting.secret else repr(raw)}: "
                "must be a finite number (this one is too large)",
                source=origin,
                setting=setting.name,
            ) from exc
        except (TypeError, ValueError) as exc:
            reason = str(exc) if str(exc).startswith("must") else "must be a number"
            raise ConfigError(
                f"{setting.name} = {'***' if setting.secret else repr(raw)}: {reason}",
                source=origin,
                setting=setting.name,
            ) from exc
        origins[setting.name] = origin
    return Config(values, origins, runbook, file_label)


def _table(value: Any, name: str, source: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"[{name}] must be a table", source=source, setting=name)
    return value


def _environment(
    flags: Mapping[str, Any], environ: Mapping[str, str], file_values: Mapping[str, Any]
) -> str:
    """The environment whose ``[environments.<name>]`` table overrides the file's settings."""
    if flags.get("environment") is not None:
        return str(flags["environment"])
    if environ.get("QUERYWATCH_ENVIRONMENT"):
        return environ["QUERYWATCH_ENVIRONMENT"]
    return str(file_values.get("environment", _BY_NAME["environment"].default))
