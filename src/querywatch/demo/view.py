"""The demo on a terminal: a live panel while it runs, a summary when it ends.

Versions, alert titles, steps, SQL and paths are outside text: they go through
:func:`querywatch.terminal.safe_text` (controls escaped, never read as Rich markup).
"""

from __future__ import annotations

import time

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from querywatch.demo.canary import CANARY_AGENT
from querywatch.demo.gate import gate_summary
from querywatch.demo.report import DemoProgress, DemoReport
from querywatch.demo.shop.releases import GOOD
from querywatch.demo.summary import percentile
from querywatch.gate import CheckReport
from querywatch.incidents.model import TimelineEvent
from querywatch.respond.alerts import Alert
from querywatch.terminal import safe_text

REPORT_MINUTES = 150
REPORT_AFFECTED_PCT = 87

#: Users affected when v2 goes to every user at once (`querywatch demo --no-canary`, default
#: options): every replay in bench/RESULTS.md "Canary — 2026-12-05" measured 100%.
ALL_AT_ONCE_AFFECTED_PCT = 100


def live_panel(progress: DemoProgress, slo_ms: float) -> RenderableType:
    """Phase, release and the last five seconds of traffic as users see it."""
    now = time.time()
    recent = [r for r in progress.records if r.scheduled_at >= now - 5]
    failed = sum(1 for r in recent if r.failed)
    slow = sum(1 for r in recent if not r.failed and r.latency_ms > slo_ms)
    p95 = percentile([r.latency_ms for r in recent], 95)
    table = Table.grid(padding=(0, 2))
    table.add_row("phase", safe_text(progress.phase, style="bold"))
    table.add_row("serving", safe_text(progress.release or "–"))
    if progress.canary:
        table.add_row("canary", safe_text(progress.canary))
    table.add_row("elapsed", f"{now - progress.started_at:,.0f} s")
    table.add_row("requests", f"{len(progress.records):,}")
    table.add_row(
        "last 5 s",
        f"{len(recent) / 5:,.1f} req/s, p95 {p95 or 0:,.0f} ms, "
        f"{failed} failed, {slow} slower than {slo_ms:,.0f} ms",
    )
    for d in progress.deploys:
        at = time.strftime("%H:%M:%S", time.localtime(d.switched_at))
        if d.canary_weight is not None:
            table.add_row(
                "canary", safe_text(f"{d.version} ({d.commit}) at {at}, {d.canary_weight:g}%")
            )
            continue
        kind = "rollback" if d.rollback else "promote" if d.promoted else "deploy"
        table.add_row(kind, safe_text(f"{d.version} ({d.commit}) at {at}"))
    return table


def alert_view(alert: Alert) -> RenderableType:
    """An alert as it fires: what, where in the code, which deploy, is it the database."""
    at = time.strftime("%H:%M:%S", time.localtime(alert.started_at))
    style = "bold red" if alert.severity == "critical" else "bold yellow"
    return Group(safe_text(f"{at} ALERT {alert.title}", style=style), safe_text(alert.text))


def step_view(event: TimelineEvent) -> RenderableType:
    """A step of the response (evidence re-check, rollback, runbook, recovery) as it happens."""
    at = time.strftime("%H:%M:%S", time.localtime(event.at))
    outcome = event.data.get("outcome")
    style = "bold red" if outcome in ("failed", "timeout", "not_recovered") else "bold cyan"
    return safe_text(f"{at} {event.kind.upper()} {event.message}", style=style)


def gate_view(version: str, gate: CheckReport) -> RenderableType:
    """What `pytest --querywatch` would have said in the pull request of this release."""
    if gate.exit_code == 0:
        return safe_text(f"CI gate on {version}: passed, no findings", style="green")
    lines: list[RenderableType] = [
        safe_text(
            f"CI gate on {version}: {gate_summary(gate)}: it would have failed the pull request",
            style="bold red",
        )
    ]
    for f in gate.failing:
        where = f" at {f.location.path}:{f.location.line}" if f.location else ""
        lines.append(_cut(Text.assemble("  ", safe_text(f"{f.rule}{where}: {f.message}"))))
        lines.append(_cut(Text.assemble("    ", safe_text(f"fix: {f.fix}"))))
    return Group(*lines)


def headline(report: DemoReport) -> Text:
    """Time to detect, time to mitigate and users affected, next to the report's figures (and,
    for a canary, next to the same release going to everyone at once)."""
    s = report.summary
    detect = f"{report.detect_after_s:.0f} s" if report.detect_after_s is not None else "never"
    mitigate = (
        f"{report.mitigate_after_s:.0f} s" if report.mitigate_after_s is not None else "never"
    )
    report_figures = f"the report: {REPORT_MINUTES} minutes to mitigate, {REPORT_AFFECTED_PCT}%"
    canary = report.canary
    if canary is not None and canary.aborted_at is not None and canary.abort_after_s is not None:
        return Text(
            f"caught in canary: {canary.release} took {canary.plan.weight:g}% of users and no "
            f"traffic {canary.abort_after_s:.0f} s later; {s.users_affected_pct:.0f}% of users "
            f"affected (all at once: {ALL_AT_ONCE_AFFECTED_PCT}%; {report_figures} of users)",
            style="bold green" if canary.aborted_by == CANARY_AGENT else "bold yellow",
        )
    if canary is not None and canary.promoted_at is not None and report.rollback is None:
        return Text(
            f"canary {canary.release} passed and was promoted to every user; "
            f"{s.users_affected_pct:.0f}% of users affected",
            style="bold green",
        )
    return Text(
        f"time to detect {detect}, time to mitigate {mitigate}, "
        f"{s.users_affected_pct:.0f}% of users affected "
        f"({report_figures} of users)",
        style="bold green" if report.rollback_by == "querywatch" else "bold yellow",
    )


