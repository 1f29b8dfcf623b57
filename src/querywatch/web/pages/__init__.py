"""The dashboard's pages: server-rendered HTML views over the store, one module per page.

``routes()`` is what the app (``querywatch.web.app``) mounts; every page keeps the time range
(``querywatch.web.timerange``) in its links.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from querywatch.web.pages import deploys, fingerprint, overview


def routes() -> list[BaseRoute]:
    """Every dashboard page route, in the order the app mounts them."""
    return [
        Route("/", overview.overview, methods=["GET"], name="overview"),
        Route("/fingerprints/{fingerprint}", fingerprint.fingerprint_page, methods=["GET"]),
        Route("/deploys", deploys.deploys_page, methods=["GET"]),
        Route("/deploys/{deploy_id}", deploys.deploy_page, methods=["GET"]),
    ]
