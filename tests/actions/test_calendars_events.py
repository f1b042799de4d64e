"""Calendar and event actions over POST /api/actions/{action}, checked against the simulator's state."""

from __future__ import annotations

from tests.actions.helpers import hits, mailbox, ok


def test_calendar_actions(outlook, call):
    sim, alice = outlook.sim, outlook.alice
    user = {"user_id": alice}
    created = ok(call("create-calendar", {**user, "inputs": {"name": "Team", "color": "lightBlue"}}))
    assert hits(sim, "POST /v1.0/me/calendars") == 1
    cal = mailbox(sim, alice).calendars[created["id"]]
    assert (cal.name, created["color"]) == ("Team", "lightBlue")

    page = ok(call("list-calendars", {**user, "inputs": {"page_limit": 1}}))
    assert len(page["value"]) == 1 and "@odata.nextLink" in page
    page2 = ok(call("list-calendars", {**user, "inputs": {"page_limit": 1, "page_skip": 1}}))
    assert page2["value"][0]["id"] != page["value"][0]["id"]
    everything = ok(call("list-calendars", {**user, "inputs": {"fetch_all": True, "page_limit": 1}}))
    assert {c["name"] for c in everything["value"]} == {"Calendar", "Team"}
    assert "@odata.nextLink" not in everything

    updated = ok(call("update-calendar", {**user, "inputs": {"calendar_id": created["id"], "name": "Team B"}}))
    assert updated["name"] == "Team B" and updated["color"] == "lightBlue"  # colour unchanged
    assert mailbox(sim, alice).calendars[created["id"]].name == "Team B"
    assert hits(sim, "PATCH /v1.0/me/calendars/{id}") == 1

    assert ok(call("delete-calendar", {**user, "inputs": {"calendar_id": created["id"]}}))["ok"] is True
    assert created["id"] not in mailbox(sim, alice).calendars
    assert hits(sim, "DELETE /v1.0/me/calendars/{id}") == 1


def test_create_event_merges_attendees_and_builds_date_time_zones(outlook, call):
    sim, alice = outlook.sim, outlook.alice
    inputs = {
        "subject": "Planning", "body_html": "<p>Agenda</p>", "location_name": "Room 1",
        "attendees": f"{outlook.bob_upn}, carol@example.com",
        "attendees_data_collection": [
            {"emailAddress": {"address": "dave@example.com", "name": "Dave"}, "type": "optional"},
            {"address": "CAROL@example.com", "name": "dup"},  # already listed: first one wins
        ],
        "start_at": "2030-05-01T09:00:00", "start_timezone": "Pacific Standard Time",
        "end_at": "2030-05-01T10:00:00", "end_timezone": "Pacific Standard Time",
    }
    event = ok(call("create-event", {"user_id": alice, "inputs": inputs}))
    assert hits(sim, "POST /v1.0/me/events") == 1
    truth = next(e for e in sim.ground_truth(alice)["events"] if e["id"] == event["id"])
    assert truth["subject"] == "Planning" and truth["location"]["displayName"] == "Room 1"
    assert truth["originalStartTimeZone"] == truth["originalEndTimeZone"] == "Pacific Standard Time"
    assert truth["start"] == {"dateTime": "2030-05-01T16:00:00.0000000", "timeZone": "UTC"}  # PDT = UTC-7
    attendees = {a["emailAddress"]["address"].lower(): a["type"] for a in truth["attendees"]}
    assert attendees == {outlook.bob_upn.lower(): "required", "carol@example.com": "required",
                         "dave@example.com": "optional"}


