"""Who may read and who may act on `querywatch serve`: tokens, session cookies, CSRF, origins.

Three ways in, one answer per request (:func:`grant_of`):

- ``Authorization: Bearer <token>``: the write token (``api_token``) reads and acts, the read
  token (``api_read_token``) only reads. CI, Prometheus and Flagger (token in its body) use this.
- the signed session cookie that ``/login`` sets after a person pastes a token; it remembers
  whether that was the read or the write token, and stops working when that token changes.
- ``--no-auth`` (loopback only): everyone reads and acts. The Host and Origin checks and CSRF
  still apply, since a browser on this machine is exactly what another site would abuse.

Pages call :func:`require_read` / :func:`require_write`, forms :func:`checked_form`; the app's
exception handlers turn :class:`NotSignedIn` into a redirect to ``/login`` for pages and a 401
envelope for ``/api`` and ``/metrics``, :class:`Forbidden` into a 403.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

import anyio
from starlette.datastructures import FormData
from starlette.requests import HTTPConnection, Request

from querywatch.errors import ConfigError

Level = Literal["none", "read", "write"]
MIN_TOKEN_LENGTH = 16
SESSION_COOKIE = "querywatch_session"
SESSION_SECONDS = 12 * 3600
CSRF_FIELD = "csrf"
FORM_TIMEOUT_S = 30.0
_MAKE_ONE = "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"


class NotSignedIn(Exception):
    """No credentials (or none that still hold): sign in, or send a bearer token."""


class Forbidden(Exception):
    """Credentials that do not allow this: a wrong token, the read token for an action, a form
    from another origin or without its CSRF token."""


@dataclass
class Access:
    """The server's tokens and session key. ``open`` is ``--no-auth``: everyone may act."""

    write_token: bytes | None
    read_token: bytes | None
    key: bytes
    open: bool = False
    #: Sessions signed out on this server, nonce -> expiry (a cookie stays signed until then).
    revoked: dict[str, int] = field(default_factory=dict)

    def level_of(self, token: str) -> Level:
        """What a token allows, compared in constant time against both tokens."""
        given = token.strip().encode()
        write = self.write_token is not None and hmac.compare_digest(given, self.write_token)
        read = self.read_token is not None and hmac.compare_digest(given, self.read_token)
        return "write" if write else "read" if read else "none"

    def token_tag(self, level: Level) -> str:
        """A keyed digest of the token behind ``level``: a session made with an old token no
        longer matches once the token is changed."""
        token = {"write": self.write_token, "read": self.read_token}.get(level)
        if token is None:
            return "-"
        return hmac.new(self.key, b"token|" + token, hashlib.sha256).hexdigest()[:16]

    def revoke(self, session: Session, now: float) -> None:
        """Sign a session out: its cookie no longer works here, even if someone kept a copy."""
        for nonce, expires in list(self.revoked.items()):
            if expires <= now:
                del self.revoked[nonce]
        self.revoked[session.nonce] = session.expires

    def sign(self, text: str) -> str:
        digest = hmac.new(self.key, text.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def access_for(
    token: str | None,
    *,
    read_token: str | None = None,
    session_secret: str | None = None,
    no_auth: bool = False,
    host: str,
) -> Access:
    """The server's access rules; refuses to serve without a token unless ``no_auth`` on loopback.

    Raises ConfigError with one actionable line (never the token) for a missing, short or
    conflicting token.
    """
    if no_auth:
        for name, value in (("api_token", token), ("api_read_token", read_token)):
            if value:
                raise ConfigError(
                    f"--no-auth conflicts with the configured {name}: drop one of them",
                    setting=name,
                )
        if not is_loopback(host):
            raise ConfigError(
                f"--no-auth serves on loopback only, not on {host}: set api_token to serve there",
                setting="api_token",
            )
    elif not token:
        raise ConfigError(
            "refusing to serve the API without a token: set QUERYWATCH_API_TOKEN (or api_token "
            "in querywatch.toml), or pass --no-auth to serve on loopback only",
            setting="api_token",
        )
    for name, value in (
        ("api_token", token),
        ("api_read_token", read_token),
        ("session_secret", session_secret),
    ):
        if value:
            _check_secret(name, value)
    if read_token and read_token == token:
        raise ConfigError(
            "api_read_token is the same as api_token: the read token must differ, or a reader "
            "could act",
            setting="api_read_token",
        )
    secret = session_secret.encode() if session_secret else secrets.token_bytes(32)
    return Access(
        write_token=token.encode() if token else None,
        read_token=read_token.encode() if read_token else None,
        key=hashlib.sha256(b"querywatch session|" + secret).digest(),
        open=no_auth,
    )


def _check_secret(name: str, value: str) -> None:
    if len(value) < MIN_TOKEN_LENGTH or not value.isascii() or not value.isprintable():
        raise ConfigError(
            f"{name} must be at least {MIN_TOKEN_LENGTH} printable ASCII characters; {_MAKE_ONE}",
            setting=name,
        )
    if any(c.isspace() for c in value):
        raise ConfigError(f"{name} must not contain spaces", setting=name)


# -- sessions -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Session:
    """A signed cookie's content. ``level`` "none" is the pre-session of the login form (and of
    every visitor under ``--no-auth``): it exists only to tie a CSRF token to a browser."""

    level: Level
    expires: int
    nonce: str
    tag: str

    def text(self) -> str:
        return f"{self.level}.{self.expires}.{self.nonce}.{self.tag}"


def new_session(access: Access, level: Level, now: float) -> Session:
    return Session(
        level, int(now) + SESSION_SECONDS, secrets.token_urlsafe(16), access.token_tag(level)
    )


def cookie_value(access: Access, session: Session) -> str:
    text = session.text()
    return f"{text}.{access.sign(text)}"


def read_cookie(access: Access, value: str | None, now: float) -> Session | None:
    """The session a cookie holds, or None: unsigned, expired, signed out, or from an old token."""
    if not value or len(value) > 200:
        return None
    text, _, mac = value.rpartition(".")
    if not hmac.compare_digest(mac.encode(), access.sign(text).encode()):
        return None
    level, expires, nonce, tag = [*text.split("."), "", "", ""][:4]
    if level not in ("none", "read", "write") or not expires.isdigit():
        return None
    session = Session(level, int(expires), nonce, tag)  # type: ignore[arg-type]  # checked above
    if session.expires <= now or nonce in access.revoked or tag != access.token_tag(session.level):
        return None
    return session


# -- the request's grant --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Grant:
    """What one request may do, and how it proved it."""

    level: Level
    via: Literal["bearer", "body", "session", "open", "none"]
    session: Session | None = None
    problem: str | None = None  # a token was given but is wrong: why (a 403, not a 401)

    @property
    def can_write(self) -> bool:
        return self.level == "write"


def grant_of(request: HTTPConnection) -> Grant:
    """The request's grant, worked out once and kept on the request."""
    cached = getattr(request.state, "qw_grant", None)
    if isinstance(cached, Grant):
        return cached
    grant = _identify(request)
    request.state.qw_grant = grant
    return grant


def _identify(request: HTTPConnection) -> Grant:
    access = _access(request)
    session = read_cookie(access, request.cookies.get(SESSION_COOKIE), _now(request))
    if access.open:
        return Grant("write", "open", session)
    given = request.headers.get("authorization")
    if given is not None:
        scheme, _, credentials = given.strip().partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            level = access.level_of(credentials)
            if level == "none":
                return Grant(
                    "none", "bearer", problem="the bearer token is not valid for this server"
                )
            return Grant(level, "bearer")
    if session is not None and session.level != "none":
        return Grant(session.level, "session", session)
    return Grant("none", "none", session)


def grant_body_token(request: HTTPConnection, token: str) -> None:
    """For callers that cannot send headers (Flagger's ``metadata.token``): the token in the
    body stands for the ``Authorization`` header, when there is none."""
    access = _access(request)
    if access.open or request.headers.get("authorization") is not None:
        return
    level = access.level_of(token)
    problem = "the token is not valid for this server" if level == "none" else None
    request.state.qw_grant = Grant(level, "body", problem=problem)


def require_read(request: HTTPConnection) -> None:
    """Let through a request that may read (any valid token or session); raise otherwise."""
    grant = grant_of(request)
    if grant.level in ("read", "write"):
        return
    if grant.problem:
        raise Forbidden(grant.problem)
    raise NotSignedIn("missing bearer token: send the header 'Authorization: Bearer <token>'")


def require_write(request: HTTPConnection) -> None:
    """Let through a request that may act (the write token, or a session made with it)."""
    require_read(request)
    if not grant_of(request).can_write:
        raise Forbidden(
            "the read token (api_read_token) can only read: use the write token (api_token) to "
            "change anything"
        )


# -- forms and CSRF -------------------------------------------------------------------------------


def session_for_form(request: HTTPConnection) -> Session:
    """The session a form's CSRF token is tied to: the request's, else a new pre-session whose
    cookie the app sets on the response (``qw_set_cookie``)."""
    pending = getattr(request.state, "qw_set_cookie", None)
    if isinstance(pending, Session) and pending.level == "none":
        return pending
    session = grant_of(request).session
    if session is not None:
        return session
    access = _access(request)
    session = new_session(access, "none", _now(request))
    request.state.qw_set_cookie = session
    return session


def csrf_token(request: HTTPConnection) -> str:
    """The hidden ``csrf`` field every form of this browser's session carries."""
    return _csrf_of(_access(request), session_for_form(request))


def _csrf_of(access: Access, session: Session) -> str:
    return access.sign("csrf|" + session.nonce)


def check_csrf(request: HTTPConnection, form: Mapping[str, object]) -> None:
    """Refuse a form whose ``csrf`` field is not the one this session's pages carry."""
    session = grant_of(request).session
    given = form.get(CSRF_FIELD)
    if (
        session is None
        or not isinstance(given, str)
        or not hmac.compare_digest(given.encode(), _csrf_of(_access(request), session).encode())
    ):
        raise Forbidden(
            "the form's CSRF token is missing or is not this session's: reload the page and "
            "send the form again"
        )


def check_form_origin(request: HTTPConnection) -> None:
    """A form must come from one of this server's pages: its ``Origin`` (or, from a browser that
    sends none, its ``Referer``) names this server."""
    host = request.headers.get("host", "")
    origin = request.headers.get("origin")
    if origin is not None and origin.strip().lower() != "null":
        if same_origin(origin, host):
            return
    elif same_origin(request.headers.get("referer", ""), host):
        return
    raise Forbidden(
        "the form was not sent from this server's pages (its Origin or Referer names another "
        "site, or none): open the page on this server and send it from there"
    )


async def read_form(request: Request) -> FormData:
    """The urlencoded form of a POST (the app has bounded its size; a stalled one times out)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise Forbidden("send the form as application/x-www-form-urlencoded")
    try:
        with anyio.fail_after(FORM_TIMEOUT_S):
            return await request.form(max_files=0, max_fields=200)
    except TimeoutError:
        raise Forbidden(f"the form did not arrive within {FORM_TIMEOUT_S:g} s") from None


async def checked_form(request: Request) -> FormData:
    """A POSTed HTML form of an action, after the checks: same origin, write access, CSRF.

    A request with a bearer token is a script, not a browser another site could steer: it needs
    neither the CSRF token nor an Origin (one it sends must still be this server's).
    """
    browser = grant_of(request).via != "bearer"
    if browser:
        check_form_origin(request)
    require_write(request)
    form = await read_form(request)
    if browser:
        check_csrf(request, form)
    return form


# -- hosts and origins ----------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """Whether an address to listen on is this machine only (``localhost`` or a loopback IP)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def loopback_host(host: str) -> bool:
    """Whether a ``Host`` header names this machine: localhost, *.localhost or a loopback IP."""
    try:
        name = urlsplit("//" + host).hostname
    except ValueError:
        return False
    if not name:
        return False
    if name == "localhost" or name.endswith(".localhost"):
        return True  # browsers resolve these to loopback themselves (RFC 6761)
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def same_origin(origin: str, host: str) -> bool:
    """Whether ``origin`` (an Origin header or a URL) names the host and port the request was
    sent to (http or https: a TLS proxy may sit in front). ``null`` and anything unparsable are
    other origins."""
    try:
        theirs = urlsplit(origin.strip())
        ours = urlsplit("//" + host.strip())
        if theirs.scheme not in ("http", "https") or not theirs.hostname or not ours.hostname:
            return False
        default = 443 if theirs.scheme == "https" else 80
        return (theirs.hostname, theirs.port or default) == (ours.hostname, ours.port or default)
    except ValueError:
        return False


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this server, never another site ("/" if not)."""
    if not target or len(target) > 2000 or not target.startswith("/"):
        return "/"
    # "//evil" and "/\\evil" are other hosts to a browser, which also drops tabs and newlines.
    if (
        target.startswith("//")
        or "\\" in target
        or any(ord(c) < 0x21 or ord(c) == 0x7F for c in target)
    ):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or parts.path in ("/login", "/logout"):
        return "/"
    return target


def _access(request: HTTPConnection) -> Access:
    access: Access = request.app.state.web.access
    return access


def _now(request: HTTPConnection) -> float:
    return float(request.app.state.web.clock())
