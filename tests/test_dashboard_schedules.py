"""Schedules from the dashboard's Controls page (issue 16: "Controls: ... schedules"): an
admin creates or replaces one with the form and deletes one after a confirmation page;
the API then shows exactly that; bad input is refused naming the field; a read-only key
and a form without this session's CSRF token change nothing."""

from __future__ import annotations

import html
from typing import Any

import httpx

from tests.api_support import ApiServer
from tests.dashboard_support import csrf_of, signed_in

_FORM = {
    "action": "schedule",
    "name": "daily-digest",
    "every": "3600",
    "tenant": "acme",
    "conversation": "c1",
    "recipient": "+15550100",
    "priority": "low",
    "payload": '{"text": "digest <b>"}',
}


def _schedules(api_server: ApiServer) -> dict[str, Any]:
    found = api_server.call("GET", "/v1/schedules")
    assert found.status_code == 200, found.text
    return {schedule["name"]: schedule for schedule in found.json()}


def _post(session: httpx.Client, **fields: str) -> httpx.Response:
    return session.post("/controls", data={"csrf": csrf_of(session, "/controls"), **fields})


def test_an_admin_creates_replaces_and_deletes_a_schedule(api_server: ApiServer) -> None:
    with signed_in(api_server, api_server.admin_key) as session:
        created = _post(session, **_FORM)
        assert created.status_code == 200, created.text
        assert "Schedule daily-digest saved" in html.unescape(created.text)
        made = _schedules(api_server)["daily-digest"]
        assert (made["every_ms"], made["tenant"], made["recipient"], made["priority"]) == (
            3_600_000, "acme", "+15550100", "low",
        )  # fmt: skip
        assert made["payload"] == {"text": "digest <b>"}
        listed = session.get("/controls").text
        assert 'data-schedule="daily-digest"' in listed

        _post(session, **{**_FORM, "every": "", "cron": "*/5 * * * *"})
        replaced = _schedules(api_server)["daily-digest"]
        assert replaced["cron"] == "*/5 * * * *" and replaced["every_ms"] is None

        asked = _post(session, action="unschedule", name="daily-digest")
        assert asked.status_code == 200 and 'name="confirm" value="yes"' in asked.text
        assert "daily-digest" in _schedules(api_server)  # not before the confirmation
        gone = _post(session, action="unschedule", name="daily-digest", confirm="yes")
        assert gone.status_code == 200 and "Deleted schedule:daily-digest" in gone.text
        assert _schedules(api_server) == {}


def test_bad_schedule_input_is_refused_naming_the_field(api_server: ApiServer) -> None:
    with signed_in(api_server, api_server.admin_key) as session:
        cases = {
            "payload": {**_FORM, "payload": "{not json"},
            "every": {**_FORM, "every": "soon"},
            "recipient": {**_FORM, "recipient": ""},
            "name": {**_FORM, "name": ""},
        }
        for field, form in cases.items():
            refused = _post(session, **form)
            assert refused.status_code == 422, (field, refused.status_code)
            assert field in html.unescape(refused.text), field
        missing = _post(session, action="unschedule", name="nope", confirm="yes")
        assert missing.status_code == 404 and "no schedule" in html.unescape(missing.text)
    assert _schedules(api_server) == {}


def test_read_only_keys_and_forged_forms_change_no_schedule(api_server: ApiServer) -> None:
    with signed_in(api_server, api_server.create_key("--read-only")) as reader:
        assert 'id="schedule-form"' not in reader.get("/controls").text
        refused = _post(reader, **_FORM)
        assert refused.status_code == 403
    with signed_in(api_server, api_server.admin_key) as session:
        forged = session.post("/controls", data={"csrf": "0" * 64, **_FORM})
        assert forged.status_code == 403
    assert _schedules(api_server) == {}
