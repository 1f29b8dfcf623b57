"""The gate's report as one JSON value in the store, for the dashboard's /checks page.

``querywatch check --store`` writes it under :data:`querywatch.store.state.GATE_REPORT_KEY`,
replacing the previous one: the verdict, the counts, each finding (normalized SQL and call site,
never literal values nor the plan evidence, which can quote them) and the CI run it came from
when the environment names one (GitHub Actions variables).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from querywatch.findings import Finding
from querywatch.gate.check import CheckReport
from querywatch.gate.reports import headline
from querywatch.store.base import Store
from querywatch.store.state import GATE_REPORT_KEY

MAX_FINDINGS = 500
"""Findings kept per report (failing ones first); the counts always cover them all."""


def verdict(report: CheckReport) -> str:
    if report.baseline_updated:
        return "baseline updated"
    return {0: "passed", 1: "failed", 2: "could not check"}[report.exit_code]


def finding_json(f: Finding, kind: str, failing: bool) -> dict[str, Any]:
    loc = f.location
    return {
        "kind": kind,  # new, regression, unchecked or accepted (by the baseline)
        "failing": failing,
        "rule": f.rule,
        "severity": f.severity,
        "fingerprint": f.fingerprint,
        "sql": f.sql,  # normalized
        "message": f.message,
        "fix": f.fix,
        "site": None
        if loc is None
        else {"path": loc.path, "line": loc.line, "function": loc.function},
    }


def ci_context(environ: Mapping[str, str]) -> dict[str, str] | None:
    """The CI run that checked, from GitHub Actions' variables; None outside CI. The run link is
    kept only when it is an http(s) URL, so a page can put it in an href."""
    ci = {
        name: environ[var]
        for name, var in (
            ("sha", "GITHUB_SHA"),
            ("ref", "GITHUB_REF_NAME"),
            ("run_id", "GITHUB_RUN_ID"),
            ("repository", "GITHUB_REPOSITORY"),
        )
        if environ.get(var)
    }
    server = environ.get("GITHUB_SERVER_URL", "")
    if server and "run_id" in ci and "repository" in ci:
        url = f"{server.rstrip('/')}/{ci['repository']}/actions/runs/{ci['run_id']}"
        if urlsplit(url).scheme in ("http", "https"):
            ci["url"] = url
    return ci or None


def report_json(
    report: CheckReport, environ: Mapping[str, str], *, now: float | None = None
) -> dict[str, Any]:
    """The value `check --store` records: what the terminal report says, as data."""
    items: list[dict[str, Any]] = []
    for f in report.new:
        items.append(finding_json(f, "new", report.fails(f)))
    for f in report.regressions:
        items.append(finding_json(f, "regression", report.fails(f)))
    items += [finding_json(f, "unchecked", False) for f in report.unchecked]
    items += [finding_json(f, "accepted", False) for f in report.accepted]
    items.sort(key=lambda i: (not i["failing"], i["kind"] == "accepted"))  # stable otherwise
    return {
        "at": time.time() if now is None else now,
        "verdict": verdict(report),
        "exit_code": report.exit_code,
        "headline": headline(report),
        "fail_on": report.fail_on,
        "counts": {
            "checked": sum(1 for q in report.queries if q.origin == "run"),
            "failing": len(report.failing),
            "new": len(report.new),
            "regressions": len(report.regressions),
            "below_fail_on": len(report.below),
            "unchecked": len(report.unchecked),
            "accepted": len(report.accepted),
            "fixed": len(report.fixed),
        },
        "baseline": str(report.baseline_path),
        "findings": items[:MAX_FINDINGS],
        "findings_left_out": max(len(items) - MAX_FINDINGS, 0),
        "ci": ci_context(environ),
    }


def record_report(store: Store, report: CheckReport, environ: Mapping[str, str]) -> None:
    """Replace the stored latest gate report with this one."""
    store.set_state(GATE_REPORT_KEY, json.dumps(report_json(report, environ), sort_keys=True))
