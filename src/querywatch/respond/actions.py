"""Running one response action: a command, a webhook, or a Python callable.

A rollback and a runbook step are both "run this, with these values, for at most this long, and
tell me what happened". The guards (dry run, once per deploy, cooldown…) are
:mod:`querywatch.respond.guards`, applied by :mod:`querywatch.respond.rollback` and
:class:`querywatch.respond.runbook.Runbook`; this module only runs the thing and reports an
:class:`ActionOutcome`, never raising for a command that fails.

Commands are split with :func:`shlex.split` first and each argument is rendered on its own, then
run without a shell: a version string cannot inject a second command, however it is spelled. Nor
can it become an option: a value starting with ``-`` is refused before it fills a template
(``git ls-remote {previous_version}`` with ``--upload-pack=…`` would run a program).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shlex
import signal
import string
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, Protocol
from urllib.parse import unquote, urlsplit, urlunsplit

from querywatch.dsn import redact
from querywatch.errors import ConfigError, QuerywatchError
from querywatch.respond import egress
from querywatch.respond.sinks import check_url, display_url

#: The values a command template or a webhook payload can use.
PLACEHOLDERS = ("version", "previous_version", "deploy_id", "environment", "incident", "commit")
#: Characters of output kept for the timeline: the end, where errors are.
OUTPUT_TAIL = 4000
#: After the timeout, the process group gets SIGTERM, then SIGKILL this much later.
KILL_GRACE_S = 2.0
#: After the command exits, how long to wait for the rest of its output. A deploy script may
#: leave a server running in the background that still holds the output pipe; it is not waited
#: for, and not killed.
OUTPUT_GRACE_S = 1.0
USER_AGENT = "querywatch-respond/1"

OutcomeStatus = Literal["ok", "failed", "timeout"]


class MissingValue(QuerywatchError):
    """A template names a value this incident does not have (no deploy, no commit…)."""

    guard = "missing_value"  # the name a refusal gets on the timeline


class UnsafeValue(MissingValue):
    """A value would reach a command as an option (it starts with ``-``): refused like a
    missing one, since the command cannot be run with it."""

    guard = "unsafe_value"


@dataclass(frozen=True, slots=True)
class ActionContext:
    """The values an action is run with; ``None`` where the incident does not know one.

    ``extra`` adds values an action of another kind names (a canary's ``{release}`` and
    ``{weight}``), for templates built with those placeholders."""

    incident: str
    version: str | None = None  # the bad version (the deploy being rolled back)
    previous_version: str | None = None  # the version to go back to
    deploy_id: str | None = None
    environment: str | None = None
    commit: str | None = None
    extra: tuple[tuple[str, str], ...] = ()

    def values(self) -> dict[str, str | None]:
        return {**{name: getattr(self, name) for name in PLACEHOLDERS}, **dict(self.extra)}


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    """What running an action did. ``output`` is the tail of stdout+stderr (or the HTTP body)."""

    ok: bool
    exit_code: int | None
    output: str
    duration_s: float
    timed_out: bool = False
    error: str | None = None  # one line: why it failed, when it did

    @property
    def status(self) -> OutcomeStatus:
        if self.timed_out:
            return "timeout"
        return "ok" if self.ok else "failed"


class Action(Protocol):
    """Something a rollback or runbook step runs."""

    def describe(self, context: ActionContext | None = None) -> str:
        """What would run, for messages and dry runs (rendered when a context is given)."""

    def run(self, context: ActionContext, timeout_s: float) -> ActionOutcome: ...


def tail(text: str, limit: int = OUTPUT_TAIL) -> str:
    """The last ``limit`` characters, passwords redacted (output may echo a DSN)."""
    text = redact(text)
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]


# -- commands -------------------------------------------------------------------------------------


def _fields(
    arg: str, *, setting: str, source: str | None, known: Sequence[str] = PLACEHOLDERS
) -> list[str]:
    """The placeholder names in one argument; anything but a known plain name is an error."""
    names = []
    try:
        parsed = list(string.Formatter().parse(arg))
    except ValueError as exc:
        raise ConfigError(
            f"{setting}: bad placeholder in {arg!r}: {exc} (write {{{{ and }}}} for braces)",
            source=source,
            setting=setting,
        ) from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in known or spec or conversion:
            shown = (
                "{"
                + name
                + (f"!{conversion}" if conversion else "")
                + (f":{spec}" if spec else "")
                + "}"
            )
            raise ConfigError(
                f"{setting}: unknown placeholder {shown} in {arg!r} "
                f"(known: {', '.join('{' + p + '}' for p in known)})",
                source=source,
                setting=setting,
            )
        names.append(name)
    return names


class CommandAction:
    """A command template such as ``./deploy.sh {previous_version}``, run without a shell.

    The command gets its own process group, so a timeout kills it and everything it started
    (a shell script's children too), not just the first process.
    """

    def __init__(
        self,
        template: str,
        *,
        setting: str = "rollback_command",
        source: str | None = None,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        placeholders: Sequence[str] = PLACEHOLDERS,
    ) -> None:
        self.template = template
        self.setting = setting
        self.cwd = cwd
        self.env = dict(env) if env is not None else None
        try:
            self.argv = shlex.split(template)
        except ValueError as exc:
            raise ConfigError(
                f"{setting}: cannot split {template!r}: {exc}", source=source, setting=setting
            ) from None
        if not self.argv:
            raise ConfigError(f"{setting}: the command is empty", source=source, setting=setting)
        self.placeholders = tuple(
            dict.fromkeys(
                n
                for arg in self.argv
                for n in _fields(arg, setting=setting, source=source, known=placeholders)
            )
        )

    def render(self, context: ActionContext) -> list[str]:
        """The argument vector with this context's values; MissingValue if one is unknown,
        UnsafeValue if one starts with ``-``."""
        values = context.values()
        missing = [name for name in self.placeholders if not values.get(name)]
        if missing:
            raise MissingValue(
                f"{self.setting} needs {{{missing[0]}}}, which incident {context.incident} does "
                "not have" + (" (it names no deploy)" if context.deploy_id is None else "")
            )
        for name in self.placeholders:
            value = values[name] or ""
            if value.startswith("-"):
                shown = value[:60].encode("unicode_escape").decode("ascii")
                raise UnsafeValue(
                    f"{self.setting}: refusing to run with {{{name}}} = '{shown}': a value "
                    "starting with '-' would be read as an option"
                )
        return [arg.format_map(values) for arg in self.argv]

    def describe(self, context: ActionContext | None = None) -> str:
        if context is None:
            return self.template
        return shlex.join(self.render(context))

    def run(self, context: ActionContext, timeout_s: float) -> ActionOutcome:
        argv = self.render(context)
        started = time.monotonic()
        env = None if self.env is None else {**os.environ, **self.env}
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env=env,
                start_new_session=True,  # its own process group, killed as a whole on timeout
            )
        except OSError as exc:
            reason = exc.strerror or str(exc)
            return ActionOutcome(
                False,
                None,
                "",
                time.monotonic() - started,
                error=f"cannot run {argv[0]}: {reason.lower()}",
            )
        assert process.stdout is not None
        reader = _Reader(process.stdout)
        timed_out = False
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(process)
        finally:
            reader.join(OUTPUT_GRACE_S if not timed_out else KILL_GRACE_S)
        duration = time.monotonic() - started
        code = process.returncode
        output = tail(reader.text())
        if timed_out:
            return ActionOutcome(
                False,
                code,
                output,
                duration,
                timed_out=True,
                error=f"{argv[0]} did not finish within {timeout_s:g} s and was killed",
            )
        if code != 0:
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
            return ActionOutcome(False, code, output, duration, error=f"{argv[0]} {how}")
        return ActionOutcome(True, code, output, duration)


class _Reader:
    """Reads a pipe on a thread, keeping a bounded tail, so a chatty command never blocks."""

    def __init__(self, pipe: IO[bytes]) -> None:
        self._pipe = pipe
        self._chunks: list[bytes] = []
        self._size = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, name="querywatch-action", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            while chunk := os.read(self._pipe.fileno(), 65536):
                with self._lock:
                    self._chunks.append(chunk)
                    self._size += len(chunk)
                    while self._size - len(self._chunks[0]) > 4 * OUTPUT_TAIL:
                        self._size -= len(self._chunks.pop(0))
        with contextlib.suppress(OSError):
            self._pipe.close()

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)

    def text(self) -> str:
        with self._lock:
            data = b"".join(self._chunks)
        return data.decode("utf-8", "replace")


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the whole process group, then SIGKILL it if it is still there after a grace."""
    for sig, wait_s in ((signal.SIGTERM, KILL_GRACE_S), (signal.SIGKILL, KILL_GRACE_S)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue
        if sig == signal.SIGTERM:
            # The leader is gone; anything it started in the group goes too.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        return


# -- webhooks -------------------------------------------------------------------------------------


class WebhookAction:
    """POST the action's values as JSON; any 2xx answer is success. Never retried: a rollback
    request delivered twice could roll back twice. Redirects are not followed, and link-local or
    metadata addresses are refused unless ``allow_link_local`` (see
    :mod:`querywatch.respond.egress`)."""

    def __init__(
        self,
        url: str,
        *,
        name: str = "rollback",
        setting: str = "rollback_webhook_url",
        allow_link_local: bool = False,
    ) -> None:
        check_url(url, setting, allow_link_local=allow_link_local)
        self.url, self._headers = _credentials_to_header(url)
        self.name = name
        self.shown_url = display_url(url)
        self._opener = egress.opener(allow_link_local=allow_link_local)

    def describe(self, context: ActionContext | None = None) -> str:
        return f"POST {self.shown_url}"

    def payload(self, context: ActionContext) -> dict[str, Any]:
        return {"action": self.name, **context.values()}

    def run(self, context: ActionContext, timeout_s: float) -> ActionOutcome:
        body = json.dumps(self.payload(context)).encode()
        request = urllib.request.Request(
            self.url,
            data=body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                **self._headers,
            },
            method="POST",
        )
        started = time.monotonic()
        try:
            with self._opener.open(request, timeout=timeout_s) as response:
                text = response.read(64 * 1024).decode("utf-8", "replace")
                status = int(response.status)
        except urllib.error.HTTPError as err:
            with err:
                text = _read_error(err)
            reason = f"POST {self.shown_url} answered HTTP {err.code} {err.reason}"
            if 300 <= err.code < 400:
                reason += " (redirects are not followed: configure the final URL)"
            return ActionOutcome(
                False, err.code, tail(text), time.monotonic() - started, error=redact(reason)
            )
        except (TimeoutError, urllib.error.URLError, OSError) as err:
            cause = err.reason if isinstance(err, urllib.error.URLError) else err
            timed_out = isinstance(cause, TimeoutError)
            if isinstance(cause, egress.BlockedTarget):
                why = str(cause)
            elif timed_out:
                why = f"no answer within {timeout_s:g} s"
            else:
                why = str(getattr(cause, "strerror", None) or cause or type(cause).__name__)
                why = why.lower()
            return ActionOutcome(
                False,
                None,
                "",
                time.monotonic() - started,
                timed_out=timed_out,
                error=redact(f"POST {self.shown_url} failed: {why}"),
            )
        duration = time.monotonic() - started
        if not 200 <= status < 300:
            return ActionOutcome(
                False,
                status,
                tail(text),
                duration,
                error=f"POST {self.shown_url} answered HTTP {status}",
            )
        return ActionOutcome(True, status, tail(text), duration)


def _credentials_to_header(url: str) -> tuple[str, dict[str, str]]:
    """``https://user:pass@host/…`` as the URL without them plus a Basic Authorization header
    (urllib does not send credentials written in a URL)."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, {}
    host = parts.hostname or ""
    netloc = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    user = unquote(parts.username)
    password = unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return urlunsplit(parts._replace(netloc=netloc)), {"Authorization": f"Basic {token}"}


def _read_error(err: urllib.error.HTTPError) -> str:
    try:
        return err.read(64 * 1024).decode("utf-8", "replace")
    except OSError:
        return ""


# -- Python callables -----------------------------------------------------------------------------


class CallableAction:
    """A Python function as an action (the demo rolls back its in-process deployer this way).

    The function gets the :class:`ActionContext` and may return text for the timeline; raising
    means failure. It runs on a thread: after the timeout the outcome says so, but a thread
    cannot be killed, so the function should honour its own deadline.
    """

    def __init__(self, function: Callable[[ActionContext], str | None], *, label: str) -> None:
        self.function = function
        self.label = label

    def describe(self, context: ActionContext | None = None) -> str:
        return self.label

    def run(self, context: ActionContext, timeout_s: float) -> ActionOutcome:
        result: dict[str, Any] = {}

        def call() -> None:
            try:
                result["output"] = self.function(context)
            except Exception as exc:  # the outcome says what went wrong; the agent goes on
                result["error"] = f"{type(exc).__name__}: {exc}"

        started = time.monotonic()
        worker = threading.Thread(target=call, name="querywatch-action", daemon=True)
        worker.start()
        worker.join(timeout_s)
        duration = time.monotonic() - started
        if worker.is_alive():
            return ActionOutcome(
                False,
                None,
                "",
                duration,
                timed_out=True,
                error=f"{self.label} did not finish within {timeout_s:g} s",
            )
        if "error" in result:
            message = " ".join(redact(result["error"]).split())
            return ActionOutcome(False, None, tail(message), duration, error=message)
        output = result.get("output")
        return ActionOutcome(True, None, tail("" if output is None else str(output)), duration)
