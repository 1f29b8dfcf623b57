"""The gate's report in four forms: the terminal, Markdown, JUnit XML and SARIF 2.1.0.

Every form says the same things in the same order: what fails the gate (new findings and
regressions at ``--fail-on`` or above), what could not be checked, new findings below
``--fail-on`` (reported, not failing: ``info`` always), what the baseline accepts and what got
fixed. Each item names the query (normalized, never literal values), its call site, the rule and
the fix. SARIF levels follow the severity: error, warning, and ``note`` for info.
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import time
import xml.etree.ElementTree as ET
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from rich.console import Console, Group
from rich.text import Text

from querywatch.findings import Finding, Location
from querywatch.gate.check import GATE_RULES, CheckReport
from querywatch.gate.statement import QueryResult
from querywatch.terminal import one_line, printable, safe_text

FORMATS = ("terminal", "markdown", "junit", "sarif")
SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)


def render(report: CheckReport, fmt: str, *, color: bool = False, width: int = 120) -> str:
    """The report as text in ``fmt`` (one of FORMATS)."""
    if fmt == "terminal":
        return terminal(report, color=color, width=width)
    if fmt == "markdown":
        return markdown(report)
    if fmt == "junit":
        return junit(report)
    if fmt == "sarif":
        return json.dumps(sarif(report), indent=2, ensure_ascii=False) + "\n"
    raise ValueError(f"unknown report format {fmt!r}")


def _plural(n: int, word: str) -> str:
    if n == 1:
        return f"{n} {word}"
    return f"{n} {word[:-1]}ies" if word.endswith("y") else f"{n} {word}s"


def headline(report: CheckReport) -> str:
    """One line: the verdict and the counts."""
    parts = []
    new = [f for f in report.new if report.fails(f)]
    regressions = [f for f in report.regressions if report.fails(f)]
    if new:
        parts.append(_plural(len(new), "new finding"))
    if regressions:
        parts.append(_plural(len(regressions), "regression"))
    if report.unchecked:
        parts.append(f"{_plural(len(report.unchecked), 'statement')} could not be checked")
    checked = sum(1 for q in report.queries if q.origin == "run")
    below = f", {len(report.below)} below --fail-on {report.fail_on}" if report.below else ""
    if report.baseline_updated:
        found = len(report.new) + len(report.regressions)
        found += len(report.unchecked) + len(report.accepted)
        return f"baseline updated: {_plural(found, 'finding')} accepted"
    if not parts:
        accepted = f", {len(report.accepted)} accepted by the baseline" if report.accepted else ""
        return f"passed: {_plural(checked, 'query')} checked{accepted}{below}"
    verdict = "failed" if report.exit_code == 1 else "could not check"
    return f"{verdict}: {', '.join(parts)}{below} ({_plural(checked, 'query')} checked)"


def _site(f: Finding) -> str:
    loc = f.location
    if loc is None:
        return "-"
    return f"{loc.path}:{loc.line}" + (f" in {loc.function}" if loc.function else "")


def _short(sql: str | None, limit: int = 160) -> str:
    text = " ".join((sql or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _sections(report: CheckReport) -> list[tuple[str, str, list[Finding]]]:
    return [
        ("new", "New findings", [f for f in report.new if report.fails(f)]),
        ("regression", "Regressions", [f for f in report.regressions if report.fails(f)]),
        ("unchecked", "Could not check", report.unchecked),
        ("below", f"Below --fail-on {report.fail_on} (reported, not failing)", report.below),
    ]


# -- terminal -------------------------------------------------------------------------------------


def terminal(report: CheckReport, *, color: bool = False, width: int = 120) -> str:
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        force_terminal=color,
        no_color=not color,
        width=width,
        highlight=False,
        soft_wrap=False,
    )
    console.print(terminal_view(report))
    return buffer.getvalue()


def terminal_view(report: CheckReport) -> Group:
    """One block per item (reads well in a narrow CI log): rule and call site, query, what, fix.

    Queries, messages, paths and notes are outside text: controls are shown escaped and nothing
    is read as Rich markup (pieces are ``Text``, never a markup string)."""
    style = {0: "bold green", 1: "bold red", 2: "bold yellow"}[report.exit_code]
    parts: list[Any] = [safe_text(f"querywatch check {headline(report)}", style=style)]
    for key, title, items in _sections(report):
        if not items:
            continue
        color = {"unchecked": "yellow", "below": "blue"}.get(key, "red")
        parts.append(Text(f"\n{title} ({len(items)})", style=f"bold {color}"))
        for f, same in _by_site(items) if key == "below" else [(f, 1) for f in items]:
            more = f"\n    and {_plural(same - 1, 'other query')} there" if same > 1 else ""
            parts.append(
                Text.assemble(
                    (f"  {one_line(f.rule)}", f"bold {color}"),
                    f" ({f.severity}) at ",
                    (one_line(_site(f)), "bold"),
                    "\n    query: ",
                    (one_line(_short(f.sql, 300)), "cyan"),
                    more,
                    f"\n    {printable(f.message)}",
                    ("\n    fix: " + printable(f.fix), "green"),
                )
            )
    if report.fixed:
        parts.append(Text(f"\nFixed since the baseline ({len(report.fixed)})", style="bold green"))
        parts += [
            Text.assemble("  ", safe_text(f"{x.rule}: {_short(x.normalized, 160)}"))
            for x in report.fixed
        ]
    for note in report.notes:
        parts.append(safe_text("note: " + note, style="yellow", multiline=True))
    parts.append(safe_text(_footer(report), style="dim"))
    return Group(*parts)


def _by_site(items: list[Finding]) -> list[tuple[Finding, int]]:
    """Findings that do not fail, one per rule and call site with how many share it: a library
    whose row API reads ``SELECT *`` for every table is one note, not a hundred."""
    groups: dict[tuple[str, str], list[Finding]] = {}
    for f in items:
        groups.setdefault((f.rule, _site(f)), []).append(f)
    return [(found[0], len(found)) for found in groups.values()]


def _footer(report: CheckReport) -> str:
    where = report.baseline_path
    if report.baseline_updated:
        return f"baseline written to {where}: commit it to accept the current state"
    if not report.baseline_existed:
        base = f"no baseline at {where} yet: every finding is new"
    else:
        base = f"baseline {where}: {_plural(len(report.accepted), 'finding')} accepted"
    if report.exit_code:
        base += "; fix the queries, or accept them with `querywatch check --update-baseline`"
    return base


# -- Markdown -------------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _code(text: str) -> str:
    text = _cell(text)
    if not text:
        return ""
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def markdown(report: CheckReport) -> str:
    """For a pull-request comment or ``$GITHUB_STEP_SUMMARY``."""
    icon = {0: "✅", 1: "❌", 2: "⚠️"}[report.exit_code]
    out = [f"## {icon} querywatch check {headline(report)}", ""]
    rows = [(title, f) for _key, title, items in _sections(report) for f in items]
    if rows:
        out += ["| | Query | Call site | Rule | Fix |", "|---|---|---|---|---|"]
        for title, f in rows:
            kind = {"New findings": "new", "Regressions": "regression"}.get(title, "not checked")
            if title.startswith("Below"):
                kind = f"{f.severity}, not failing"
            out.append(
                f"| {kind} | {_code(_short(f.sql, 200))} | {_code(_site(f))} | "
                f"**{_cell(f.rule)}**: {_cell(f.message)} | {_cell(f.fix)} |"
            )
        out.append("")
    if report.fixed:
        out.append(f"**Fixed since the baseline** ({len(report.fixed)}):")
        out += [f"- {_cell(x.rule)}: {_code(_short(x.normalized, 120))}" for x in report.fixed]
        out.append("")
    for note in report.notes:
        out += [f"> {_cell(note)}", ""]
    out.append(_cell(_footer(report)).replace("\\|", "|"))
    return "\n".join(out) + "\n"


# -- JUnit XML ------------------------------------------------------------------------------------

_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml(text: str) -> str:
    return _XML_BAD.sub("?", text)


def _failure_text(f: Finding) -> str:
    return _xml(f"{f.message}\nquery: {_short(f.sql, 2000)}\ncall site: {_site(f)}\nfix: {f.fix}")


def junit(report: CheckReport) -> str:
    """One test case per query; each new finding or regression at --fail-on or above and each
    unchecked statement a failure; findings below --fail-on and accepted ones in system-out."""
    failing: dict[str, list[tuple[str, Finding]]] = {}
    for key, _title, items in _sections(report):
        for f in items:
            if key != "below":
                failing.setdefault(f.fingerprint or "", []).append((key, f))
    accepted: dict[str, list[str]] = {}
    for f in report.accepted:
        accepted.setdefault(f.fingerprint or "", []).append(
            f"accepted by the baseline: {f.rule} ({f.message})"
        )
    for f in report.below:
        accepted.setdefault(f.fingerprint or "", []).append(
            f"{f.severity}, below --fail-on {report.fail_on}: {f.rule} ({f.message})"
        )
    cases = []
    failures = 0
    for q in report.queries:
        case = ET.Element(
            "testcase",
            classname=_classname(q),
            name=_xml(f"{_short(q.normalized, 100)} [{q.fingerprint}]"),
            time="0",
        )
        for key, f in failing.pop(q.fingerprint, []):
            failure = ET.SubElement(
                case,
                "failure",
                type=f"{key}:{f.rule}",
                message=_xml(f"{f.rule}: {f.message}"),
            )
            failure.text = _failure_text(f)
            failures += 1
        ok = accepted.get(q.fingerprint)
        if ok:
            out = ET.SubElement(case, "system-out")
            out.text = _xml("\n".join(ok))
        cases.append(case)
    for fp, orphans in failing.items():  # findings without a query of their own (none expected)
        case = ET.Element("testcase", classname="querywatch", name=f"[{fp}]", time="0")
        for key, f in orphans:
            failure = ET.SubElement(case, "failure", type=f"{key}:{f.rule}", message=f.message)
            failure.text = _failure_text(f)
            failures += 1
        cases.append(case)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    counts = {"tests": str(len(cases)), "failures": str(failures), "errors": "0"}
    root = ET.Element("testsuites", {"name": "querywatch", "time": "0", **counts})
    suite = ET.SubElement(
        root,
        "testsuite",
        {
            "name": "querywatch check",
            **counts,
            "skipped": "0",
            "time": "0",
            "timestamp": stamp,
            "hostname": _hostname(),
        },
    )
    suite.extend(cases)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def _classname(q: QueryResult) -> str:
    loc = q.location
    if loc is None:
        return "querywatch"
    module = re.sub(r"\.py$", "", loc.path).replace("/", ".").replace("\\", ".").strip(".")
    return _xml(f"querywatch.{module}")


def _hostname() -> str:
    try:
        return socket.gethostname()
    except OSError:
        return "localhost"


# -- SARIF 2.1.0 ----------------------------------------------------------------------------------


def _rule_help(rule: str, example: Finding) -> str:
    if rule in GATE_RULES:
        return GATE_RULES[rule]
    try:
        from querywatch.sql.lint import RULES as LINT_RULES

        if rule in LINT_RULES:
            return LINT_RULES[rule].summary
    except ImportError:  # pragma: no cover - lint ships with querywatch
        pass
    try:
        from querywatch.plans.rules import rule_by_id

        described = rule_by_id(rule)
        if described is not None:
            return described.summary
    except ImportError:
        pass
    return example.message


def _uri(path: str, root: Path) -> tuple[str, bool]:
    """A URI for ``path``: relative to ``root`` (True) when inside it, else an absolute file URI."""
    p = Path(path)
    if p.is_absolute():
        try:
            p = p.resolve().relative_to(root.resolve())
        except ValueError:
            return p.resolve().as_uri(), False
    return quote(PurePosixPath(*p.parts).as_posix()), True


def _sarif_location(loc: Location, root: Path) -> dict[str, Any]:
    uri, relative = _uri(loc.path, root)
    artifact: dict[str, Any] = {"uri": uri}
    if relative:
        artifact["uriBaseId"] = "%SRCROOT%"
    physical: dict[str, Any] = {
        "artifactLocation": artifact,
        "region": {"startLine": max(loc.line, 1)},
    }
    out: dict[str, Any] = {"physicalLocation": physical}
    if loc.function:
        out["logicalLocations"] = [{"name": loc.function, "kind": "function"}]
    return out


_LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def sarif(report: CheckReport, *, root: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """A SARIF 2.1.0 log: annotations at each finding's call site (paths relative to ``root``,
    default the working directory, which is what GitHub code scanning expects)."""
    base = Path(root) if root is not None else Path.cwd()
    items: list[tuple[str, Finding]] = [
        (key, f) for key, _title, found in _sections(report) for f in found
    ]
    items += [("accepted", f) for f in report.accepted]
    rule_ids: dict[str, int] = {}
    rules: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for key, f in items:
        if f.rule not in rule_ids:
            rule_ids[f.rule] = len(rules)
            text = _rule_help(f.rule, f)
            rules.append(
                {
                    "id": f.rule,
                    "name": "".join(w.capitalize() for w in re.split(r"[-_]", f.rule)),
                    "shortDescription": {"text": text},
                    "fullDescription": {"text": text},
                    "help": {
                        "text": f"{text}\nExample fix: {f.fix}",
                        "markdown": f"{text}\n\n**Example fix:** {f.fix}",
                    },
                    "defaultConfiguration": {"level": _LEVEL[f.severity]},
                }
            )
        result: dict[str, Any] = {
            "ruleId": f.rule,
            "ruleIndex": rule_ids[f.rule],
            # The level is the severity, so code scanning judges as the gate does: info is a note.
            "level": _LEVEL[f.severity],
            "message": {"text": f"{f.message}. Fix: {f.fix}. Query: {_short(f.sql, 300)}"},
            "partialFingerprints": {
                "querywatchFinding/v1": f"{f.fingerprint}:{f.rule}:{f.evidence.get('test', '')}"
            },
            "baselineState": "unchanged" if key == "accepted" else "new",
            "properties": {"fingerprint": f.fingerprint, "kind": key},
        }
        if f.location is not None:
            result["locations"] = [_sarif_location(f.location, base)]
        else:
            baseline_uri, relative = _uri(str(report.baseline_path), base)
            artifact: dict[str, Any] = {"uri": baseline_uri}
            if relative:
                artifact["uriBaseId"] = "%SRCROOT%"
            result["locations"] = [
                {"physicalLocation": {"artifactLocation": artifact, "region": {"startLine": 1}}}
            ]
        if key == "accepted":
            result["suppressions"] = [
                {"kind": "external", "justification": f"accepted in {report.baseline_path}"}
            ]
        results.append(result)
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "querywatch",
                "version": _version(),
                "rules": rules,
            }
        },
        "originalUriBaseIds": {"%SRCROOT%": {"uri": base.resolve().as_uri() + "/"}},
        "results": results,
        "columnKind": "unicodeCodePoints",
    }
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("querywatch")
    except PackageNotFoundError:
        return "0"


def write(report: CheckReport, fmt: str, path: str | os.PathLike[str]) -> None:
    Path(path).write_text(render(report, fmt))
