"""Issue 12 items 9 and 10 on the actions: hostile ids and inputs answer 400, never 500, and an id is
always exactly one path segment."""

from __future__ import annotations

import json

import pytest

from shared.graph.paths import InvalidSegment, segment


@pytest.mark.parametrize("value", ["", ".", "..", "a\ud800b", "\udfff"])
def test_segment_refuses_what_cannot_be_one_path_segment(value):
    with pytest.raises(InvalidSegment):
        segment(value)


def test_segment_escapes_separators_and_dots_stay_inside_one_segment():
    assert segment("a/b?c#d") == "a%2Fb%3Fc%23d"
    assert segment("AAMkA==") == "AAMkA=="
    assert segment("alice@contoso.test") == "alice@contoso.test"
    assert segment("...") == "..." and segment("a..b") == "a..b"
    assert segment("..%2F") == "..%252F"


@pytest.mark.parametrize("calendar_id", ["..", "."])
def test_dot_ids_never_climb_a_path_level(outlook, call, calendar_id):
    before = dict(outlook.sim.counters())
    status, body, _ = call("update-calendar", {"user_id": outlook.alice,
                                               "inputs": {"calendar_id": calendar_id, "name": "x"}})
    assert status == 400 and body["error"]["code"] == "InvalidInput", body
    assert outlook.sim.counters() == before  # nothing reached Graph (PATCH /v1.0/me/ before the fix)


@pytest.mark.parametrize(("action", "body"), [
    ("get-calendar-event", {"inputs": {"event_id": "a\ud800"}}),
    ("delete-event", {"inputs": {"event_id": ".."}}),
    ("get-mail-message", {"inputs": {"message_id": "\udc00"}}),
    ("get-calendar-event", {"user_id": "\ud800", "app_only": True, "inputs": {"event_id": "x"}}),
    ("get-calendar-event", {"user_id": "..", "app_only": True, "inputs": {"event_id": "x"}}),
    ("send-message", {"inputs": {"to": [{}], "subject": "s", "message_body": "b"}}),
    ("send-message", {"inputs": {"to": [None, 3], "subject": "s", "message_body": "b"}}),
    ("create-event", {"inputs": {"subject": "s", "start_at": "2030-01-01T10:00:00",
                                 "end_at": "2030-01-01T11:00:00", "attendees": [{}, None]}}),
    ("create-mail-folder-subscription", {"inputs": {"mail_change_types": [None]}}),
    ("create-event-subscription", {"inputs": {"change_types": [None, {}]}}),
])
def test_hostile_inputs_are_400(outlook, call, action, body):
    body = {"user_id": outlook.alice, **body}
    raw = json.dumps(body).encode()  # json.dumps escapes lone surrogates as \\udXXX, as an attacker would
    status, answer, _ = call(action, raw=raw)
    assert 400 <= status < 500 and status != 404, (action, status, answer)
    assert "Traceback" not in json.dumps(answer)


def test_deeply_nested_action_body_is_400(call):
    status, answer, _ = call("list-calendars", raw=b'{"inputs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    assert status == 400, answer
