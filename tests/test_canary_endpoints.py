"""The canary endpoints of `querywatch serve`, called the way Argo Rollouts and Flagger call them.

The manifests are the YAML blocks of docs/canary.md, parsed here: the Argo AnalysisTemplate's
`web` metric (its URL and headers with the Rollout's args filled in, its jsonPath and conditions)
and the Flagger Canary's webhooks (their URL and metadata, the payload Flagger POSTs). A real
server on loopback answers over a real SQLite store holding two releases' windows that end now:
a canary whose orders query is 100x slower, or one running the same code as the stable release.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import yaml

from querywatch.detect.canary import ReleaseWindows
from querywatch.respond.canary import CanaryRollout
from querywatch.respond.canary_settings import CanarySettings
from querywatch.store import open_store
from querywatch.web.server import WebServer, make_server
from test_canary_analysis import ORDERS, SHOP, T0, simulate, swap
from test_canary_analysis_store import write

DOC = Path(__file__).resolve().parents[1] / "docs" / "canary.md"
TOKEN = "canary-endpoint-test-token-0123456789"
ARGO_CANARY, ARGO_STABLE = "7c9d6f5b84", "5f8b7c6d9a"  # pod-template hashes


def manifests() -> list[dict[str, Any]]:
    """Every YAML document of docs/canary.md's ```yaml blocks."""
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), flags=re.S)
    assert blocks, "docs/canary.md has no yaml blocks"
    return [doc for block in blocks for doc in yaml.safe_load_all(block) if doc is not None]


def kind(name: str) -> list[dict[str, Any]]:
    return [m for m in manifests() if m.get("kind") == name]


