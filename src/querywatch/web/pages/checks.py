"""The CI gate: what this server can know of it.

``querywatch check`` runs in CI over the run file ``pytest --querywatch`` wrote, and writes its
report to the CI log and to files (Markdown, JUnit XML, SARIF); it records nothing in the store.
So this page says so, and names what the server's working directory holds: the run file of the
last ``pytest --querywatch`` and the committed baseline. (The web and the gate are sibling
layers: the two default paths are named here again, and a test keeps them equal to the gate's.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from querywatch.web.pages.common import page, readable

RUN_FILE = Path(".querywatch/gate-run.json")  # querywatch.gate.runfile.DEFAULT_RUN_PATH
BASELINE = Path("querywatch.baseline.json")  # querywatch.gate.baseline.DEFAULT_BASELINE_PATH


def checks_page(request: Request) -> Response:
    readable(request)
    return page(request, "pages/checks.html", checks_context(Path.cwd()))


def checks_context(root: Path) -> dict[str, Any]:
    return {"run": _file(root, RUN_FILE), "baseline": _file(root, BASELINE)}


def _file(root: Path, name: Path) -> dict[str, Any] | None:
    path = root / name
    try:
        stat = path.stat()
    except OSError:
        return None
    return {"path": str(name), "bytes": stat.st_size, "mtime": stat.st_mtime}
