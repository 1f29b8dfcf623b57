"""The overview page: database time and calls over the range, deploys, incidents, top queries."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from querywatch.web.auth import require_read
from querywatch.web.templating import render


async def page(request: Request) -> Response:
    require_read(request)
    return render(request, "pages/overview.html", {})
