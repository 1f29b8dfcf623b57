"""The agent imports only what it runs: `watch`'s own modules (the agent loop, the
pg_stat_statements source, detection, the monitor, alerting, the store) must not pull in the SQL
parser, templates or servers other commands use (issue 11, a lean agent: sqlglot alone is about
11 MiB of the agent's resident memory). Checked in a fresh interpreter, without timing or RSS."""

from __future__ import annotations

import subprocess
import sys

AGENT_MODULES = (
    "querywatch.watch",
    "querywatch.capture.pg_stat_statements",
    "querywatch.detect.regression",
    "querywatch.monitor",
    "querywatch.respond.setup",
    "querywatch.respond.sinks",
    "querywatch.store",
    "querywatch.render",
)
HEAVY = ("sqlglot", "jinja2", "http.server", "xml.etree.ElementTree", "rich.markdown", "pygments")


def test_the_agents_modules_import_no_parser_templates_or_servers() -> None:
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in AGENT_MODULES)
        + f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"the agent imports {result.stdout.strip()}"
