"""Run the real CLI in a subprocess, the way a user does."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path


def run_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("QUERYWATCH_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "querywatch", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@contextlib.contextmanager
def served(
    *args: str, cwd: Path, env: dict[str, str] | None = None, banner: str = r"on (http://\S+) "
) -> Iterator[str]:
    """``querywatch serve --port 0 ARGS`` as a user starts it (settings from ``env`` only); its
    URL from the banner (which must match ``banner``, the URL its first group), and the server
    stopped afterwards."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("QUERYWATCH_")}
    full_env.update(env or {})
    process = subprocess.Popen(
        [sys.executable, "-m", "querywatch", "serve", "--port", "0", *args],
        cwd=cwd,
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        first = process.stderr.readline()
        found = re.search(banner, first)
        assert found, first
        yield found.group(1)
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """A failed command says what is wrong in one line: no traceback, non-zero exit."""
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]
