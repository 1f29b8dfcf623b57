"""Alerts link to the dashboard: with ``base_url`` set, every alert carries its page's URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from querywatch.config import load_config
from querywatch.errors import ConfigError
from querywatch.respond.alerts import alert_for_incident, blind_alert
from querywatch.respond.notifier import Notifier
from querywatch.respond.setup import notifier_from_config
from querywatch.respond.sinks import slack_payload
from querywatch.store import open_store
from respond_helpers import NOW, RecordingSink, open_incident, ship_bad_release


def test_an_incident_alert_links_to_its_page_and_a_blind_one_to_the_overview(
    tmp_path: Path,
) -> None:
    with open_store(tmp_path / "store.sqlite3") as store:
        ship_bad_release(store)
        incident = open_incident(store)
    sink = RecordingSink()
    notifier = Notifier([sink], base_url="https://qw.example.com/", clock=lambda: NOW)
    notifier.notify(alert_for_incident(incident))
    notifier.notify(blind_alert("pg_stat_statements", "connection refused", NOW - 30))
    urls = [a.url for a in sink.alerts]
    assert urls == [f"https://qw.example.com/incidents/{incident.id}", "https://qw.example.com/"]
    assert sink.alerts[0].to_dict()["url"] == urls[0]  # the webhook's JSON
    assert f"<{urls[0]}|open in querywatch>" in str(slack_payload(sink.alerts[0]))


def test_without_base_url_alerts_carry_no_link(tmp_path: Path) -> None:
    with open_store(tmp_path / "store.sqlite3") as store:
        ship_bad_release(store)
        incident = open_incident(store)
    sink = RecordingSink()
    Notifier([sink]).notify(alert_for_incident(incident))
    assert sink.alerts[0].url is None


def test_the_setting_reaches_the_configured_notifier(tmp_path: Path) -> None:
    cfg = load_config({"base_url": "https://qw.example.com/dash/"}, environ={}, cwd=tmp_path)
    assert cfg["base_url"] == "https://qw.example.com/dash"
    assert notifier_from_config(cfg).base_url == "https://qw.example.com/dash"
    from_env = load_config(environ={"QUERYWATCH_BASE_URL": "http://10.0.0.5:8765"}, cwd=tmp_path)
    assert from_env["base_url"] == "http://10.0.0.5:8765"


@pytest.mark.parametrize(
    "value",
    [
        "qw.example.com",
        "ftp://qw.example.com",
        "https://qw.example.com/?x=1",
        "https://user:pw@qw.example.com",
        "https://",
    ],
)
def test_a_base_url_that_cannot_be_linked_to_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match="base_url"):
        load_config({"base_url": value}, environ={}, cwd=tmp_path)
