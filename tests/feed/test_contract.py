"""The change-feed contract: the schemas are valid JSON Schema and the product's messages match them."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator, ValidationError

from shared.feed.contract import SCHEMAS, load_schema
from shared.storage.types import OutboxEntry
from shared.sync import outbound
from tests.feed.contract import validate

EVENTS = "microsoft_calendar_event_v1"


@pytest.mark.parametrize("name", SCHEMAS)
def test_every_schema_is_valid_json_schema(name):
    Draft202012Validator.check_schema(load_schema(name))
    assert load_schema(name)["properties"]["schema"]["const"] == name


def test_row_messages_validate_for_each_kind_and_when_truncated():
    created = OutboxEntry(3, EVENTS, "e1", "created", "ck1")
    deleted = OutboxEntry(4, EVENTS, "e1", "deleted", "")
    assert validate(outbound.message_for("u", created, {"id": "e1", "changeKey": "ck1"}))["sequence"] == 3
    assert validate(outbound.message_for("u", deleted, None))["data"] is None
    big = validate(outbound.message_for("u", created, {"body": "x" * 80_000}))
    assert big["truncated"] is True and big["data"] is None


def test_packed_messages_validate_and_each_change_is_a_v1_message():
    entries = [OutboxEntry(5, EVENTS, "e1", "created", "ck1"), OutboxEntry(6, EVENTS, "e2", "deleted", ""),
               OutboxEntry(7, EVENTS, "e3", "updated", "ck9")]
    texts = [outbound.change_text(entries[0], json.dumps({"id": "e1"})), outbound.change_text(entries[1], None),
             outbound.change_text(entries[2], json.dumps({"body": "x" * 80_000}))]
    [message] = list(outbound.pack("u", texts))
    body = validate(message)
    assert body["schema"] == "row-changes.v2" and [c["sequence"] for c in body["changes"]] == [5, 6, 7]
    assert body["changes"][2]["truncated"] is True and body["changes"][2]["data"] is None
    for change, entry in zip(body["changes"], entries, strict=True):  # the same ids as the v1 messages
        v1 = validate({"schema": "row-change.v1", "user_id": "u", **change})
        assert v1["id"] == outbound.dedup_id(EVENTS, entry.remote_id, entry.version, entry.kind)
    with pytest.raises(ValidationError):
        validate({**body, "changes": []})
    with pytest.raises(ValidationError):
        validate({**body, "changes": [{**body["changes"][0], "user_id": "u"}]})


@pytest.mark.parametrize("change", [
    {"data": None},                                   # an update without data and not truncated
    {"type": "row.deleted"},                          # a deletion with data
    {"table": "microsoft_calendar_account_v1"},       # not a replicated table
    {"sequence": 0},
    {"id": "not-hex"},
    {"extra": 1},
])
def test_the_schema_rejects_what_consumers_could_not_rely_on(change):
    good = json.loads(outbound.message_for("u", OutboxEntry(1, EVENTS, "e1", "updated", "v"), {"id": "e1"}))
    validate(good)
    with pytest.raises(ValidationError):
        validate({**good, **change})


def test_forwarded_notifications_validate():
    from shared.notifications.receiver import _outbound_message

    change = {"subscriptionId": "s", "changeType": "created", "resource": "me/messages/1", "clientState": "x"}
    first = validate(_outbound_message("action:u:me/messages", change, 1.0))
    assert first["type"] == "notification" and "clientState" not in first["notification"]
    assert first["id"] == json.loads(_outbound_message("action:u:me/messages", change, 2.0))["id"]  # duplicates
    lifecycle = validate(_outbound_message("action:u:me/messages", {"subscriptionId": "s",
                                                                    "lifecycleEvent": "missed"}, 1.0))
    assert lifecycle["schema"] == "lifecycle.v1"
