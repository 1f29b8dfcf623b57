"""The CI gate: what this server can know of it.

``querywatch check`` runs in CI over the run file ``pytest --querywatch`` wrote, and writes its
report to the CI log and to files (Markdown, JUnit XML, SARIF); it records nothing in the store.
So this page says so, and shows what it can read in the server's working directory: the run
file of the last ``pytest --querywatch`` and the committed baseline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from querywatch.gate.baseline import DEFAULT_BASELINE_PATH
from querywatch.gate.runfile import DEFAULT_RUN_PATH, GateInputError, GateRun
from querywatch.web.pages.common import page, readable

MAX_RUN_BYTES = 20 * 1024 * 1024  # a bigger run file is named, not read, on a page view


def checks_page(request: Request) -> Response:
    readable(request)
    return page(request, "pages/checks.html", checks_context(Path.cwd()))


def checks_context(root: Path) -> dict[str, Any]:
    run_path = root / DEFAULT_RUN_PATH
    baseline_path = root / DEFAULT_BASELINE_PATH
    run: dict[str, Any] | None = None
    if run_path.is_file():
        size = run_path.stat().st_size
        run = {"path": str(DEFAULT_RUN_PATH), "bytes": size, "error": None}
        if size > MAX_RUN_BYTES:
            run["error"] = f"{size:,} bytes: too big to read on a page view"
        else:
            try:
                loaded = GateRun.load(run_path)
            except GateInputError as exc:
                run["error"] = str(exc)
            else:
                run.update(
                    created_at=loaded.created_at or None,
                    tests=len(loaded.tests),
                    queries=len(loaded.statements),
                    databases=sorted(d.dialect for d in loaded.databases.values()),
                    plans=len(loaded.plans),
                )
    baseline = None
    if baseline_path.is_file():
        baseline = {"path": str(DEFAULT_BASELINE_PATH), "mtime": baseline_path.stat().st_mtime}
    return {"run": run, "baseline": baseline}