def canary_view(report: DemoReport) -> RenderableType:
    """The canary: its share, who met it, the verdict and what it found."""
    canary = report.canary
    assert canary is not None
    at = time.strftime("%H:%M:%S", time.localtime(canary.deploy.switched_at))
    met, hurt, total = canary.users(report.records, report.summary.slo_ms)
    lines: list[RenderableType] = [
        safe_text(
            f"canary {canary.release} took {canary.plan.weight:g}% of users at {at} "
            f"(steps {', '.join(f'{w:g}%' for w in canary.plan.weights)}); {met} of {total} "
            f"users met it, {hurt} saw an error or a slow page on it",
            style="bold",
        )
    ]
    verdict = canary.failed or canary.verdict
    if canary.aborted_at is not None and canary.abort_after_s is not None:
        lines.append(
            safe_text(
                f"aborted by {canary.aborted_by} {canary.abort_after_s:.0f} s after it took "
                f"traffic" + (f": {verdict.reason}" if verdict and verdict.reason else "")
            )
        )
    elif canary.promoted_at is not None:
        lines.append(safe_text(f"promoted after {canary.verdicts} verdicts, the last: pass"))
    for f in canary.failed.findings if canary.failed else ():
        lines.append(_cut(Text.assemble("  ", safe_text(f"{f.kind}: {f.message}"))))
    return Group(*lines)


def summary_view(report: DemoReport) -> RenderableType:
    s = report.summary
    table = Table(title="\nthe outage, replayed", title_justify="left")
    table.add_column("phase")
    table.add_column("requests", justify="right")
    table.add_column("errors", justify="right")
    table.add_column("p50 ms", justify="right")
    table.add_column("p95 ms", justify="right")
    bad = report.options.release
    during = f"bad release ({bad})"
    if report.canary is not None:
        during = f"canary ({bad} at {report.canary.plan.weight:g}%, {GOOD} for the rest)"
    after = "after rollback (v1)" if report.promoted is None else f"after promotion ({bad})"
    for name, stats in (("before (v1)", s.before), (during, s.during), (after, s.after)):
        table.add_row(
            name,
            f"{stats.requests:,}",
            f"{stats.error_rate:.1%}",
            _ms(stats.p50_ms),
            _ms(stats.p95_ms),
        )
    lines: list[RenderableType] = [table]
    lines.append(
        Text(
            f"{s.users_affected} of {s.users_total} users ({s.users_affected_pct:.0f}%) saw an "
            f"error or a page slower than {s.slo_ms:,.0f} ms on the bad release "
            f"(the report: {REPORT_AFFECTED_PCT}% of users, {REPORT_MINUTES} minutes)."
        )
    )
    if report.canary is not None:
        lines.append(canary_view(report))
    if report.detect_after_s is not None and report.incident is not None:
        lines.append(
            safe_text(
                f"detected {report.detect_after_s:.0f} s after the bad release took traffic "
                f"(incident {report.incident.id}); culprits:",
                style="bold",
            )
        )
        for c in report.incident.culprits:
            site = f"{c.call_sites[0].path}:{c.call_sites[0].line}" if c.call_sites else "?"
            lines.append(
                _cut(
                    Text.assemble(
                        f"  +{c.added_db_ms_per_s:,.0f} ms/s  ",
                        safe_text(site),
                        "  ",
                        safe_text(c.normalized),
                    )
                )
            )
    elif report.bad is not None:
        lines.append(Text("no alert fired during the bad release", style="yellow"))
    if report.bad and report.rollback:
        served = report.rollback.switched_at - report.bad.switched_at
        who = (
            "querywatch rolled it back by itself"
            if report.rollback_by == "querywatch"
            else "the demo rolled it back by hand: querywatch did not"
        )
        lines.append(Text(f"bad release served for {served:.0f} s; {who}."))
    if report.recovered is not None:
        lines.append(
            Text(
                "recovery verified against the baseline"
                if report.recovered
                else "the rollback did not help: the figures stayed above the baseline",
                style="green" if report.recovered else "red",
            )
        )
    if report.incident is not None:
        lines.append(safe_text(f"incident {report.incident.id} is {report.incident.status}."))
    if report.postmortem_path is not None:
        lines.append(safe_text(f"postmortem written to {report.postmortem_path}"))
    for version, gate in report.gate.items():
        lines.append(gate_view(version, gate))
    lines.append(Text("queries the bad release changed:", style="bold"))
    for q in report.ground_truth:
        lines.append(
            _cut(
                Text.assemble(
                    f"  {q.fingerprint}  ",
                    safe_text(f"{q.path}:{q.line}"),
                    "  ",
                    safe_text(q.normalized),
                )
            )
        )
    if not report.completed:
        lines.append(Text("interrupted: the figures above are partial", style="yellow"))
    elif report.bad is not None:
        lines.append(headline(report))
    return Group(*lines)


def _cut(text: Text) -> Text:
    """One line, cut with an ellipsis at the terminal's width."""
    text.overflow = "ellipsis"
    text.no_wrap = True
    return text


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.1f}"
