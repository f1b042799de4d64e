"""getSchedule, supported time zones and languages, and the current user (HTTP and CLI)."""

from __future__ import annotations

from tests.actions.helpers import hits, ok


def test_get_schedule_availability(outlook, call):
    sim, alice = outlook.sim, outlook.alice
    sim.create_event(outlook.bob, subject="Busy", start={"dateTime": "2030-03-04T10:00:00", "timeZone": "UTC"},
                     end={"dateTime": "2030-03-04T11:00:00", "timeZone": "UTC"})
    result = ok(call("get-schedule-availability", {"user_id": alice, "inputs": {
        "schedules": [outlook.bob_upn], "start_at": "2030-03-04T09:00:00", "end_at": "2030-03-04T12:00:00",
        "availability_view_interval": 60}}))
    assert hits(sim, "POST /v1.0/me/calendar/getSchedule") == 1
    [schedule] = result["value"]
    assert schedule["scheduleId"].lower() == outlook.bob_upn.lower()
    assert schedule["availabilityView"] == "020"
    status, body, _ = call("get-schedule-availability", {"user_id": alice, "inputs": {
        "schedules": "x@y.z", "start_at": "2030-03-04T09:00:00", "end_at": "2030-03-04T12:00:00",
        "availability_view_interval": 2}})
    assert status == 400 and body["error"]["input"] == "availability_view_interval"


def test_supported_time_zones_and_languages(outlook, call, cli):
    sim = outlook.sim
    zones = ok(call("list-supported-timezones", {"user_id": outlook.alice}))
    assert any(z["alias"] == "Pacific Standard Time" for z in zones["value"])
    iana = ok(call("list-supported-timezones", {"user_id": outlook.alice, "inputs": {"time_zone_standard": "iana"}}))
    assert any(z["alias"] == "America/Los_Angeles" for z in iana["value"])
    assert sum(v for k, v in sim.counters().items() if "supportedTimeZones" in k) == 2
    code, langs, err = cli("action", "List Supported Languages", "--user", outlook.alice)
    assert code == 0, err
    assert any(lang["locale"] == "en-US" for lang in langs["value"])
    assert hits(sim, "GET /v1.0/me/outlook/supportedLanguages") == 1


def test_get_current_user_delegated_and_app_only(outlook, call, cli):
    me = ok(call("get-current-user", {"user_id": outlook.alice}))
    assert me["id"] == outlook.alice and hits(outlook.sim, "GET /v1.0/me") == 1
    code, bob, err = cli("action", "get-current-user", "--user", outlook.bob_upn, "--app-only")
    assert code == 0, err
    assert bob["id"] == outlook.bob and hits(outlook.sim, "GET /v1.0/users/{id}") == 1
