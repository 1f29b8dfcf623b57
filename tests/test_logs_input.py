"""What `querywatch digest` is given besides a clean log: compressed files, rotated sets, bad
lines, the wrong format or prefix, empty files; and `--store`, where deploys split the digest.

The logs are real (the suite's PostgreSQL running tests/log_workload.py); the damage is ours.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import zstandard

from cli_helpers import assert_one_line_error, run_cli
from log_workload import LOCKED, LOOKUP, Workload, shared_logs
from querywatch import deploys
from querywatch.logs.model import LogFormatError, ParseOptions
from querywatch.logs.reader import LogFile, expand, rotation_order
from querywatch.logs.report import digest_json
from querywatch.logs.scan import digest_files, plan_files
from querywatch.sql.fingerprint import fingerprint
from querywatch.store import open_store


@pytest.fixture(scope="module")
def logs() -> tuple[Path, Workload]:
    return shared_logs("duration")


def counts(*paths: Path) -> dict[str, tuple[int, float, int]]:
    digest, reports = digest_files(plan_files(list(paths)))
    data = digest_json(digest, reports)
    return {
        r["fingerprint"]: (r["calls"], r["total_ms"], r["errors"]) for r in data["fingerprints"]
    }


def data_of(*args: str) -> dict[str, Any]:
    result = run_cli("digest", *args, "--json", "--limit", "100")
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)["data"]
    return data


@pytest.mark.parametrize("kind", ["gzip", "bz2", "xz", "zstd"])
def test_compressed_logs_read_as_the_plain_one(
    logs: tuple[Path, Workload], tmp_path: Path, kind: str
) -> None:
    raw = (logs[0] / "pg.log").read_bytes()
    packed = {
        "gzip": gzip.compress,
        "bz2": bz2.compress,
        "xz": lzma.compress,
        "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
    }[kind](raw)
    path = tmp_path / "postgresql.log.1"  # the name says nothing: the magic bytes tell
    path.write_bytes(packed)
    assert counts(path) == counts(logs[0] / "pg.log")


def test_zstd_without_the_package_uses_the_command(
    logs: tuple[Path, Workload], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("zstd") is None:
        pytest.fail("the zstd command is part of the test system (Debian package zstd)")
    path = tmp_path / "pg.log.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress((logs[0] / "pg.log").read_bytes()))
    monkeypatch.setitem(sys.modules, "zstandard", None)  # as if querywatch[zstd] were not installed
    with LogFile(path) as f:
        assert b"".join(f.chunks()) == (logs[0] / "pg.log").read_bytes()


def test_a_truncated_archive_is_one_error(logs: tuple[Path, Workload], tmp_path: Path) -> None:
    path = tmp_path / "pg.log.gz"
    path.write_bytes(gzip.compress((logs[0] / "pg.log").read_bytes())[:-200])
    assert_one_line_error(run_cli("digest", str(path)), str(path), "cannot decompress")


def test_a_rotated_set_reads_as_one_log(logs: tuple[Path, Workload], tmp_path: Path) -> None:
    """pg.log.2.gz, pg.log.1 and pg.log (oldest first) count what the unrotated log counts."""
    lines = (logs[0] / "pg.log").read_bytes().splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if b"LOG:  duration: " in line]
    a, b = starts[len(starts) // 3], starts[2 * len(starts) // 3]  # cut between messages
    rotated = tmp_path / "rotated"
    rotated.mkdir()
    (rotated / "pg.log.2.gz").write_bytes(gzip.compress(b"".join(lines[:a])))
    (rotated / "pg.log.1").write_bytes(b"".join(lines[a:b]))
    (rotated / "pg.log").write_bytes(b"".join(lines[b:]))
    paths = expand([str(rotated)])
    assert [p.name for p in paths] == ["pg.log.2.gz", "pg.log.1", "pg.log"]
    assert counts(*paths) == counts(logs[0] / "pg.log")
    data = data_of(str(rotated))
    assert [f["path"] for f in data["files"]] == [str(p) for p in paths]
    assert rotation_order(list(reversed(paths))) == paths


def test_bad_lines_are_counted_with_examples_and_the_rest_is_read(
    logs: tuple[Path, Workload], tmp_path: Path
) -> None:
    lines = (logs[0] / "pg.log").read_bytes().splitlines(keepends=True)
    at = [i for i, line in enumerate(lines) if b"LOG:  duration: " in line][10]
    garbage = [
        b"\x00\xff\xfe binary \x89PNG\r\n",
        lines[at][:17] + b"\n",  # a line cut inside its prefix
        b"just some text someone pasted\n",
    ]
    damaged = tmp_path / "damaged.log"
    damaged.write_bytes(b"".join(lines[:at] + garbage + lines[at:]))
    assert counts(damaged) == counts(logs[0] / "pg.log")
    data = data_of(str(damaged))
    [report] = data["files"]
    assert report["skipped"] == 3 and data["skipped_lines"] == 3
    assert [e["line"] for e in report["skipped_examples"]] == [at + 1, at + 2, at + 3]
    assert report["skipped_examples"][2]["text"] == "just some text someone pasted"
    assert all("prefix" in e["reason"] for e in report["skipped_examples"])
    text = run_cli("digest", str(damaged))
    assert text.returncode == 0 and "3 of" in text.stdout and "lines skipped" in text.stdout


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("--format", "pg-csv"), ("none of its", "pg-csv", "--format")),
        (("--format", "pg-json"), ("none of its", "pg-json", "--format")),
        (
            ("--prefix", "%t [%p]: user=%u,db=%d "),
            ("no line matches the log_line_prefix", "%t [%p]"),
        ),
    ],
)
def test_a_wrong_format_or_prefix_is_one_clear_error(
    logs: tuple[Path, Workload], args: tuple[str, ...], needles: tuple[str, ...]
) -> None:
    path = logs[0] / "pg.log"
    assert_one_line_error(run_cli("digest", str(path), *args), str(path), *needles)


def test_a_file_that_is_no_log_is_one_clear_error(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("a shopping list\neggs\nmilk\n")
    assert_one_line_error(run_cli("digest", str(text)), str(text), "not a log format")
    binary = tmp_path / "core"
    binary.write_bytes(bytes(range(256)) * 64)
    assert_one_line_error(run_cli("digest", str(binary)), str(binary), "not a log format")
    assert_one_line_error(run_cli("digest", str(tmp_path / "nope.log")), "no such file")


def test_a_log_without_statements_says_how_to_log_them(
    logs: tuple[Path, Workload], tmp_path: Path
) -> None:
    quiet = tmp_path / "quiet.log"
    quiet.write_bytes(
        b"".join(
            line
            for line in (logs[0] / "pg.log").read_bytes().splitlines(keepends=True)
            if b"duration:" not in line
            and b"DETAIL:" not in line
            and b"\t" not in line[:1]
            and b"ERROR:" not in line
            and b"STATEMENT:" not in line
            and b"process " not in line
            and b"temporary file" not in line
        )
    )
    result = run_cli("digest", str(quiet))
    assert result.returncode == 0
    assert "0 statements" in result.stdout and "log_min_duration_statement" in result.stdout
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    assert "0 statements" in run_cli("digest", str(empty)).stdout


def test_store_writes_windows_and_deploys_split_the_digest(
    logs: tuple[Path, Workload], tmp_path: Path
) -> None:
    path = logs[0] / "pg.log"
    whole = data_of(str(path))
    rows = {r["fingerprint"]: r for r in whole["fingerprints"]}
    locked = rows[fingerprint(LOCKED).id]
    store_path = tmp_path / "store.sqlite3"
    with open_store(store_path) as store:  # a deploy right when the lock-wait UPDATEs began
        deploys.start_deploy(store, "v2", at=locked["first_seen"], deploy_id="d2")
        deploys.start_deploy(store, "v0", at=time.time() - 400 * 86400, deploy_id="d0")
    html = tmp_path / "split.html"
    split = data_of(str(path), f"--store={store_path}", "--html", str(html))
    page = html.read_text()
    assert page.count('class="deploy"') == 2 and "deploy v2" in page  # on both charts
    labels = [p["label"] for p in split["phases"]]
    assert labels == ["after deploy v0", "after deploy v2"]  # the log lies after v0 started
    before, after = ({r["fingerprint"]: r for r in p["fingerprints"]} for p in split["phases"])
    lookup = fingerprint(LOOKUP).id
    assert before[lookup]["calls"] == 50 and lookup not in after
    assert after[locked["fingerprint"]]["calls"] == 2 and locked["fingerprint"] not in before
    with open_store(store_path) as store:
        top = {s.fingerprint: s for s in store.top(since=0, limit=100)}
        windows = store.statement_windows(fingerprint=lookup, since=0)
    assert top[lookup].calls == 50 and top[lookup].source == "log"
    assert top[locked["fingerprint"]].calls == 2
    assert {w.source for w in windows} == {"log"}
    assert sum(w.calls for w in windows) == 50
    assert abs(top[lookup].total_ms - rows[lookup]["total_ms"]) < 1e-6
    # the same file again (under another name): reported, not stored twice
    again = tmp_path / "copy.log"
    again.write_bytes(path.read_bytes())
    result = run_cli("digest", str(again), f"--store={store_path}", "--limit", "1")
    assert result.returncode == 0 and "already stored" in result.stderr
    with open_store(store_path) as store:
        assert {s.fingerprint: s for s in store.top(since=0, limit=100)}[lookup].calls == 50


def test_store_refuses_a_log_taken_for_its_path(logs: tuple[Path, Workload]) -> None:
    path = logs[0] / "pg.log"
    assert_one_line_error(run_cli("digest", "--store", str(path), str(path)), "--store=PATH")


def test_a_missing_zone_abbreviation_is_reported(tmp_path: Path) -> None:
    log = tmp_path / "cest.log"
    log.write_text(
        "2026-06-01 10:00:00.000 CEST [7] LOG:  duration: 2.000 ms  statement: SELECT 1\n"
        "2026-06-01 10:00:01.000 CEST [7] LOG:  duration: 3.000 ms  statement: SELECT 2\n"
    )
    assert "read as UTC (pass --timezone)" in run_cli("digest", str(log)).stdout
    data = data_of(str(log), "--timezone", "Europe/Paris")
    assert data["first_seen"] == 1780300800.0  # 08:00 UTC
    with pytest.raises(LogFormatError, match="unknown time zone"):
        digest_files(plan_files([log], options=ParseOptions(timezone="Mars/Olympus")))
