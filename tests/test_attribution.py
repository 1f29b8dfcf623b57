"""Attribution over a real SQLite store, and git blame on real temporary git repositories."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from querywatch.detect.attribution import attribute, first_seen_deploy
from querywatch.detect.model import Detection
from querywatch.gitblame import GitBlame, blame_line
from querywatch.records import CallSite, DeployMarker, StatementWindow
from querywatch.store import SqlStore, open_store

T0 = 28_333_334 * 60


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    with open_store(tmp_path / "store.sqlite3") as s:
        yield s


def _git(repo: Path, *args: str, author: str = "Alice") -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": author,
        "GIT_AUTHOR_EMAIL": f"{author.lower()}@example.com",
        "GIT_COMMITTER_NAME": author,
        "GIT_COMMITTER_EMAIL": f"{author.lower()}@example.com",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    done = subprocess.run(
        ["git", "-C", str(repo), *args], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A checkout where app/views.py line 3 was last changed by Bob's second commit."""
    root = tmp_path / "repo"
    (root / "app").mkdir(parents=True)
    _git(root, "init", "-q")
    views = root / "app" / "views.py"
    views.write_text("def products(db):\n    rows = []\n    return db.all()\n    # end\n")
    _git(root, "add", "app/views.py")
    _git(root, "commit", "-q", "-m", "Add the products view")
    views.write_text("def products(db):\n    rows = []\n    return db.all_unindexed()\n    # end\n")
    _git(root, "commit", "-q", "-am", "Use the unindexed lookup", author="Bob")
    return root


def _detection(kind: str, fp: str | None, added: float, normalized: str = "") -> Detection:
    return Detection(
        kind,  # type: ignore[arg-type]
        detected_at=T0 + 900,
        confidence=0.9,
        summary=f"{kind} on {fp}",
        fingerprint=fp,
        normalized=normalized or None,
        added_db_ms_per_s=added,
    )


def _window(fp: str, normalized: str, start: int, sites: tuple[CallSite, ...]) -> StatementWindow:
    return StatementWindow(fp, normalized, start, 10, 100.0, 20.0, call_sites=sites)


# -- git blame -----------------------------------------------------------------------------------


def test_blame_names_the_commit_that_last_changed_the_line(repo: Path) -> None:
    second = _git(repo, "rev-parse", "HEAD")
    first = _git(repo, "rev-parse", "HEAD~1")
    blame = GitBlame(repo)
    line3 = blame.line("app/views.py", 3)
    assert line3 is not None
    assert line3.commit == second and line3.author == "Bob"
    assert line3.summary == "Use the unindexed lookup"
    assert str(line3) == f"{second[:10]} Bob: Use the unindexed lookup"
    line1 = blame.line(repo / "app" / "views.py", 1)  # absolute paths work too
    assert line1 is not None and line1.commit == first and line1.author == "Alice"
    assert blame.line("app/views.py", 99) is None  # past the end of the file
    assert blame.line("app/views.py", 0) is None


def test_blame_is_none_for_untracked_uncommitted_outside_or_no_repo(
    repo: Path, tmp_path: Path
) -> None:
    (repo / "app" / "new.py").write_text("x = 1\n")
    assert blame_line("app/new.py", 1, repo) is None  # untracked
    (repo / "app" / "views.py").write_text("def products(db):\n    changed = 1\n")
    assert blame_line("app/views.py", 2, repo) is None  # changed in the working tree only
    outside = tmp_path / "elsewhere.py"
    outside.write_text("y = 2\n")
    assert blame_line(outside, 1, repo) is None  # not inside the checkout
    assert blame_line("../elsewhere.py", 1, repo) is None
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "f.py").write_text("z = 3\n")
    assert GitBlame(plain).toplevel() is None
    assert blame_line("f.py", 1, plain) is None  # no git repository at all


def test_blame_results_are_cached_per_path_and_line(repo: Path) -> None:
    blame = GitBlame(repo)
    first = blame.line("app/views.py", 3)
    (repo / "app" / "views.py").unlink()  # a second git run would now fail
    assert blame.line("app/views.py", 3) == first


# -- attribution ---------------------------------------------------------------------------------


