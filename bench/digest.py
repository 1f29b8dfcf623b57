"""Log digest side by side: querywatch digest against pgBadger and pt-query-digest, same files.

Generates the logs, then runs every tool on them in one run:

- a PostgreSQL stderr log from pgbench (TPC-B-like, simple protocol) on a throwaway cluster with
  ``log_min_duration_statement = 0`` and ``log_line_prefix = '%m [%p] %q%u@%d '`` (Debian's
  default), ``--pg-mib`` MiB;
- a MariaDB slow log from sysbench ``oltp_read_write`` against the machine's MariaDB
  (127.0.0.1:3306, root, no password), ``--mysql-mib`` MiB. The server's global
  ``long_query_time`` is 0 while sysbench runs (sysbench cannot set it per session); it and the
  slow log settings are restored afterwards.

Then pgBadger (``-j 1`` and ``-j 2``) and ``querywatch digest`` (``-j 1`` and ``-j 2``) on the
PostgreSQL log, pt-query-digest and ``querywatch digest`` on the slow log, each as its own process,
measured for wall time, CPU time (user + system of the process and its children, from wait4:
the fairer figure when other work shares the machine), MiB/s, statements/s and peak RSS (each
process's VmHWM and the process tree's summed VmRSS, sampled from /proc every 50 ms). Calls and
total time of the top 20 are compared after putting each querywatch fingerprint into the group
the other tool puts its slowest sample in (``group_pgbadger`` / ``group_pt`` below port the
tool's own normalization), and the differences in grouping are listed. With ``--big-gib`` the
PostgreSQL log is repeated into a file of that size and only querywatch reads it (peak RSS
against log size).

    .venv/bin/python bench/digest.py [--pg-mib 200] [--mysql-mib 100] [--work DIR] [--reuse]
        [--big-gib 1] [--skip-pg] [--skip-mysql] [--jobs 1,2]

Prerequisites (Debian packages, not needed by the test suite): ``scripts/install-bench-deps.sh``
installs pgbadger, percona-toolkit and sysbench. Goals (issue 15): PostgreSQL stderr at least 5x
pgBadger -j 1 in one process, slow log at least 3x pt-query-digest, peak RSS under 100 MB for a
1 GB log, counts and total times within 0.5% for the top 20.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

ROOT = Path(__file__).resolve().parent.parent
QUERYWATCH = str(Path(sys.executable).parent / "querywatch")
PG_PREFIX = "%m [%p] %q%u@%d "
MYSQL_DB = "qw_bench_slowlog"
MIB = 1 << 20


# -- measuring a process ------------------------------------------------------------------------
@dataclass
class Run:
    tool: str
    log: str
    seconds: float
    cpu_seconds: float  # user + system, the process and its waited-for children (wait4)
    peak_rss_mib: float  # the largest single process (its VmHWM, sampled)
    tree_rss_mib: float  # the process tree's sum, sampled
    mib: float
    statements: int = 0
    groups: dict[str, tuple[int, float]] = field(default_factory=dict)  # key -> (calls, ms)

    @property
    def mib_s(self) -> float:
        return self.mib / self.seconds

    @property
    def stmt_s(self) -> float:
        return self.statements / self.seconds


def _tree_memory(root: int, hwm: dict[int, int]) -> int:
    """Resident bytes of ``root`` and its descendants now, from /proc; records each one's own
    peak (VmHWM, which starts again at exec, unlike wait4's ru_maxrss) in ``hwm``."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        parents[int(entry)] = int(stat[stat.rfind(b")") + 2 :].split()[1])
    total, todo, seen = 0, [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            with open(f"/proc/{pid}/status", "rb") as f:
                status = f.read()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith(b"VmRSS:"):
                total += int(line.split()[1]) * 1024
            elif line.startswith(b"VmHWM:"):
                hwm[pid] = max(hwm.get(pid, 0), int(line.split()[1]) * 1024)
        todo.extend(p for p, parent in parents.items() if parent == pid)
    return total


def measure(cmd: Sequence[str], stdout: Path) -> tuple[float, float, float, float]:
    """Run ``cmd`` (its output to ``stdout``): wall seconds, CPU seconds, peak RSS MiB of the
    largest process, peak RSS MiB of the whole process tree."""
    with open(stdout, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE)
        peak = 0
        hwm: dict[int, int] = {}
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.wait(0.05):
                peak = max(peak, _tree_memory(proc.pid, hwm))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): {err[-2000:]}")
    largest = max(hwm.values(), default=0) / MIB
    return seconds, usage.ru_utime + usage.ru_stime, largest, max(peak / MIB, largest)


# -- generating the logs ------------------------------------------------------------------------
def pg_log(work: Path, mib: int, reuse: bool) -> Path:
    """A pgbench stderr log of at least ``mib`` MiB (runs of 20 s until it is that large)."""
    from pg_cluster import running_cluster

    log = work / "postgresql.log"
    if reuse and log.exists() and log.stat().st_size >= mib * MIB:
        return log
    logdir = work / "pglog"
    shutil.rmtree(logdir, ignore_errors=True)
    logdir.mkdir(parents=True)
    if os.geteuid() == 0:
        shutil.chown(logdir, "postgres", "postgres")
    settings = {
        "logging_collector": "on",
        "log_directory": f"'{logdir}'",
        "log_filename": "'postgresql.log'",
        "log_rotation_size": "0",
        "log_min_duration_statement": "0",
        "log_line_prefix": f"'{PG_PREFIX}'",
        "lc_messages": "'C'",
        "log_checkpoints": "off",
    }
    with running_cluster(settings) as dsn:
        port = dsn.rsplit(":", 1)[1].split("/")[0]
        base = ["pgbench", "-h", "127.0.0.1", "-p", port, "-U", "postgres"]
        subprocess.run([*base, "-i", "-s", "10", "-q", "postgres"], check=True, capture_output=True)
        produced = logdir / "postgresql.log"
        while produced.stat().st_size < mib * MIB:
            print(f"  pgbench: log at {produced.stat().st_size / MIB:.0f} MiB", flush=True)
            subprocess.run(
                [*base, "-c", "4", "-j", "2", "-T", "20", "-M", "simple", "postgres"],
                check=True,
                capture_output=True,
            )
        time.sleep(1)  # the logging collector's last writes
        shutil.copyfile(produced, log)
    shutil.rmtree(logdir, ignore_errors=True)
    return log


def _mariadb(sql: str) -> str:
    done = subprocess.run(
        ["mariadb", "-uroot", "-h127.0.0.1", "--batch", "--skip-column-names", "-e", sql],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


@contextlib.contextmanager
def slow_logging(path: Path) -> Iterator[None]:
    """The server's slow log into ``path`` with long_query_time 0; settings restored after."""
    old = _mariadb(
        "SELECT @@global.slow_query_log_file, @@global.slow_query_log, "
        "@@global.long_query_time, @@global.log_output"
    ).split("\t")
    old_file, old_on, old_time, old_output = (v.strip() for v in old)
    try:
        _mariadb(
            f"SET GLOBAL slow_query_log_file = '{path}'; SET GLOBAL log_output = 'FILE';"
            " SET GLOBAL long_query_time = 0; SET GLOBAL slow_query_log = 1;"
        )
        yield
    finally:
        _mariadb(
            f"SET GLOBAL slow_query_log = {old_on}; SET GLOBAL long_query_time = {old_time};"
            f" SET GLOBAL log_output = '{old_output}';"
            f" SET GLOBAL slow_query_log_file = '{old_file}'"
        )


def mysql_log(work: Path, mib: int, reuse: bool) -> Path:
    """A sysbench oltp_read_write slow log of at least ``mib`` MiB."""
    log = work / "mariadb-slow.log"
    if reuse and log.exists() and log.stat().st_size >= mib * MIB:
        return log
    if shutil.which("sysbench") is None:
        raise SystemExit("sysbench is not installed: run scripts/install-bench-deps.sh")
    common = [
        "--db-driver=mysql",
        "--mysql-host=127.0.0.1",
        "--mysql-user=root",
        "--mysql-password=",
        f"--mysql-db={MYSQL_DB}",
        "--tables=4",
        "--table-size=10000",
    ]
    _mariadb(f"DROP DATABASE IF EXISTS {MYSQL_DB}; CREATE DATABASE {MYSQL_DB}")
    subprocess.run(
        ["sysbench", "oltp_read_write", *common, "prepare"], check=True, capture_output=True
    )
    spool = Path(tempfile.mkdtemp(prefix="qw-bench-slow-"))
    os.chmod(spool, 0o777)  # the server writes the log as its own user
    produced = spool / "slow.log"
    try:
        with slow_logging(produced):
            while not produced.exists() or produced.stat().st_size < mib * MIB:
                size = produced.stat().st_size if produced.exists() else 0
                print(f"  sysbench: log at {size / MIB:.0f} MiB", flush=True)
                subprocess.run(
                    [
                        "sysbench",
                        "oltp_read_write",
                        *common,
                        "--threads=2",
                        "--time=20",
                        "--mysql-ignore-errors=1213,1205,1020",
                        "run",
                    ],
                    check=True,
                    capture_output=True,
                )
        shutil.copyfile(produced, log)
    finally:
        shutil.rmtree(spool, ignore_errors=True)
        _mariadb(f"DROP DATABASE IF EXISTS {MYSQL_DB}")
    return log


# -- each tool's grouping -----------------------------------------------------------------------
def _squeeze(text: str) -> str:
    """The key both sides are compared by: no spaces, no case, constants as "?" (querywatch
    makes TRUE, FALSE and NULL placeholders as pg_stat_statements does; pgBadger keeps them)."""
    text = re.sub(r"\b(?:true|false|null)\b(?<!\bis null)(?<!\bnot null)", "?", text.lower())
    return re.sub(r"\s+", "", text).rstrip(";")


def group_pgbadger(text: str) -> str:
    """pgBadger 12's normalize_query on a statement as logged, then the comparison key."""
    q = re.sub(r"/\*(.*?)\*/", "", text, flags=re.S)
    names: list[str] = []

    def keep(m: re.Match[str]) -> str:
        names.append(m[1])
        return f"\x00{len(names) - 1}\x00"

    q = re.sub(r'("[^"]+")', keep, q)
    q = re.sub(r"\x00(\d+)\x00", lambda m: names[int(m[1])], q.lower())
    q = re.sub(r"\\'", "", q)
    q = re.sub(r"'[^']*'", "?", q)
    q = re.sub(r"\?(\?)+", "?", q)
    q = re.sub(r"\s*--[^\n]+[\n]", "\n", q)
    q = re.sub(r"\s+", " ", q)
    if not re.fullmatch(r"\s*begin\s*;\s*", q):
        q = re.sub(r"^\s*begin\s*;\s*", "", q)
    q = re.sub(r"=\s*null", "= ?", q)
    q = re.sub(r"([^a-z0-9_$\-])-?\d+", r"\1?", q)
    q = re.sub(r"([^a-z_$-])0x[0-9a-f]{1,10}", r"\1?", q)
    q = re.sub(r"\$\d+", "?", q)
    q = re.sub(r"\bin\s*\(['0x,\s?]*\)", "in (...)", q)
    return _squeeze(q.strip())


def group_pt(text: str) -> str:
    """pt-query-digest 3.2's fingerprint (QueryRewriter) on a statement as logged, then the
    comparison key."""
    q = text
    if q.startswith("administrator command: "):
        return _squeeze(q)
    m = re.match(r"\s*(call\s+\S+)\(", q, flags=re.I)
    if m:
        return _squeeze(m[1])
    m = re.match(
        r"((?:INSERT|REPLACE)(?: IGNORE)?\s+INTO.+?VALUES\s*\(.*?\))\s*,\s*\(", q, re.I | re.S
    )
    if m:
        q = m[1]
    q = re.sub(r"/\*[^!].*?\*/", "", q, flags=re.S)
    q = re.sub(r"(?:--|#)[^'\"\r\n]*(?=[\r\n]|\Z)", "", q)
    if re.fullmatch(r"use \S+", q, flags=re.I):
        return "use?"
    q = re.sub(r"\\[\"']", "", q)
    q = re.sub(r'".*?"', "?", q, flags=re.S)
    q = re.sub(r"'.*?'", "?", q, flags=re.S)
    q = re.sub(r"\bfalse\b|\btrue\b", "?", q, flags=re.I)
    q = re.sub(r"[0-9+-][0-9a-f.xb+-]*", "?", q)
    q = re.sub(r"[xb.+-]\?", "?", q)
    q = " ".join(q.split()).lower()
    q = re.sub(r"\bnull\b", "?", q)
    q = re.sub(r"\b(in|values?)(?:[\s,]*\([\s?,]*\))+", r"\1(?+)", q)
    q = re.sub(r"\b(select\s.*?)(?:(\sunion(?:\sall)?)\s\1)+", r"\1 /*repeat\2*/", q)
    q = re.sub(r"\blimit \?(?:, ?\?| offset \?)?", "limit ?", q, count=1)
    if re.search(r"\border by ", q):
        q = re.sub(r"\s+asc\b", "", q)
    return _squeeze(q)


# -- running the tools --------------------------------------------------------------------------
def run_querywatch(log: Path, jobs: int, work: Path, group: Callable[[str], str]) -> Run:
    out = work / f"qw-{log.stem}-j{jobs}.json"
    cmd = [QUERYWATCH, "digest", "--json", "--show-values", "--limit", "100000"]
    cmd += ["-j", str(jobs), str(log)]
    seconds, cpu, rss, tree = measure(cmd, out)
    data = json.loads(out.read_text())["data"]
    groups: dict[str, tuple[int, float]] = defaultdict(lambda: (0, 0.0))
    members: dict[str, list[str]] = defaultdict(list)
    for fp in data["fingerprints"]:
        key = group(fp["sample"]["text"])  # each fingerprint goes where the tool puts its sample
        calls, total = groups[key]
        groups[key] = (calls + fp["calls"], total + fp["total_ms"])
        members[key].append(fp["normalized"])
    run = Run(f"querywatch -j {jobs}", log.name, seconds, cpu, rss, tree, log.stat().st_size / MIB)
    run.statements = data["statements"]
    run.groups = dict(groups)
    MEMBERS[(log.name, "querywatch")] = dict(members)
    return run


MEMBERS: dict[tuple[str, str], dict[str, list[str]]] = {}


def run_pgbadger(log: Path, jobs: int, work: Path) -> Run:
    out = work / f"pgbadger-j{jobs}.json"
    cmd = [
        "pgbadger",
        "-j",
        str(jobs),
        "--prefix",
        PG_PREFIX,
        "-f",
        "stderr",
        "-x",
        "json",
        "-o",
        "-",
        "--quiet",
        str(log),
    ]
    seconds, cpu, rss, tree = measure(cmd, out)
    data = json.loads(out.read_text())
    groups: dict[str, tuple[int, float]] = defaultdict(lambda: (0, 0.0))
    members: dict[str, list[str]] = defaultdict(list)
    statements = 0
    for per_db in data["normalyzed_info"].values():
        for query, info in per_db.items():
            key = group_pgbadger(query)
            calls, total = groups[key]
            groups[key] = (calls + int(info["count"]), total + float(info["duration"]))
            members[key].append(query)
            statements += int(info["count"])
    run = Run(f"pgBadger -j {jobs}", log.name, seconds, cpu, rss, tree, log.stat().st_size / MIB)
    run.statements = statements
    run.groups = dict(groups)
    MEMBERS[(log.name, "pgBadger")] = dict(members)
    return run


def run_pt(log: Path, work: Path) -> Run:
    out = work / "pt-query-digest.json"
    cmd = ["pt-query-digest", "--output", "json", "--limit", "100000", str(log)]
    seconds, cpu, rss, tree = measure(cmd, out)
    data = json.loads(out.read_text())
    groups: dict[str, tuple[int, float]] = defaultdict(lambda: (0, 0.0))
    members: dict[str, list[str]] = defaultdict(list)
    statements = 0
    for cls in data["classes"]:
        key = _squeeze(cls["fingerprint"])
        calls, total = groups[key]
        count = int(cls["query_count"])
        ms = float(cls["metrics"]["Query_time"]["sum"]) * 1000.0
        groups[key] = (calls + count, total + ms)
        members[key].append(cls["fingerprint"])
        statements += count
    run = Run("pt-query-digest", log.name, seconds, cpu, rss, tree, log.stat().st_size / MIB)
    run.statements = statements
    run.groups = dict(groups)
    MEMBERS[(log.name, "pt-query-digest")] = dict(members)
    return run


# -- reporting ----------------------------------------------------------------------------------
def speed_table(runs: list[Run], baseline: Run) -> list[str]:
    rows = [
        "| tool | MiB | wall s | MiB/s | statements/s | x baseline | CPU s | x baseline (CPU) "
        "| peak RSS MiB (largest process) | peak RSS MiB (all processes) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        rows.append(
            f"| {r.tool} | {r.mib:.0f} | {r.seconds:.1f} | {r.mib_s:.2f} | {r.stmt_s:,.0f} | "
            f"{r.mib_s / baseline.mib_s:.2f}x | {r.cpu_seconds:.1f} | "
            f"{baseline.cpu_seconds / r.cpu_seconds:.2f}x | {r.peak_rss_mib:.0f} | "
            f"{r.tree_rss_mib:.0f} |"
        )
    return rows


def agreement(ours: Run, theirs: Run, top: int = 20) -> list[str]:
    """The top groups by our total time, side by side, under a line saying how many agree
    within 0.5% (calls and total time) and the statement totals."""
    rows = [
        f"| # | {theirs.tool} group | calls (querywatch) | calls ({theirs.tool}) | "
        f"total ms (querywatch) | total ms ({theirs.tool}) | Δ calls | Δ time | qw fingerprints |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    agree = 0
    ranked = sorted(ours.groups.items(), key=lambda kv: -kv[1][1])[:top]
    members = MEMBERS.get((ours.log, "querywatch"), {})
    for i, (key, (calls, total)) in enumerate(ranked, 1):
        other_calls, other_total = theirs.groups.get(key, (0, 0.0))
        dc = abs(calls - other_calls) / max(calls, 1)
        dt = abs(total - other_total) / max(total, 1e-9)
        agree += dc <= 0.005 and dt <= 0.005
        label = key if len(key) <= 60 else key[:57] + "..."
        rows.append(
            f"| {i} | `{label}` | {calls:,} | {other_calls:,} | {total:,.1f} | "
            f"{other_total:,.1f} | {dc:.3%} | {dt:.3%} | {len(members.get(key, []))} |"
        )
    head = (
        f"{agree} of the {len(ranked)} groups compared (the top {top} by querywatch's total time, "
        f"or all there are) within 0.5% of {theirs.tool} in calls and total time. Statements: "
        f"querywatch {ours.statements:,}, {theirs.tool} {theirs.statements:,}."
    )
    return [head, "", *rows]


def grouping_notes(ours: Run, theirs: Run) -> list[str]:
    """Where one tool's group holds several of the other's."""
    notes = []
    ours_members = MEMBERS.get((ours.log, "querywatch"), {})
    for texts in sorted(ours_members.values(), key=len, reverse=True):
        if len(texts) > 1:
            shown = "; ".join(f"`{t[:70]}`" for t in texts[:4])
            notes.append(
                f"- {theirs.tool} has one group for {len(texts)} querywatch fingerprints: {shown}"
            )
    missing = set(theirs.groups) - set(ours.groups)
    for key in sorted(missing, key=lambda k: -theirs.groups[k][0])[:5]:
        calls, _ = theirs.groups[key]
        notes.append(f"- only {theirs.tool}: `{key[:80]}` ({calls:,} calls)")
    extra = set(ours.groups) - set(theirs.groups)
    for key in sorted(extra, key=lambda k: -ours.groups[k][0])[:5]:
        calls, _ = ours.groups[key]
        notes.append(f"- only querywatch: `{key[:80]}` ({calls:,} calls)")
    return notes


def big_log(source: Path, work: Path, gib: float) -> Path:
    """``source`` repeated into a file of about ``gib`` GiB."""
    big = work / f"big-{source.name}"
    want = int(gib * (1 << 30))
    if big.exists() and big.stat().st_size >= want:
        return big
    with open(big, "wb") as f:
        while f.tell() < want:
            with open(source, "rb") as src:
                shutil.copyfileobj(src, f, 8 * MIB)
    return big


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pg-mib", type=int, default=200)
    ap.add_argument("--mysql-mib", type=int, default=100)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "qw-bench-digest")
    ap.add_argument("--reuse", action="store_true", help="reuse logs of the asked size in --work")
    ap.add_argument("--big-gib", type=float, default=1.0, help="0 to skip the RSS run")
    ap.add_argument("--skip-pg", action="store_true")
    ap.add_argument("--skip-mysql", action="store_true")
    ap.add_argument("--jobs", default="1,2")
    args = ap.parse_args()
    jobs = [int(j) for j in args.jobs.split(",")]
    for tool in ("pgbadger", "pt-query-digest", "pgbench"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed: run scripts/install-bench-deps.sh")
    args.work.mkdir(parents=True, exist_ok=True)
    out: list[str] = [
        f"Command: `.venv/bin/python bench/digest.py {' '.join(sys.argv[1:])}`".rstrip(),
        f"Date: {time.strftime('%Y-%m-%d %H:%M')}; load average before: {os.getloadavg()[0]:.2f}",
        "",
    ]
    if not args.skip_pg:
        print("generating the PostgreSQL log", flush=True)
        log = pg_log(args.work, args.pg_mib, args.reuse)
        runs = [run_pgbadger(log, j, args.work) for j in jobs]
        ours = [run_querywatch(log, j, args.work, group_pgbadger) for j in jobs]
        out += [f"### PostgreSQL stderr log (pgbench, prefix `{PG_PREFIX}`)", ""]
        out += speed_table(runs + ours, runs[0])
        out += ["", *agreement(ours[0], runs[0]), ""]
        out += grouping_notes(ours[0], runs[0]) or ["- same grouping"]
        out.append("")
        if args.big_gib:
            big = big_log(log, args.work, args.big_gib)
            run = run_querywatch(big, 1, args.work, group_pgbadger)
            out += [
                f"querywatch -j 1 on {run.mib / 1024:.2f} GiB (the log above, repeated): peak RSS "
                f"{run.peak_rss_mib:.0f} MiB, {run.mib_s:.1f} MiB/s, {run.cpu_seconds:.0f} s CPU "
                f"({run.statements:,} statements).",
                "",
            ]
    if not args.skip_mysql:
        print("generating the MariaDB slow log", flush=True)
        log = mysql_log(args.work, args.mysql_mib, args.reuse)
        pt = run_pt(log, args.work)
        ours = [run_querywatch(log, j, args.work, group_pt) for j in jobs]
        out += ["### MariaDB slow log (sysbench oltp_read_write)", ""]
        out += speed_table([pt, *ours], pt)
        out += ["", *agreement(ours[0], pt), ""]
        out += grouping_notes(ours[0], pt) or ["- same grouping"]
        out.append("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
