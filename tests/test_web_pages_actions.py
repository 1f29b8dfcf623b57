"""Acting from an incident's page: ack, note and rollback (dry run, then confirm) need the write
token, this server's origin and the session's CSRF token; they go through the same service and
guarded Responder as the CLI, over a real store and real HTTP on loopback."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from pages_helpers import READ, WRITE, Client, serve
from querywatch.config import load_config
from querywatch.incidents.service import get_incident
from querywatch.store import open_store
from querywatch.web.server import WebServer
from respond_helpers import WRITE_ARGS, open_incident, script, ship_bad_release, written


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "rollbacks.jsonl"


@pytest.fixture
def served(tmp_path: Path, out: Path) -> Iterator[tuple[WebServer, str, Path]]:
    path = tmp_path / "store.sqlite3"
    with open_store(path) as store:
        ship_bad_release(store)
        incident_id = open_incident(store).id
    program = script(tmp_path / "deploy.py", WRITE_ARGS)
    command = f"{program} {shlex.quote(str(out))} {{previous_version}} {{version}} {{deploy_id}}"

    def config_for(environment: str) -> Any:
        flags = {"store": str(path), "environment": environment, "rollback_command": command}
        return load_config(flags, environ={}, cwd=tmp_path)

    server = serve(path, config_for=config_for)
    yield server, incident_id, path
    server.shutdown()
    server.server_close()


def signed_in(server: WebServer, token: str) -> Client:
    client = Client(server.url)
    client.sign_in(token)
    return client


def page_of(incident_id: str) -> str:
    return f"/incidents/{quote(incident_id)}"


def test_a_writer_acknowledges_with_the_pages_csrf_token(
    served: tuple[WebServer, str, Path],
) -> None:
    server, incident_id, path = served
    writer = signed_in(server, WRITE)
    csrf = writer.csrf(page_of(incident_id))
    reply = writer.post(f"{page_of(incident_id)}/ack?since=6h", {"csrf": csrf, "by": "alice"})
    assert reply.status == 303 and reply.location == f"{page_of(incident_id)}?since=6h"
    page = writer.get(reply.location).text
    assert 'data-status="acknowledged"' in page
    assert re.search(r'data-kind="acknowledged">.*\(by alice\)', page)
    again = writer.post(f"{page_of(incident_id)}/ack", {"csrf": csrf, "by": "bob"})
    assert again.status == 409 and "already acknowledged by alice" in again.text
    with open_store(path) as store:
        assert get_incident(store, incident_id).status == "acknowledged"


def test_a_note_lands_on_the_timeline_with_its_tag(served: tuple[WebServer, str, Path]) -> None:
    server, incident_id, _ = served
    writer = signed_in(server, WRITE)
    csrf = writer.csrf(page_of(incident_id))
    form = {"csrf": csrf, "text": "the network is fine", "misleading": "on", "by": "carol"}
    assert writer.post(f"{page_of(incident_id)}/note", form).status == 303
    page = writer.get(page_of(incident_id)).text
    assert "carol: the network is fine" in page and '<span class="tag">[misleading]</span>' in page
    empty = writer.post(f"{page_of(incident_id)}/note", {"csrf": csrf, "text": "  "})
    assert empty.status == 409 and "a note needs some text" in empty.text


def test_actions_need_write_access_csrf_and_this_origin(
    served: tuple[WebServer, str, Path],
) -> None:
    server, incident_id, path = served
    action = f"{page_of(incident_id)}/ack"
    reader = signed_in(server, READ)
    refused = reader.post(action, {"csrf": reader.csrf(page_of(incident_id)), "by": "eve"})
    assert refused.status == 403 and "can only read" in refused.text
    assert 'data-action="ack"' not in reader.get(page_of(incident_id)).text

    writer = signed_in(server, WRITE)
    assert writer.post(action, {"by": "eve"}).status == 403  # no CSRF field
    assert writer.post(action, {"csrf": "forged", "by": "eve"}).status == 403
    csrf = writer.csrf(page_of(incident_id))
    assert writer.post(action, {"csrf": csrf}, origin=False).status == 403  # no Origin/Referer
    assert Client(server.url).post(action, {"csrf": csrf}).status == 303  # to /login
    with open_store(path) as store:
        assert get_incident(store, incident_id).status == "open"


def test_a_rollback_shows_its_dry_run_then_runs_on_confirm(
    served: tuple[WebServer, str, Path], out: Path
) -> None:
    server, incident_id, path = served
    writer = signed_in(server, WRITE)
    csrf = writer.csrf(page_of(incident_id))
    action = f"{page_of(incident_id)}/rollback"
    dry = writer.post(action, {"csrf": csrf, "step": "dry_run", "by": "dave"})
    assert dry.status == 200, dry.text
    assert "data-dry-run" in dry.text and "v2 → v1" in dry.text
    command = re.search(r'<pre class="command">([^<]*)</pre>', dry.text)
    assert command is not None and command.group(1).endswith("v1 v2 d2")
    assert 'name="step" value="confirm"' in dry.text
    assert written(out) == []  # a dry run runs nothing

    done = writer.post(action, {"csrf": csrf, "step": "confirm", "by": "dave"})
    assert done.status == 303, done.text
    assert written(out) == [["v1", "v2", "d2"]]
    page = writer.get(page_of(incident_id)).text
    assert re.search(r'data-kind="action">.*rolled back.*\(by dave\)', page)
    with open_store(path) as store:
        assert get_incident(store, incident_id).status == "mitigated"

    refused = writer.post(action, {"csrf": csrf, "step": "dry_run"})
    assert refused.status == 409 and "at most one rollback per deploy" in refused.text
    assert written(out) == [["v1", "v2", "d2"]]


def test_a_rollback_without_settings_says_so(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    with open_store(path) as store:
        ship_bad_release(store)
        incident_id = open_incident(store).id
    server = serve(path)
    try:
        writer = signed_in(server, WRITE)
        page = writer.get(page_of(incident_id)).text
        assert "This server has no rollback settings." in page
        csrf = writer.csrf(page_of(incident_id))
        reply = writer.post(f"{page_of(incident_id)}/rollback", {"csrf": csrf, "step": "dry_run"})
        assert reply.status == 400 and "no rollback settings" in reply.text
    finally:
        server.shutdown()
        server.server_close()


def test_a_script_with_the_write_token_acts_without_a_csrf_token(
    served: tuple[WebServer, str, Path],
) -> None:
    server, incident_id, path = served
    script_client = Client(server.url, token=WRITE)
    reply = script_client.post(f"{page_of(incident_id)}/ack", {"by": "ci"}, origin=False)
    assert reply.status == 303
    with open_store(path) as store:
        assert get_incident(store, incident_id).status == "acknowledged"
