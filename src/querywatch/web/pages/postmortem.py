"""An incident's postmortem on the dashboard: HTML in the page, and the Markdown to download.

The postmortem is a document model (:mod:`querywatch.incidents.postmortem_render`) that renders
to Markdown or to HTML, escaping every text it holds; the page shows the model's own HTML
sections, so no Markdown is ever turned into HTML here. The download is exactly what
``querywatch postmortem ID`` prints.
"""

from __future__ import annotations

from urllib.parse import quote

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response

from querywatch.incidents.postmortem import build_document, plan_section, render_postmortem
from querywatch.incidents.postmortem_facts import check_consistency, gather
from querywatch.incidents.postmortem_render import section_html
from querywatch.incidents.service import get_incident
from querywatch.web.pages.common import page, readable


def postmortem_page(request: Request) -> Response:
    state, _ = readable(request)
    incident_id = request.path_params["incident_id"]
    if request.query_params.get("format") == "md":
        return postmortem_markdown(request)
    incident = get_incident(state.store, incident_id)
    facts = gather(state.store, incident, now=state.clock())
    warnings = check_consistency(facts)
    doc = build_document(facts, warnings, plan_section(incident))
    # section_html escapes every text of the document: the markup is the renderer's own.
    body = Markup("\n".join(section_html(s) for s in doc.sections))
    return page(
        request,
        "pages/postmortem.html",
        {"incident": incident, "body": body, "warnings": warnings},
    )


def postmortem_markdown(request: Request) -> Response:
    state, _ = readable(request)
    incident_id = request.path_params["incident_id"]
    done = render_postmortem(state.store, incident_id, "md", now=state.clock())
    name = quote(f"postmortem-{incident_id}.md", safe="")
    return Response(
        done.text,
        200,
        {"Content-Disposition": f"attachment; filename*=UTF-8''{name}"},
        "text/markdown; charset=utf-8",
    )
