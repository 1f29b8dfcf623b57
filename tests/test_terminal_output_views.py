"""Outside text on the other terminal outputs (issue 11, security 5): the terminal alert sink, the
gate's terminal report and the demo's live and summary views. Each is rendered by the code that
prints it, on a Console that believes it is a colour terminal, and the captured text is checked:
control sequences shown escaped, Rich markup shown as written."""

from __future__ import annotations

import io
import time
from dataclasses import replace
from pathlib import Path

from rich.console import Console, RenderableType

from querywatch.demo.deployer import Deploy
from querywatch.demo.ground_truth import ReleaseQuery
from querywatch.demo.run import DemoOptions, DemoProgress, DemoReport
from querywatch.demo.shop.seed import Shape
from querywatch.demo.summary import summarize
from querywatch.demo.view import alert_view, live_panel, step_view, summary_view
from querywatch.findings import Finding, Location
from querywatch.gate import CheckReport, render
from querywatch.incidents import service
from querywatch.incidents.model import Incident, TimelineEvent
from querywatch.respond.alerts import alert_for_incident, blind_alert
from querywatch.respond.notifier import Notifier
from querywatch.respond.sinks import TerminalSink
from querywatch.store import open_store
from test_incidents import T0, culprit, detection, triage

# A recolouring CSI and Rich markup, inside SQL, titles, versions and paths.
RED = "\x1b[31m"
BOLD = "[bold]x[/bold]"
SQL = f'select (array[?])[i] from t where c = "{RED}red" and d = "{BOLD}"'


def colour_console(buffer: io.StringIO, width: int = 400) -> Console:
    return Console(file=buffer, force_terminal=True, color_system="truecolor", width=width)


def shown(*renderables: RenderableType, width: int = 400) -> str:
    buffer = io.StringIO()
    console = colour_console(buffer, width)
    for r in renderables:
        console.print(r)
    return buffer.getvalue()


def assert_literal(out: str, *, times: int = 1, markup: int | None = None) -> None:
    """The outside ESC is shown as ``\\x1b`` and ``[bold]x[/bold]`` comes out as written (Rich's
    own colours, which start ``\\x1b[``, are there too: what matters is the outside ``[31mred``)."""
    assert f"{RED}red" not in out, f"raw escape sequence printed in {out!r}"
    assert out.count("\\x1b[31mred") >= times, out
    assert out.count(BOLD) >= (times if markup is None else markup), f"markup read in {out!r}"


def hostile_incident(tmp_path: Path) -> Incident:
    with open_store(tmp_path / "store.sqlite3") as store:
        d = replace(detection(), normalized=SQL)
        c = replace(culprit(), normalized=SQL)
        incident = service.open_incident(store, [d], [c], triage(), None, "d2", T0 + 31)
    return replace(incident, title=f"{RED}red title {BOLD}")


def test_terminal_sink_prints_titles_and_sql_literally(tmp_path: Path) -> None:
    buffer = io.StringIO()
    notifier = Notifier([TerminalSink(colour_console(buffer))])
    notifier.notify(alert_for_incident(hostile_incident(tmp_path), ["@team"]))
    notifier.notify(blind_alert(f"db {RED}red {BOLD}", "refused", since=T0))
    out = buffer.getvalue()
    assert "CRITICAL" in out and "cannot read db" in out
    assert_literal(out, times=3)  # the title, the culprit's SQL in the text, the source's name


def test_gate_terminal_report_prints_sql_messages_and_paths_literally() -> None:
    finding = Finding(
        rule="function-on-indexed-column",
        severity="error",
        message=f"cast on {RED}red {BOLD}",
        fix=f"index {BOLD}",
        fingerprint="0123456789abcdef",
        sql=SQL,
        location=Location(path=f"app/{RED}red.py", line=3, function=BOLD),
    )
    report = CheckReport(new=[finding], notes=[f"note {RED}red {BOLD}"])
    out = render(report, "terminal", color=True, width=400)
    assert "function-on-indexed-column" in out
    assert_literal(out, times=4)  # query, message, call site, note (and the fix's markup)
    assert out.count(BOLD) >= 5  # and the fix, the function


def test_demo_live_and_summary_views_print_outside_text_literally(tmp_path: Path) -> None:
    now = time.time()
    version = f"v2 {RED}red {BOLD}"
    bad = Deploy(version, "abc1234", now - 60, now - 59, now - 58, "v1", "0001111", "http://x", 0)
    progress = DemoProgress(phase="bad release", release=version, deploys=[bad])
    incident = hostile_incident(tmp_path)
    step = TimelineEvent(kind="action", at=now, message=f"ran {RED}red {BOLD}", data={})
    live = shown(
        live_panel(progress, 1000.0),
        alert_view(alert_for_incident(incident)),
        step_view(step),
    )
    assert "bad release" in live
    assert_literal(live, times=5)  # serving, the deploy row, alert title and text, the step

    report = DemoReport(
        options=DemoOptions(workdir=tmp_path),
        shape=Shape(orders=1, customers=1, products=1, reviews=1),
        run_started_at=now - 100,
        bad=bad,
        rollback=None,
        summary=summarize([], now - 59, None),
        ground_truth=[ReleaseQuery("0123456789abcdef", SQL, f"shop/{RED}red.py", 7, "f")],
        records=[],
        completed=True,
        detected_at=now - 40,
        incident=incident,
        postmortem_path=tmp_path / f"{RED}red {BOLD}.md",
    )
    summary = shown(summary_view(report))
    assert "queries the bad release changed" in summary
    # the culprit's SQL, the changed query and its path, the postmortem's path (no markup in the
    # query's path)
    assert_literal(summary, times=4, markup=3)
