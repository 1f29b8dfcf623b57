"""A PostgreSQL for the corpus (throwaway or persistent) and the corpus databases on it.

Each schema file under ``schema/`` becomes one database of the same name. Loading is skipped when
the database already holds the data of the same file (its sha256 is kept in ``corpus_meta``), so a
persistent ``--data-dir`` makes reruns start in seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg

HERE = Path(__file__).resolve().parent
SCHEMA_DIR = HERE / "schema"
sys.path.insert(0, str(HERE.parent.parent / "tests"))

from pg_cluster import (  # noqa: E402
    SERVER_SETTINGS,
    _as_server_user,
    find_bindir,
    free_port,
    running_cluster,
)

# Measured labels depend on these; they are what a modest production server runs with.
# JIT is off so that compile time (hundreds of ms on a 2-core machine) does not decide labels.
BENCH_SETTINGS = {**SERVER_SETTINGS, "shared_buffers": "'1GB'", "jit": "off"}


def schemas() -> list[str]:
    return sorted(p.stem for p in SCHEMA_DIR.glob("*.sql"))


def schema_dsn(admin_dsn: str, schema: str) -> str:
    base, _, rest = admin_dsn.rpartition("/")
    query = rest.partition("?")[2]
    return f"{base}/{schema}" + (f"?{query}" if query else "")


@contextlib.contextmanager
def persistent_cluster(data_dir: Path) -> Iterator[str]:
    """Start (after initdb, the first time) a cluster kept in ``data_dir``; stop it on exit.

    When the cluster is already running (another run is using it) it is used and left running.
    """
    bindir = find_bindir()
    data_dir = data_dir.resolve()
    data = data_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(data_dir, entry.pw_uid, entry.pw_gid)
    if not (data / "PG_VERSION").exists():
        subprocess.run(
            _as_server_user(
                [
                    *(str(bindir / "initdb"), "-D", str(data), "-U", "postgres"),
                    *("--auth=trust", "-E", "UTF8", "--locale=C"),
                ]
            ),
            check=True,
            capture_output=True,
            text=True,
        )
        with open(data / "postgresql.conf", "a") as conf:
            conf.write(f"unix_socket_directories = '{data_dir}'\n")
            for name, value in BENCH_SETTINGS.items():
                conf.write(f"{name} = {value}\n")
    pid_file = data / "postmaster.pid"
    if pid_file.exists():
        status = subprocess.run(
            _as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "status"]),
            capture_output=True,
        )
        if status.returncode == 0:  # already running (another bench run): use it, leave it up
            port = int(pid_file.read_text().splitlines()[3])
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
            return
    port = free_port()
    log = data_dir / "log"
    subprocess.run(
        _as_server_user(
            [
                *(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log)),
                *("-w", "-t", "60", "-o", f"-p {port}", "start"),
            ]
        ),
        check=True,
        capture_output=True,
        text=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
            capture_output=True,
        )


@contextlib.contextmanager
def cluster(data_dir: Path | None) -> Iterator[str]:
    """A persistent cluster in ``data_dir``, or a throwaway one (tests/pg_cluster.py)."""
    if data_dir is not None:
        with persistent_cluster(data_dir) as dsn:
            yield dsn
        return
    with running_cluster() as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for name, value in BENCH_SETTINGS.items():
                if name in ("shared_buffers", "jit"):
                    conn.execute(f"ALTER SYSTEM SET {name} = {value}")
        from pg_cluster import restart

        restart(dsn)
        yield dsn


def _digest(schema: str) -> str:
    return hashlib.sha256((SCHEMA_DIR / f"{schema}.sql").read_bytes()).hexdigest()


def loaded(admin_dsn: str, schema: str) -> bool:
    try:
        with psycopg.connect(schema_dsn(admin_dsn, schema), autocommit=True) as conn:
            row = conn.execute("SELECT digest FROM corpus_meta").fetchone()
    except psycopg.Error:
        return False
    return row is not None and row[0] == _digest(schema)


def load_schema(admin_dsn: str, schema: str, log: bool = True) -> float:
    """(Re)create database ``schema`` from its file; returns the seconds it took."""
    start = time.perf_counter()
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{schema}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{schema}"')
    text = (SCHEMA_DIR / f"{schema}.sql").read_text()
    with psycopg.connect(schema_dsn(admin_dsn, schema), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION hypopg")
        # Rows are consistent by construction: skip per-row foreign-key triggers while loading.
        conn.execute("SET session_replication_role = replica")
        conn.execute("SET maintenance_work_mem = '256MB'")
        conn.execute(text.encode())
        conn.execute("RESET session_replication_role")
        conn.execute("VACUUM (ANALYZE, FREEZE)")
        conn.execute("CHECKPOINT")
        conn.execute("CREATE TABLE corpus_meta (digest text NOT NULL)")
        conn.execute("INSERT INTO corpus_meta VALUES (%s)", (_digest(schema),))
    took = time.perf_counter() - start
    if log:
        print(f"loaded {schema} in {took:.1f} s", file=sys.stderr)
    return took


def ensure_loaded(admin_dsn: str, only: list[str] | None = None) -> dict[str, str]:
    """Load every schema (in parallel) that is not loaded yet; DSN per schema."""
    wanted = [s for s in schemas() if only is None or s in only]
    todo = [s for s in wanted if not loaded(admin_dsn, s)]
    errors: list[BaseException] = []

    def run(schema: str) -> None:
        try:
            load_schema(admin_dsn, schema)
        except BaseException as exc:  # reported below, in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in todo]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return {s: schema_dsn(admin_dsn, s) for s in wanted}
