"""The demo on a terminal: a live panel while it runs, a summary when it ends.

Versions, alert titles, steps, SQL and paths are outside text: they go through
:func:`querywatch.terminal.safe_text` (controls escaped, never read as Rich markup).
"""

from __future__ import annotations

import time

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from querywatch.demo.gate import gate_summary
from querywatch.demo.run import DemoProgress, DemoReport
from querywatch.demo.summary import percentile
from querywatch.gate import CheckReport
from querywatch.incidents.model import TimelineEvent
from querywatch.respond.alerts import Alert
from querywatch.terminal import safe_text

REPORT_MINUTES = 150
REPORT_AFFECTED_PCT = 87


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
    table.add_row("elapsed", f"{now - progress.started_at:,.0f} s")
    table.add_row("requests", f"{len(progress.records):,}")
    table.add_row(
        "last 5 s",
        f"{len(recent) / 5:,.1f} req/s, p95 {p95 or 0:,.0f} ms, "
        f"{failed} failed, {slow} slower than {slo_ms:,.0f} ms",
    )
    for d in progress.deploys:
        kind = "rollback" if d.rollback else "deploy"
        at = time.strftime("%H:%M:%S", time.localtime(d.switched_at))
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
    """Time to detect, time to mitigate and users affected, next to the report's figures."""
    s = report.summary
    detect = f"{report.detect_after_s:.0f} s" if report.detect_after_s is not None else "never"
    mitigate = (
        f"{report.mitigate_after_s:.0f} s" if report.mitigate_after_s is not None else "never"
    )
    return Text(
        f"time to detect {detect}, time to mitigate {mitigate}, "
        f"{s.users_affected_pct:.0f}% of users affected "
        f"(the report: {REPORT_MINUTES} minutes to mitigate, {REPORT_AFFECTED_PCT}% of users)",
        style="bold green" if report.rollback_by == "querywatch" else "bold yellow",
    )


def summary_view(report: DemoReport) -> RenderableType:
    s = report.summary
    table = Table(title="\nthe outage, replayed", title_justify="left")
    table.add_column("phase")
    table.add_column("requests", justify="right")
    table.add_column("errors", justify="right")
    table.add_column("p50 ms", justify="right")
    table.add_column("p95 ms", justify="right")
    for name, stats in (
        ("before (v1)", s.before),
        ("bad release (v2)", s.during),
        ("after rollback (v1)", s.after),
    ):
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
            f"error or a page slower than {s.slo_ms:,.0f} ms during the bad release "
            f"(the report: {REPORT_AFFECTED_PCT}% of users, {REPORT_MINUTES} minutes)."
        )
    )
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
