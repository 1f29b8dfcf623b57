"""Deploys v1 -> v2 -> v1 under light load: traffic follows, nothing fails, nothing is left."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from querywatch.demo.deployer import RELEASE_ENV, Deploy, Deployer, DeployError
from querywatch.demo.load import LoadConfig, LoadGenerator
from querywatch.demo.router import Router
from querywatch.demo.shop.releases import commit_of
from querywatch.demo.shop.seed import Shape, seed

SCALE = 20_000


@pytest.fixture(scope="module")
def shop_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("shop") / "shop.db"
    seed(str(path), SCALE)
    return str(path)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _serving(db: str) -> list[int]:
    """Pids of any shop server on ``db``, wherever it came from (orphans included)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"querywatch.demo.shop.serve" in cmdline and db.encode() in cmdline:
                found.append(int(proc.name))
    return [pid for pid in found if _alive(pid)]


def test_deploy_and_rollback_switch_traffic_without_failures(shop_db: str) -> None:
    marks: list[Deploy] = []
    pids: set[int] = set()
    shape = Shape.for_scale(SCALE)
    with Deployer(shop_db, on_deploy=marks.append) as deployer:
        first = deployer.deploy("v1")
        pids.update(deployer.pids())
        assert first.previous_version is None
        config = LoadConfig(
            rate=25,
            users=30,
            duration=6.0,
            timeout=5.0,
            products=shape.products,
            orders=shape.orders,
        )
        load = LoadGenerator(deployer.router, config)
        load.start()
        time.sleep(1.5)
        bad = deployer.deploy("v2")
        pids.update(deployer.pids())
        time.sleep(1.5)
        back = deployer.rollback()
        pids.update(deployer.pids())
        assert load.wait(30)
        assert len(deployer.pids()) == 1

    assert marks == [first, bad, back]
    assert (bad.version, bad.commit, bad.previous_version) == ("v2", commit_of("v2"), "v1")
    assert (back.version, back.previous_version, back.rollback) == ("v1", "v2", True)
    assert bad.started_at <= bad.switched_at <= bad.finished_at <= back.started_at
    records = load.records
    assert len(records) >= 140
    failed = [r for r in records if r.failed]
    assert failed == []
    served = [r.release for r in sorted(records, key=lambda r: r.scheduled_at)]
    assert served[0] == "v1" and served[-1] == "v1" and "v2" in served
    # a request due after a switch finished is served by the new release
    assert all(
        r.release == "v2"
        for r in records
        if bad.finished_at + 0.05 < r.scheduled_at < back.started_at
    )
    assert len(pids) == 3
    assert not any(_alive(pid) for pid in pids)
    assert _serving(shop_db) == []


def test_a_release_that_cannot_start_leaves_traffic_alone(tmp_path: Path) -> None:
    with Deployer(str(tmp_path / "unseeded.db")) as deployer:
        with pytest.raises(DeployError, match="seed it first"):
            deployer.deploy("v1")
        assert deployer.router.base_url is None
        assert deployer.pids() == []


def test_rollback_needs_a_previous_release(shop_db: str) -> None:
    with Deployer(shop_db) as deployer, pytest.raises(DeployError, match="nothing to roll back"):
        deployer.rollback()
    assert _serving(shop_db) == []


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().partition("=")[::2] for item in raw if b"=" in item)