def store_with(path: Path, canary: str, stable: str, *, slow: bool) -> None:
    """Two releases' windows over the two minutes that end at the last whole window."""
    start = int(time.time() // 10 * 10) - 120
    pages = swap(SHOP, ORDERS, replace(ORDERS, mean_ms=ORDERS.mean_ms * 100)) if slow else SHOP
    sides = simulate(2 if slow else 8, 120, canary=pages, canary_share=0.2)
    with open_store(str(path)) as store:
        for side, release in zip(sides, (canary, stable), strict=True):
            write(store, _moved(side, start - T0, release))


def _moved(side: ReleaseWindows, delta: int, release: str) -> ReleaseWindows:
    def move(ws: list[Any]) -> list[Any]:
        return [replace(w, window_start=w.window_start + delta, release=release) for w in ws]

    return ReleaseWindows(
        move(list(side.statements)), move(list(side.requests)), move(list(side.repeats))
    )


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    servers: list[WebServer] = []

    def start(*, slow: bool, names: tuple[str, str], no_auth: bool = False) -> WebServer:
        path = tmp_path / f"store-{len(servers)}.sqlite3"
        store_with(path, *names, slow=slow)
        server = make_server(str(path), "127.0.0.1", 0, None if no_auth else TOKEN, no_auth=no_auth)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def send(
    url: str, *, method: str = "GET", headers: dict[str, str], body: bytes | None = None
) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as err:
        with err:
            return err.code, json.loads(err.read())


def on(server: WebServer, url: str) -> str:
    """The manifest's URL, sent to the test server instead of the cluster's Service."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="http", netloc=urlsplit(server.url).netloc))


# -- Argo Rollouts --------------------------------------------------------------------------------


def argo_measure(server: WebServer) -> tuple[int, Any, bool, bool]:
    """What Argo's web provider does: fill the args, GET with the headers, apply jsonPath and
    both conditions. Returns (status, result, success, failure)."""
    (template,) = kind("AnalysisTemplate")
    (metric,) = template["spec"]["metrics"]
    web = metric["provider"]["web"]
    args = {"canary-release": ARGO_CANARY, "stable-release": ARGO_STABLE, "api-token": TOKEN}

    def fill(text: str) -> str:
        return re.sub(r"\{\{\s*args\.([\w-]+)\s*\}\}", lambda m: args[m.group(1)], text)

    headers = {h["key"]: fill(h["value"]) for h in web.get("headers", [])}
    status, body = send(
        on(server, fill(web["url"])), method=web.get("method", "GET"), headers=headers
    )
    path = re.fullmatch(r"\{\$\.([\w.]+)\}", web["jsonPath"])
    assert path is not None, web["jsonPath"]
    result: Any = body
    for key in path.group(1).split("."):
        result = result[key]

    def holds(condition: str) -> bool:
        m = re.fullmatch(r"result\.(\w+) == '(\w+)'", condition.strip())
        assert m is not None, f"the test reads only result.X == 'Y', not {condition!r}"
        return bool(result[m.group(1)] == m.group(2))

    return status, result, holds(metric["successCondition"]), holds(metric["failureCondition"])


def test_the_rollout_feeds_the_templates_args_and_tells_capture_the_pod_hash() -> None:
    (template,) = kind("AnalysisTemplate")
    (rollout,) = kind("Rollout")
    wanted = {a["name"] for a in template["spec"]["args"] if "valueFrom" not in a}
    steps = rollout["spec"]["strategy"]["canary"]["steps"]
    analyses = [s["analysis"] for s in steps if "analysis" in s]
    assert len(analyses) >= 2
    for analysis in analyses:
        assert [t["templateName"] for t in analysis["templates"]] == [template["metadata"]["name"]]
        given = {a["name"]: a["valueFrom"]["podTemplateHashValue"] for a in analysis["args"]}
        assert given == {"canary-release": "Latest", "stable-release": "Stable"}
        assert set(given) == wanted
    (container,) = rollout["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    field = env["QUERYWATCH_RELEASE"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert field == "metadata.labels['rollouts-pod-template-hash']"


def test_argo_web_metric_succeeds_on_a_passing_canary(serve: Any) -> None:
    server = serve(slow=False, names=(ARGO_CANARY, ARGO_STABLE))
    status, result, success, failure = argo_measure(server)
    assert status == 200
    assert (result["verdict"], success, failure) == ("pass", True, False), result["reason"]
    assert result["canary_release"] == ARGO_CANARY and result["stable_release"] == ARGO_STABLE
    assert result["canary_requests"] > 0 and result["stable_requests"] > result["canary_requests"]
    assert result["source"] == "parameters" and result["span_s"] >= 100


def test_argo_web_metric_fails_on_a_slow_canary_naming_the_query(serve: Any) -> None:
    server = serve(slow=True, names=(ARGO_CANARY, ARGO_STABLE))
    status, result, success, failure = argo_measure(server)
    assert status == 200
    assert (result["verdict"], result["healthy"], success, failure) == ("fail", False, False, True)
    assert [c["fingerprint"] for c in result["culprits"]] == [ORDERS.fp]
    assert "orders" in result["culprits"][0]["normalized"]


def test_the_verdict_endpoint_keeps_the_token_rules(serve: Any) -> None:
    server = serve(slow=False, names=(ARGO_CANARY, ARGO_STABLE))
    url = f"{server.url}/api/canary/verdict?canary={ARGO_CANARY}&stable={ARGO_STABLE}"
    assert send(url, headers={})[0] == 401
    assert send(url, headers={"Authorization": "Bearer not-the-token-at-all"})[0] == 403
    auth = {"Authorization": f"Bearer {TOKEN}"}
    body = json.dumps({"canary": ARGO_CANARY, "stable": ARGO_STABLE}).encode()
    endpoint = f"{server.url}/api/canary/verdict"
    assert send(endpoint, method="POST", headers=auth, body=body)[0] == 415  # no Content-Type
    status, posted = send(
        endpoint, method="POST", headers={**auth, "Content-Type": "application/json"}, body=body
    )
    assert status == 200 and posted["data"]["verdict"] == "pass"
    status, missing = send(f"{server.url}/api/canary/verdict", headers=auth)
    assert status == 404 and "no canary known" in missing["error"]["message"]
    status, half = send(f"{url.split('&')[0]}", headers=auth)
    assert status == 400 and "both releases" in half["error"]["message"]


# -- Flagger --------------------------------------------------------------------------------------


def flagger_call(server: WebServer, hook_type: str, token: str | None = TOKEN) -> tuple[int, Any]:
    """What Flagger does: POST {name, namespace, phase, checksum, metadata} as JSON, no other
    header (it cannot send one)."""
    (canary,) = kind("Canary")
    (hook,) = [h for h in canary["spec"]["analysis"]["webhooks"] if h["type"] == hook_type]
    metadata = dict(hook["metadata"])
    if token is None:
        metadata.pop("token")
    else:
        metadata["token"] = token
    payload = {
        "name": canary["metadata"]["name"],
        "namespace": canary["metadata"]["namespace"],
        "phase": "Progressing",
        "checksum": "6b8c9d7f5",
        "metadata": metadata,
    }
    return send(
        on(server, hook["url"]),
        method="POST",
        headers={"Content-Type": "application/json"},
        body=json.dumps(payload).encode(),
    )


def flagger_names() -> tuple[str, str]:
    (canary,) = kind("Canary")
    (hook,) = [h for h in canary["spec"]["analysis"]["webhooks"] if h["type"] == "rollout"]
    return hook["metadata"]["canary"], hook["metadata"]["stable"]


def test_flagger_releases_are_the_cohort_labels_capture_is_told() -> None:
    (canary,) = kind("Canary")
    (deployment,) = kind("Deployment")
    name = canary["spec"]["targetRef"]["name"]
    assert deployment["metadata"]["name"] == name
    assert flagger_names() == (
        deployment["spec"]["template"]["metadata"]["labels"]["app"],
        f"{name}-primary",
    )
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    (env,) = [e for e in container["env"] if e["name"] == "QUERYWATCH_RELEASE"]
    assert env["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.labels['app']"


def test_flagger_rollout_hook_is_2xx_on_a_passing_canary(serve: Any) -> None:
    server = serve(slow=False, names=flagger_names())
    status, body = flagger_call(server, "rollout")
    assert 200 <= status <= 202, body  # what Flagger counts as a passing check
    assert body["data"]["verdict"] == "pass" and body["data"]["checksum"] == "6b8c9d7f5"
    status, promotion = flagger_call(server, "confirm-promotion")
    assert status == 200 and promotion["data"]["verdict"] == "pass"


def test_flagger_rollout_hook_is_non_2xx_with_the_reason_on_a_failing_canary(serve: Any) -> None:
    server = serve(slow=True, names=flagger_names())
    status, body = flagger_call(server, "rollout")
    assert status == 412
    assert body["ok"] is False and body["error"]["code"] == "canary_failed"
    assert "canary shop fails against shop-primary" in body["error"]["message"]
    assert "orders" in body["error"]["message"]
    assert set(body) == {"ok", "error"}  # the one error envelope of docs/json.md


def test_flagger_confirm_promotion_holds_until_a_pass(serve: Any) -> None:
    server = serve(slow=False, names=("other", "releases"))  # nothing recorded for shop: no verdict
    status, rollout_hook = flagger_call(server, "rollout")
    assert status == 200 and rollout_hook["data"]["verdict"] == "inconclusive"
    status, body = flagger_call(server, "confirm-promotion")
    assert status == 412 and body["error"]["code"] == "canary_not_passed"


def test_flagger_token_in_metadata_follows_the_token_rules(serve: Any) -> None:
    server = serve(slow=False, names=flagger_names())
    status, body = flagger_call(server, "rollout", token=None)
    assert status == 401 and "metadata.token" in body["error"]["message"]
    assert flagger_call(server, "rollout", token="a-wrong-token-of-some-length")[0] == 403
    local = serve(slow=False, names=flagger_names(), no_auth=True)
    assert flagger_call(local, "rollout", token=None)[0] == 200  # --no-auth: loopback only


def test_status_endpoint_shows_the_stored_rollout(serve: Any, tmp_path: Path) -> None:
    server = serve(slow=False, names=flagger_names())
    auth = {"Authorization": f"Bearer {TOKEN}"}
    status, empty = send(f"{server.url}/api/canary/status", headers=auth)
    assert status == 200 and empty["data"] is None
    CanaryRollout(server.store, CanarySettings()).start("shop", "shop-primary", by="ci")
    status, shown = send(f"{server.url}/api/canary/status?environment=production", headers=auth)
    assert status == 200 and shown["data"]["canary_release"] == "shop"
    # With a stored rollout, a request may name no releases at all.
    status, verdict = send(f"{server.url}/api/canary/verdict", headers=auth)
    assert status == 200 and verdict["data"]["source"] == "rollout"
