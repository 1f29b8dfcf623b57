"""``/login`` and ``/logout``: a person pastes a token once and gets a signed session cookie.

The cookie (HttpOnly, SameSite=Strict, Secure over https; set by the app from
``request.state.qw_set_cookie``) remembers whether the token was the read or the write one. The
login form carries a CSRF token tied to a pre-session, so another site cannot sign a browser in
with a token of its choosing; signing in starts a fresh session (a new nonce) and signing out
revokes the old one on this server.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from querywatch.web.auth import (
    Forbidden,
    check_csrf,
    check_form_origin,
    grant_of,
    new_session,
    read_form,
    safe_next,
)
from querywatch.web.state import web_state
from querywatch.web.templating import render

log = logging.getLogger("querywatch.web")


async def login(request: Request) -> Response:
    if request.method == "POST":
        return await _sign_in(request)
    state = web_state(request)
    target = safe_next(request.query_params.get("next"))
    if state.access.open:
        return RedirectResponse(target, 303)  # --no-auth: nobody needs to sign in
    grant = grant_of(request)
    if grant.via == "session" and "next" in request.query_params:
        return RedirectResponse(target, 303)
    # A SameSite=Strict cookie is not sent on a navigation that started on another site (a link
    # in Slack): one same-site hop (a meta refresh, no JavaScript) lets the browser show it.
    if (
        grant.via != "session"
        and request.headers.get("sec-fetch-site") == "cross-site"
        and "retry" not in request.query_params
    ):
        again = "/login?" + urlencode({"next": target, "retry": "1"})
        return render(request, "login.html", {"refresh": again, "next": target})
    return _form(request, target)


def _form(request: Request, target: str, error: str | None = None, status: int = 200) -> Response:
    return render(request, "login.html", {"mode": "login", "next": target, "error": error}, status)


async def _sign_in(request: Request) -> Response:
    state = web_state(request)
    access = state.access
    try:
        check_form_origin(request)
        form = await read_form(request)
        check_csrf(request, form)
    except Forbidden as refused:
        return _form(request, "/", str(refused), 403)
    target = safe_next(_text(form.get("next")))
    if access.open:
        return RedirectResponse(target, 303)
    level = access.level_of(_text(form.get("token")))
    if level == "none":
        client = request.client.host if request.client else "-"
        log.warning("sign-in refused from %s: the token is not valid", client)
        return _form(request, target, "That token is not valid for this server.", 403)
    now = state.clock()
    old = grant_of(request).session
    if old is not None:
        access.revoke(old, now)
    request.state.qw_set_cookie = new_session(access, level, now)
    return RedirectResponse(target, 303)


async def logout(request: Request) -> Response:
    grant = grant_of(request)
    if request.method != "POST":
        if grant.via != "session":
            return RedirectResponse("/login", 303)
        return render(request, "login.html", {"mode": "logout"})
    check_form_origin(request)  # Forbidden: the app's 403 page
    form = await read_form(request)
    if grant.session is not None:
        check_csrf(request, form)
        web_state(request).access.revoke(grant.session, web_state(request).clock())
    request.state.qw_clear_cookie = True
    return RedirectResponse("/login", 303)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
