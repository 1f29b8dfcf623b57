"""The CI gate: the latest report ``querywatch check --store`` recorded, and what this server's
working directory holds.

``querywatch check`` runs in CI over the run file ``pytest --querywatch`` wrote; with ``--store``
it also records its report in the store (state :data:`GATE_REPORT_KEY`, JSON written by
``querywatch.gate.record``), which this page shows. Without one, the page says how to record one,
and names the run file of the last ``pytest --querywatch`` and the committed baseline. (The web
and the gate are sibling layers: the two default paths are named here again, and a test keeps
them equal to the gate's.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from querywatch.store import rollup_reads
from querywatch.store.state import GATE_REPORT_KEY
from querywatch.web.pages.common import page, readable, rollups
from querywatch.web.state import WebState

RUN_FILE = Path(".querywatch/gate-run.json")  # querywatch.gate.runfile.DEFAULT_RUN_PATH
BASELINE = Path("querywatch.baseline.json")  # querywatch.gate.baseline.DEFAULT_BASELINE_PATH


def checks_page(request: Request) -> Response:
    state, _ = readable(request)
    context = checks_context(Path.cwd())
    context["report"] = gate_report(state)
    return page(request, "pages/checks.html", context)


def checks_context(root: Path) -> dict[str, Any]:
    return {"run": _file(root, RUN_FILE), "baseline": _file(root, BASELINE)}


def gate_report(state: WebState) -> dict[str, Any] | None:
    """The stored latest report, each finding marked ``known`` when the store has its
    fingerprint (so it can link to its page); None when none is stored or it is unreadable."""
    raw = state.store.get_state(GATE_REPORT_KEY)
    if raw is None:
        return None
    try:
        report = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(report, dict):
        return None
    findings = [f for f in report.get("findings") or [] if isinstance(f, dict)]
    fps = sorted({str(f["fingerprint"]) for f in findings if f.get("fingerprint")})
    known = rollups(state.store, lambda tx: rollup_reads.texts(tx, fps)) if fps else {}
    for f in findings:
        f["known"] = bool(f.get("fingerprint")) and str(f["fingerprint"]) in known
    report["findings"] = findings
    ci = report.get("ci")
    if isinstance(ci, dict) and not str(ci.get("url", "")).startswith(("https://", "http://")):
        ci.pop("url", None)  # an href only to a web page, never javascript: or the like
    return report


def _file(root: Path, name: Path) -> dict[str, Any] | None:
    path = root / name
    try:
        stat = path.stat()
    except OSError:
        return None
    return {"path": str(name), "bytes": stat.st_size, "mtime": stat.st_mtime}
