"""A throwaway PostgreSQL cluster for the test suite: initdb + pg_ctl on a temp dir and a free port.

initdb and postgres refuse to run as root; when the suite runs as root (as CI does) the server runs
as the unprivileged ``postgres`` OS user that Debian's server package creates.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "shared_preload_libraries": "'pg_stat_statements'",
    "pg_stat_statements.track": "all",
    "track_io_timing": "on",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "100",
}


class ClusterUnavailable(RuntimeError):
    pass


def find_bindir() -> Path:
    """The directory with initdb/pg_ctl: PG_BINDIR, then Debian's newest, then PATH."""
    if env := os.environ.get("PG_BINDIR"):
        return Path(env)
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    if debian:
        return debian[0].parent
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise ClusterUnavailable(
        "PostgreSQL server binaries not found: install postgresql-15 and postgresql-contrib "
        "(Debian: apt-get install postgresql-15 postgresql-contrib postgresql-15-hypopg) "
        "or set PG_BINDIR"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise ClusterUnavailable(
            "running as root needs a 'postgres' OS user to run the server"
        ) from exc
    return ["runuser", "-u", "postgres", "--", *cmd]


@contextlib.contextmanager
def running_cluster(settings: dict[str, str] | None = None) -> Iterator[str]:
    """Start a cluster, yield a DSN for its ``postgres`` database, and always stop it.

    ``settings`` adds to or overrides :data:`SERVER_SETTINGS` (values as postgresql.conf spells
    them), e.g. ``{"pg_stat_statements.max": "20000"}`` for a bench that needs more entries.
    """
    bindir = find_bindir()
    root = Path(tempfile.mkdtemp(prefix="querywatch-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(root, entry.pw_uid, entry.pw_gid)
    port = free_port()
    started = False
    try:
        subprocess.run(
            _as_server_user(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C",
                ]
            ),
            check=True,
            capture_output=True,
            text=True,
        )
        with open(data / "postgresql.conf", "a") as conf:
            conf.write(f"port = {port}\nunix_socket_directories = '{root}'\n")
            for name, value in {**SERVER_SETTINGS, **(settings or {})}.items():
                conf.write(f"{name} = {value}\n")
        subprocess.run(
            _as_server_user(
                [
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(root / "log"),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
            text=True,
        )
        started = True
        dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        yield dsn
    except subprocess.CalledProcessError as exc:
        log = (root / "log").read_text() if (root / "log").exists() else ""
        raise ClusterUnavailable(f"{exc.cmd[-1]} failed: {exc.stderr}{log}") from exc
    finally:
        if started:
            subprocess.run(
                _as_server_user(
                    [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
                ),
                capture_output=True,
            )
        shutil.rmtree(root, ignore_errors=True)


def restart(dsn: str, mode: str = "fast") -> None:
    """Restart the cluster behind ``dsn`` (``immediate`` simulates a crash)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SHOW data_directory").fetchone()
    assert row is not None
    data = row[0]
    subprocess.run(
        _as_server_user(
            [
                str(find_bindir() / "pg_ctl"),
                "-D",
                data,
                "-m",
                mode,
                "-w",
                "restart",
                "-l",
                str(Path(data).parent / "log"),
            ]
        ),
        check=True,
        capture_output=True,
    )


def data_directory(dsn: str) -> str:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SHOW data_directory").fetchone()
    assert row is not None
    return str(row[0])


def pg_ctl(data: str, action: str, mode: str = "fast") -> None:
    """Stop or start the cluster in ``data`` (to simulate a database going away and coming back)."""
    cmd = [str(find_bindir() / "pg_ctl"), "-D", data, "-w"]
    cmd += (
        ["-m", mode, "stop"]
        if action == "stop"
        else ["-l", str(Path(data).parent / "log"), "start"]
    )
    subprocess.run(_as_server_user(cmd), check=True, capture_output=True)
