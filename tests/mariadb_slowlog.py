"""A real MariaDB slow log: the machine's MariaDB (127.0.0.1:3306, root, no password) logs one
session of a small shop workload into a file of ours.

Only the workload's own session is logged: the server's ``slow_query_log`` is switched on with
its ``long_query_time`` left as it was (10 s), and the session sets its own ``long_query_time=0``.
The server's log file setting is restored afterwards. The workload runs through the ``mariadb``
client (``--comments`` keeps the comments it sends, as an application's driver would).

``python tests/mariadb_slowlog.py tests/fixtures/mariadb-slow.log`` captures the committed
fixture again; ``EXPECTED`` is what both the fixture and a fresh capture must digest to.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOST = "127.0.0.1"
DATABASE = "qw_slowlog"

# normalized text (querywatch.sql.fingerprint, dialect mysql) -> calls
EXPECTED: dict[str, int] = {
    "set session long_query_time = ?": 1,
    "set session log_slow_verbosity = ?": 1,
    "drop table if exists items": 1,
    "create table items(id int primary key, name varchar(?), price int)": 1,
    "insert into items(id, name, price) values (?, ?, ?)": 20,
    "select name, price from items where id = ?": 30,
    "select id, name from items where id in (?) order by id": 5,
    "update items set price = price + ? where id = ?": 10,
    "select count(*) from missing_table": 1,  # failed: logged all the same
    "select sleep(?)": 1,
    "select name from items where price < ? and name <> ? order by price": 2,
    "flush slow logs": 1,
    "select database()": 3,  # the client's "use" command asks for it
    "select count(*) from qw_slowlog.items": 1,
}
STATEMENTS = sum(EXPECTED.values())


def workload() -> str:
    """The session's SQL (a mariadb client script): every statement is one slow log entry."""
    out = [
        "SET SESSION long_query_time = 0;",
        "SET SESSION log_slow_verbosity = 'query_plan,explain';",
        "DROP TABLE IF EXISTS items;",
        "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40), price INT);",
    ]
    out += [
        f"INSERT INTO items (id, name, price) VALUES ({i}, 'item {i}', {i * 10});"
        for i in range(1, 21)
    ]
    out += [f"SELECT name, price FROM items WHERE id = {i % 20 + 1};" for i in range(30)]
    out += [  # multi-line, IN lists of several lengths
        "SELECT id, name\n  FROM items\n WHERE id IN ("
        + ", ".join(str(j) for j in range(1, n + 2))
        + ")\n ORDER BY id;"
        for n in range(5)
    ]
    out += [f"UPDATE items SET price = price + 1 WHERE id = {i};" for i in range(1, 11)]
    out += [
        "SELECT count(*) FROM missing_table;",  # fails: still logged
        "SELECT sleep(0.05);",
        # A comment line starting with "#" inside a statement, and a string holding "; \n"
        "SELECT name FROM items\n# cheap ones first\nWHERE price < 50 AND name <> 'a;\nb'\n"
        "ORDER BY price;",
        "FLUSH SLOW LOGS;",  # the server writes its header lines again, mid-file
        "SELECT name FROM items WHERE price < 70 AND name <> 'x' -- trailing comment\n"
        "ORDER BY price;",
        "use test",  # client command: the log shows "SELECT DATABASE()" and a new "use"
        f"SELECT count(*) FROM {DATABASE}.items;",
        f"use {DATABASE}",
        f"USE {DATABASE};",
    ]
    return "\n".join(out) + "\n"


def available() -> bool:
    """The mariadb client is installed and the server answers as root without a password."""
    client = shutil.which("mariadb") or shutil.which("mysql")
    if client is None:
        return False
    try:
        done = subprocess.run(
            [client, "-uroot", f"-h{HOST}", "--connect-timeout=3", "-e", "SELECT 1"],
            capture_output=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _client(sql: str, *extra: str) -> str:
    client = shutil.which("mariadb") or shutil.which("mysql") or "mariadb"
    done = subprocess.run(
        [client, "-uroot", f"-h{HOST}", "--batch", *extra],
        input=sql,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0 and "missing_table" not in done.stderr:
        raise RuntimeError(f"mariadb client failed: {done.stderr.strip()}")
    return done.stdout


def capture(dest: Path) -> Path:
    """Run the workload with the slow log going to a temp file; copy it to ``dest``."""
    old = _client(
        "SELECT @@global.slow_query_log_file, @@global.slow_query_log, @@global.log_output;"
    )
    old_file, old_on, old_output = old.splitlines()[-1].split("\t")
    tmp = Path(tempfile.mkdtemp(prefix="qw-slowlog-"))
    os.chmod(tmp, 0o777)  # the server writes it as its own OS user
    log = tmp / "slow.log"
    try:
        _client(f"CREATE DATABASE IF NOT EXISTS {DATABASE};")
        _client(
            f"SET GLOBAL slow_query_log_file = '{log}'; SET GLOBAL log_output = 'FILE';"
            " SET GLOBAL slow_query_log = 1;"
        )
        # --force: carry on past the failing statement, as an application would
        _client(workload(), "--comments", "--force", DATABASE)
        time.sleep(0.1)
        shutil.copyfile(log, dest)
    finally:
        _client(
            f"SET GLOBAL slow_query_log = {old_on}; SET GLOBAL log_output = '{old_output}';"
            f" SET GLOBAL slow_query_log_file = '{old_file}'; DROP DATABASE IF EXISTS {DATABASE};"
        )
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


if __name__ == "__main__":
    print(capture(Path(sys.argv[1])))