def _wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_a_canary_takes_a_sticky_share_of_users_and_rolls_back(shop_db: str) -> None:
    marks: list[Deploy] = []
    shape = Shape.for_scale(SCALE)
    users = 40
    with Deployer(shop_db, on_deploy=marks.append) as deployer:
        stable = deployer.deploy("v1")
        config = LoadConfig(
            rate=40,
            users=users,
            total_requests=100_000,
            duration=None,
            timeout=5.0,
            products=shape.products,
            orders=shape.orders,
        )
        load = LoadGenerator(deployer.router, config)
        load.start()
        canary = deployer.start_canary("v2", 30)
        assert deployer.canary == canary and canary.canary_weight == 30
        assert (canary.previous_version, canary.version) == ("v1", "v2")
        # each process is told its release, for capture to tag what it records
        assert _environ(stable.pid)[RELEASE_ENV] == "v1"
        assert _environ(canary.pid)[RELEASE_ENV] == "v2"
        in_canary = {u for u in range(1, users + 1) if deployer.router.cohort(u) == "canary"}
        assert 0 < len(in_canary) < users
        # every user has been served by their cohort at least once (however long that takes)
        assert _wait_for(
            lambda: {r.user_id for r in load.records if r.release == "v2"} == in_canary
        ), "not every canary user reached the canary"
        zero_at = deployer.set_weight(0)
        back = deployer.rollback()
        assert load.records  # the load ran on, untouched by the canary's end
        load.stop()
        assert load.wait(30)
        assert deployer.pids() == [stable.pid]

    assert marks == [stable, canary, back]
    assert (back.version, back.previous_version, back.rollback) == ("v1", "v2", True)
    assert back.switched_at <= zero_at  # the canary took no traffic from the weight-0 switch on
    records = load.records
    assert not [r for r in records if r.failed]
    during = [r for r in records if canary.finished_at + 0.05 < r.scheduled_at < zero_at - 0.05]
    assert during
    for r in during:  # sticky: a user's cohort is their bucket's, for the whole canary
        expected = "v2" if r.user_id in in_canary else "v1"
        assert (r.routed_to, r.release) == (expected, expected), r
    assert not [r for r in records if r.release == "v2" and r.scheduled_at > back.finished_at]
    assert _serving(shop_db) == []


def test_a_promoted_canary_serves_everyone_and_the_old_release_stops(shop_db: str) -> None:
    shape = Shape.for_scale(SCALE)
    with Deployer(shop_db) as deployer:
        stable = deployer.deploy("v1")
        canary = deployer.start_canary("v1.1", 10)
        deployer.set_weight(50)
        promoted = deployer.promote()
        assert deployer.canary is None
        assert deployer.pids() == [canary.pid]
        assert (promoted.version, promoted.previous_version, promoted.promoted) == (
            "v1.1",
            "v1",
            True,
        )
        assert deployer.router.route(1) == (canary.base_url, "v1.1")
        config = LoadConfig(
            rate=40,
            users=20,
            total_requests=60,
            duration=None,
            products=shape.products,
            orders=shape.orders,
        )
        records = LoadGenerator(deployer.router, config).run()
        assert {(r.release, r.routed_to) for r in records} == {("v1.1", "v1.1")}
        back = deployer.rollback()  # after a promotion, a rollback is a deploy of the old stable
        assert (back.version, back.previous_version) == ("v1", "v1.1")
        assert not _alive(stable.pid)
    assert _serving(shop_db) == []


def test_weights_move_only_stable_users_to_the_canary() -> None:
    router = Router("http://stable", "v1")
    users = range(1, 1001)
    assert {router.route(u) for u in users} == {("http://stable", "v1")}
    cohorts: list[set[int]] = []
    for weight in (0, 5, 10, 25, 50, 100):
        if weight == 0:
            router.set_canary("http://canary", "v2", weight)
        else:
            router.set_weight(weight)
        canary = {u for u in users if router.route(u) == ("http://canary", "v2")}
        assert canary == {u for u in users if router.cohort(u) == "canary"}
        assert abs(len(canary) - weight * 10) <= 40, (weight, len(canary))  # a fair hash
        cohorts.append(canary)
    assert cohorts[0] == set() and cohorts[-1] == set(users)
    assert all(a <= b for a, b in itertools.pairwise(cohorts))
    router.set_weight(0)
    assert router.zero_weight_at is not None
    assert {router.route(u)[1] for u in users} == {"v1"}
    with pytest.raises(ValueError, match="0 to 100"):
        router.set_weight(101)