def test_event_actions_in_a_calendar(outlook, call):
    sim, alice = outlook.sim, outlook.alice
    user = {"user_id": alice}
    cal = sim.create_calendar(alice, "Side")
    times = {"start_at": "2030-01-02T08:00:00Z", "end_at": "2030-01-02T09:00:00+00:00"}
    event = ok(call("create-event", {**user, "inputs": {"calendar_id": cal["id"], "subject": "One", **times,
                                                        "attendees": [outlook.bob_upn]}}))
    assert hits(sim, "POST /v1.0/me/calendars/{id}/events") == 1
    assert event["start"]["timeZone"] == "UTC"

    in_cal = ok(call("list-events", {**user, "inputs": {"calendar_id": cal["id"]}}))
    assert [e["id"] for e in in_cal["value"]] == [event["id"]]
    assert hits(sim, "GET /v1.0/me/calendars/{id}/events") == 1
    ok(call("list-events", {**user, "inputs": {"fetch_all": True}}))
    assert hits(sim, "GET /v1.0/me/events") >= 1

    got = ok(call("get-calendar-event", {**user, "inputs": {"event_id": event["id"]}}))
    assert got["subject"] == "One" and hits(sim, "GET /v1.0/me/events/{id}") == 1

    updated = ok(call("update-event", {**user, "inputs": {"event_id": event["id"], "subject": "Two",
                                                          "end_at": "2030-01-02T10:00:00"}}))
    assert updated["subject"] == "Two"
    truth = next(e for e in sim.ground_truth(alice)["events"] if e["id"] == event["id"])
    assert truth["subject"] == "Two" and truth["end"]["dateTime"].startswith("2030-01-02T10:00:00")

    cancelled = ok(call("cancel-event", {**user, "inputs": {"event_id": event["id"], "comment": "Sorry"}}))
    assert cancelled == {"ok": True, "cancelled": event["id"]}
    assert hits(sim, "POST /v1.0/me/events/{id}/cancel") == 1
    assert event["id"] not in {e["id"] for e in sim.ground_truth(alice)["events"]}

    other = sim.create_event(alice, subject="Gone", start={"dateTime": "2030-01-03T08:00:00", "timeZone": "UTC"},
                             end={"dateTime": "2030-01-03T09:00:00", "timeZone": "UTC"})
    assert ok(call("delete-event", {**user, "inputs": {"event_id": other["id"]}}))["deleted"] == other["id"]
    assert hits(sim, "DELETE /v1.0/me/events/{id}") == 1
    assert other["id"] not in {e["id"] for e in sim.ground_truth(alice)["events"]}


def test_app_only_addresses_the_mailbox_by_user_id(outlook, call):
    sim = outlook.sim
    event = ok(call("create-event", {"user_id": outlook.bob_upn, "app_only": True, "inputs": {
        "subject": "From the app", "start_at": "2030-02-01T10:00:00", "end_at": "2030-02-01T11:00:00"}}))
    assert hits(sim, "POST /v1.0/users/{id}/events") == 1
    assert event["id"] in {e["id"] for e in sim.ground_truth(outlook.bob)["events"]}


def test_bad_inputs_are_400_naming_the_input(outlook, call):
    status, body, _ = call("create-event", {"user_id": outlook.alice, "inputs": {"subject": "x"}})
    assert status == 400 and body["error"]["input"] == "start_at"
    status, body, _ = call("list-events", {"user_id": outlook.alice, "inputs": {"page_limit": "many"}})
    assert status == 400 and body["error"]["input"] == "page_limit"
    status, body, _ = call("list-events", {"user_id": outlook.alice, "inputz": {}})
    assert status == 400 and body["error"]["input"] == "inputz"
    status, body, _ = call("list-events", {"inputs": {}})
    assert status == 400 and body["error"]["input"] == "user_id"
    status, body, _ = call("list-events", raw=b"not json")
    assert status == 400
    status, body, _ = call("no-such-action", {})
    assert status == 404


def test_a_user_id_nobody_linked_is_404_not_a_retryable_503(outlook, call):
    status, body, headers = call("list-calendars", {"user_id": "nobody-linked-this", "inputs": {}})
    assert status == 404, body
    assert body["error"]["code"] == "NotLinked" and body["error"]["userId"] == "nobody-linked-this"
    assert "Retry-After" not in headers


def test_graph_errors_keep_graph_status_code_and_message(outlook, call):
    status, body, _ = call("get-calendar-event", {"user_id": outlook.alice, "inputs": {"event_id": "AAMkNope"}})
    assert status == 404
    assert body["error"]["code"] == "ErrorItemNotFound" and body["error"]["message"]
    assert body["error"]["requestId"]
