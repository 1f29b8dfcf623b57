"""Deploys v1 -> v2 -> v1 under light load: traffic follows, nothing fails, nothing is left."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from querywatch.demo.deployer import Deploy, Deployer, DeployError
from querywatch.demo.load import LoadConfig, LoadGenerator
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
