"""The dashboard's pages: server-rendered HTML views over the store, one module per page.

``routes()`` is what the app (``querywatch.web.app``) mounts; every page keeps the time range
(``querywatch.web.timerange``) in its links.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from querywatch.web.pages import (
    actions,
    canary,
    checks,
    deploys,
    fingerprint,
    incidents,
    overview,
    postmortem,
)


def routes() -> list[BaseRoute]:
    """Every dashboard page route, in the order the app mounts them."""
    return [
        Route("/", overview.overview, methods=["GET"], name="overview"),
        Route("/fingerprints/{fingerprint}", fingerprint.fingerprint_page, methods=["GET"]),
        Route("/deploys", deploys.deploys_page, methods=["GET"]),
        Route("/deploys/{deploy_id}", deploys.deploy_page, methods=["GET"]),
        Route("/incidents", incidents.incidents_page, methods=["GET"]),
        Route("/incidents/{incident_id}", incidents.incident_page, methods=["GET"]),
        Route("/incidents/{incident_id}/postmortem", postmortem.postmortem_page, methods=["GET"]),
        Route(
            "/incidents/{incident_id}/postmortem.md",
            postmortem.postmortem_markdown,
            methods=["GET"],
        ),
        Route("/incidents/{incident_id}/ack", actions.acknowledge, methods=["POST"]),
        Route("/incidents/{incident_id}/note", actions.note, methods=["POST"]),
        Route("/incidents/{incident_id}/rollback", actions.rollback, methods=["POST"]),
        Route("/canary", canary.canary_page, methods=["GET"]),
        Route("/checks", checks.checks_page, methods=["GET"]),
    ]
