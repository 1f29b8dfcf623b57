"""The shop server process: health once ready, clean SIGTERM, one clear line on a busy port."""

from __future__ import annotations

import http.client
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from querywatch.demo.deployer import free_port, health
from querywatch.demo.shop.releases import commit_of
from querywatch.demo.shop.seed import seed


@pytest.fixture(scope="module")
def shop_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("shop") / "shop.db"
    seed(str(path), 5_000)
    return str(path)


def _serve(db: str, port: int, release: str = "v1") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "querywatch.demo.shop.serve",
            "--release",
            release,
            "--db",
            db,
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def test_serve_answers_health_and_stops_on_sigterm(shop_db: str) -> None:
    port = free_port()
    proc = _serve(shop_db, port, "v2")
    try:
        deadline = time.monotonic() + 30
        while not health(f"http://127.0.0.1:{port}"):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/customers/3/orders", headers={"X-User-Id": "3"})
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("X-Release") == "v2"
        assert response.getheader("X-Commit") == commit_of("v2")
        response.read()
        conn.close()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err
        assert err == ""  # quiet: no access log, no traceback
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_port_in_use_gives_one_clear_line(shop_db: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = _serve(shop_db, port)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert err.strip().splitlines() == [f"shop serve: port {port} on 127.0.0.1 is already in use"]


def test_an_unseeded_database_gives_one_clear_line(tmp_path: Path) -> None:
    proc = _serve(str(tmp_path / "missing.db"), free_port())
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert len(err.strip().splitlines()) == 1 and "seed it first" in err
