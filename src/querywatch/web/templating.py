"""HTML pages from Jinja2 templates, with what every page needs already in the context.

Autoescape is on for every template: a value from the store or a user is escaped wherever it
lands, and no page marks data ``|safe``. The context always has ``request``, ``csrf_token`` (for
the hidden field of forms), ``can_write``, ``signed_in``, ``range`` (the page's
:class:`~querywatch.web.timerange.TimeRange`), ``nav`` and ``url(path, **query)``, which keeps
``since``/``until`` in links so the range follows a person from page to page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, PackageLoader
from starlette.requests import Request
from starlette.responses import HTMLResponse

from querywatch.web.auth import csrf_token, grant_of
from querywatch.web.timerange import TimeRange, range_of

NAV = (
    ("Overview", "/"),
    ("Deploys", "/deploys"),
    ("Incidents", "/incidents"),
    ("Canary", "/canary"),
    ("Checks", "/checks"),
    ("Metrics", "/metrics"),
)

_ENV = Environment(
    loader=PackageLoader("querywatch.web", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,
)


def render(
    request: Request, template_name: str, context: Mapping[str, Any], status: int = 200
) -> HTMLResponse:
    """The template rendered with the page's ``context`` over the common one."""
    page_range = range_of(request)
    grant = grant_of(request)
    link = _linker(page_range)
    path = request.url.path
    full: dict[str, Any] = {
        "request": request,
        "csrf_token": _CsrfToken(request),
        "can_write": grant.can_write,
        "signed_in": grant.via == "session",
        "open_access": grant.via == "open",
        "access_level": grant.level,
        "range": page_range,
        "url": link,
        "nav": [
            {
                "label": label,
                "href": link(href),
                "active": path == href if href == "/" else path.startswith(href),
            }
            for label, href in NAV
        ],
        **context,
    }
    return HTMLResponse(_ENV.get_template(template_name).render(full), status)


def render_error(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    """A page that says what went wrong in one sentence (404, 403, 500…)."""
    return render(
        request, "error.html", {"status": status, "title": title, "message": message}, status
    )


class _CsrfToken:
    """The session's CSRF token, made only when a template writes it: a page without a form
    starts no pre-session (and sets no cookie)."""

    def __init__(self, request: Request) -> None:
        self._request = request

    def __str__(self) -> str:
        return csrf_token(self._request)

    def __html__(self) -> str:
        return str(self)  # URL-safe base64: nothing to escape


def _linker(page_range: TimeRange) -> Any:
    kept = page_range.query()

    def url(path: str, **query: Any) -> str:
        """``path`` with the page's range and ``query`` (None drops a parameter)."""
        params = {**kept, **query}
        pairs = [(name, str(value)) for name, value in params.items() if value is not None]
        target = quote(path, safe="/:@-._~!$&'()*+,;=%")
        return f"{target}?{urlencode(pairs)}" if pairs else target

    return url