def test_first_seen_deploy_is_the_latest_started_by_then() -> None:
    deploys = [
        DeployMarker("d2", "2.0", None, "prod", T0 + 100),
        DeployMarker("d1", "1.0", None, "prod", T0),
        DeployMarker("d3", "3.0", None, "prod", T0 + 195),
    ]
    assert first_seen_deploy(T0 - 60, deploys) is None
    assert first_seen_deploy(T0, deploys) == deploys[1]
    assert first_seen_deploy(T0 + 150, deploys) == deploys[0]
    # A deploy that started inside the first window [T0 + 190, T0 + 200) is the one it came with.
    assert first_seen_deploy(T0 + 190, deploys) == deploys[2]
    assert first_seen_deploy(T0 + 180, deploys) == deploys[0]  # window ends before d3
    assert first_seen_deploy(T0 + 5000, deploys) == deploys[2]


def test_culprits_ranked_by_added_db_time_with_deploy_sites_and_commits(
    store: SqlStore, repo: Path
) -> None:
    for i, (version, at) in enumerate([("1.0", T0), ("1.1", T0 + 300), ("1.2", T0 + 600)]):
        store.record_deploy(DeployMarker(f"d{i}", version, f"c{i}", "prod", at))
    store.record_deploy(DeployMarker("s0", "1.3-rc", None, "staging", T0 + 450))
    slow_site = CallSite("app/views.py", 3, "products")
    old_site = CallSite("app/views.py", 1, "products")
    store.write_windows(
        [
            _window("aaaa", "select * from orders where id = ?", T0 - 600, (old_site,)),
            _window("bbbb", "select * from items where name like ?", T0 + 480, (slow_site,)),
            _window("bbbb", "select * from items where name like ?", T0 + 700, ()),
            _window("cccc", "select * from users where id = ?", T0 + 320, ()),
        ]
    )
    detections = [
        _detection("deploy_regression", "aaaa", 40.0),
        _detection("new_fingerprint", "bbbb", 300.0, "select * from items where name like ?"),
        _detection("n_plus_one", "bbbb", 120.0),
        _detection("load", None, 900.0),  # names no query
        _detection("n_plus_one", "cccc", 200.0),
        _detection("unannounced_regression", "zzzz", 10.0, "select ?"),  # not in the store
    ]
    culprits = attribute(store, detections, repo_root=repo, environment="prod")
    assert [c.fingerprint for c in culprits] == ["bbbb", "cccc", "aaaa", "zzzz"]

    slow = culprits[0]
    assert slow.added_db_ms_per_s == pytest.approx(420.0)  # the N+1 time counts too
    assert slow.detection_kinds == ("new_fingerprint", "n_plus_one")
    assert slow.normalized == "select * from items where name like ?"
    assert slow.first_seen_deploy == "d1"  # first seen at T0 + 480, after 1.1, before 1.2
    assert slow.call_sites == (slow_site,)
    head = _git(repo, "rev-parse", "HEAD")
    assert slow.commits == (f"{head[:10]} Bob: Use the unindexed lookup",)

    users = culprits[1]
    assert users.first_seen_deploy == "d1" and users.call_sites == () and users.commits == ()
    assert users.normalized == "select * from users where id = ?"  # from the store

    orders = culprits[2]
    assert orders.first_seen_deploy is None  # predates every deploy
    assert orders.commits[0].endswith("Alice: Add the products view")

    missing = culprits[3]
    assert missing.first_seen_deploy is None and missing.call_sites == ()
    assert missing.normalized == "select ?"

    # Without an environment, the staging deploy at T0 + 450 is the latest before T0 + 480.
    assert attribute(store, detections, repo_root=repo)[0].first_seen_deploy == "s0"


def test_outside_a_checkout_call_sites_stay_but_commits_are_empty(
    store: SqlStore, tmp_path: Path
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    site = CallSite("app/views.py", 3, "products")
    store.write_windows([_window("bbbb", "select ?", T0, (site,))])
    culprits = attribute(store, [_detection("new_fingerprint", "bbbb", 5.0)], repo_root=plain)
    assert culprits[0].call_sites == (site,) and culprits[0].commits == ()
    assert attribute(store, [_detection("load", None, 5.0)]) == []
