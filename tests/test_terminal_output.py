"""SQL and other outside text on a terminal: control sequences shown escaped, Rich markup shown as
written (issue 11, security 5), through the real CLI with its output captured."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from querywatch.incidents import service
from querywatch.incidents.repository import list_incidents
from querywatch.records import StatementWindow
from querywatch.store import open_store
from querywatch.terminal import one_line, printable, safe_text
from test_incidents import T0, culprit, detection, triage

# An OSC that retitles the terminal (ended by BEL), a CSI that recolours, a C1 CSI, a carriage
# return that hides what came before, a right-to-left override, and Rich markup ([i] = italics).
HOSTILE = (
    'select (array[?])[i], ? as "\x1b]0;pwned\x07x" from t where c = "\x1b[31mred\x1b[0m" '
    'and d = "\x9b2J" and e = "ok\rhidden" and f = "\u202etxt" and g = "[bold]b[/]"'
)
RAW = ("\x1b", "\x07", "\x9b", "\r", "\u202e")
SHOWN = ("(array[?])[i]", "\\x1b]0;pwned\\x07x", "\\x1b[31mred", "\\x9b2J", '"[bold]b[/]"')


def run(*args: str, store: Path, columns: int = 200) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUERYWATCH_")}
    env.update(QUERYWATCH_STORE=str(store), COLUMNS=str(columns))
    return subprocess.run(
        [sys.executable, "-m", "querywatch", *args],
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
    )


def assert_safe(text: str, *shown: str) -> None:
    for raw in RAW:
        assert raw not in text, f"{raw!r} printed raw in {text!r}"
    for needle in shown:
        assert needle in " ".join(text.split()), f"{needle!r} not shown in {text!r}"


def test_the_helper_escapes_controls_and_keeps_text() -> None:
    assert printable("a\x1b[2Jb\tc\nd") == "a\\x1b[2Jb\tc\nd"
    # Whitespace controls (newline, carriage return) fold into one space on one line.
    assert one_line("a\x1b]0;t\x07\n b\r\u202e\x9b") == "a\\x1b]0;t\\x07 b \\u202e\\x9b"
    assert printable("ok\rhidden") == "ok\\rhidden"
    assert one_line("select (array[?])[i]  from t") == "select (array[?])[i] from t"
    text = safe_text("(array[?])[i] :smile: [bold]x[/]")
    assert text.plain == "(array[?])[i] :smile: [bold]x[/]" and not text.spans


@pytest.fixture
def hostile_store(tmp_path: Path) -> Path:
    path = tmp_path / "store.sqlite3"
    start = int(time.time() // 10 * 10) - 60
    with open_store(path) as store:
        store.write_windows(
            [
                StatementWindow("0123456789abcdef", HOSTILE, start + 10 * i, 50, 90.0, 5.0)
                for i in range(6)
            ]
        )
        d = replace(detection(), normalized=HOSTILE)
        c = replace(culprit(), normalized=HOSTILE)
        incident = service.open_incident(store, [d], [c], triage(), None, "d2", T0 + 31)
        service.add_note(store, incident.id, "all good\rhidden [i]", by="\x1b[2Jmallory")
    return path


@pytest.mark.parametrize("columns", [200, 80])
def test_top_prints_sql_escaped(hostile_store: Path, columns: int) -> None:
    result = run("top", "--since", "1h", store=hostile_store, columns=columns)
    assert result.returncode == 0, result.stderr
    assert_safe(result.stdout, "(array[?])[i]", "\\x1b]0;pw")


def test_incident_list_show_and_postmortem_print_text_escaped(hostile_store: Path) -> None:
    with open_store(hostile_store) as store:
        (incident,) = list_incidents(store)
    for columns in (200, 80):
        listed = run("incidents", store=hostile_store, columns=columns)
        assert listed.returncode == 0, listed.stderr
        assert_safe(listed.stdout, "(array[?])[i]")
    shown = run("incident", "show", incident.id, store=hostile_store)
    assert shown.returncode == 0, shown.stderr
    assert_safe(shown.stdout, *SHOWN, "all good\\rhidden [i]", "\\x1b[2Jmallory")
    postmortem = run("postmortem", incident.id, store=hostile_store)
    assert postmortem.returncode == 0, postmortem.stderr
    assert_safe(postmortem.stdout + postmortem.stderr, "\\x1b]0;pwned")


def test_an_error_naming_outside_text_prints_it_escaped(hostile_store: Path) -> None:
    result = run("incident", "show", "QW-\x1b]0;pwned\x07[i]x", store=hostile_store)
    assert result.returncode == 1
    assert_safe(result.stderr, "no incident QW-\\x1b]0;pwned\\x07[i]x")


def test_watch_no_live_prints_sql_escaped(pg_dsn: str, tmp_path: Path) -> None:
    """`watch --no-live` printed pg_stat_statements' text raw: an identifier holding an OSC
    retitled the terminal, and `(array[?])[i]` showed as `(array[?])`."""
    statement = 'SELECT (ARRAY[1,2,3])[i], 1 AS "\x1b]0;pwned\x07x" FROM generate_series(1, 3) i'
    stop = threading.Event()

    def load() -> None:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            while not stop.is_set():
                conn.execute(statement.encode())
                time.sleep(0.05)

    # Late in the suite pg_stat_statements is full of other tests' entries, and a new one may
    # be evicted before its first read: start from an empty view, as a fresh server has.
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUERYWATCH_")}
    env["COLUMNS"] = "200"
    args = ["watch", "--dsn", pg_dsn, "--store", str(tmp_path / "s.sqlite3"), "--no-detect"]
    watch = subprocess.Popen(
        [sys.executable, "-m", "querywatch", *args, "--interval", "0.3", "--no-live"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    lines: queue.Queue[bytes] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in watch.stdout or ()], daemon=True).start()
    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    seen: list[bytes] = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and not any(b"pwned" in x for x in seen):
            try:
                seen.append(lines.get(timeout=0.5))
            except queue.Empty:
                assert watch.poll() is None, watch.stderr.read() if watch.stderr else ""
    finally:
        stop.set()
        watch.send_signal(signal.SIGINT)
        _, err = watch.communicate(timeout=30)
        loader.join(10)
    out = b"".join(seen).decode("utf-8")
    assert "pwned" in out, (out, err)
    assert_safe(out + err.decode("utf-8"), "(array[?])[i]", '"\\x1b]0;pwned\\x07x"')
