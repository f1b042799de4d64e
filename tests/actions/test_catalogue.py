"""One catalogue drives the CLI list and the HTTP endpoint; no action of the connectors is missing."""

from __future__ import annotations

import json

import azure.functions as func
import pytest

from shared.actions import ACTIONS, InputError, get_action, parse_inputs

# Seed 002 (Prismatic Microsoft Outlook connector), every action, as a literal.
SEED_ACTIONS = [
    "Cancel Event", "Create Calendar", "Create Event", "Create Event Subscription", "Create Mail Folder",
    "Create Mail Folder Subscription", "Delete All Instance Subscriptions", "Delete Calendar", "Delete Event",
    "Delete Mail Folder", "Delete Message", "Delete Subscription", "Get Calendar Event", "Get Current User",
    "Get Mail Message", "Get Schedule Availability", "List Calendars", "List Events", "List Mail Folders",
    "List Mail Messages", "List Subscriptions", "List Supported Languages", "List Supported Timezones",
    "Raw Request", "Send Message", "Update Calendar", "Update Event", "Update Event Subscription Expiration",
]
# Seed 001 (Artisan Microsoft Calendar connector) operations and where they land.
ARTISAN = {"List calendars": "list-calendars", "Create calendar": "create-calendar",
           "List events": "list-events", "Create event": "create-event", "Raw HTTP Request": "raw-request"}
# Seed inputs (labels) and defaults that must be present, per action.
SEED_INPUTS = {
    "Cancel Event": {"Event ID": None, "Comment": None},
    "Create Calendar": {"Name": None, "Color": "auto"},
    "Create Event": {"Calendar ID": None, "Location Name": None, "Subject": None, "Body (HTML)": None,
                     "Attendees Data Collection": None, "Type": None, "Start At": None, "Start Timezone": "UTC",
                     "End At": None, "End Timezone": "UTC"},
    "Update Event": {"Event ID": None, "Start Timezone": "UTC", "End Timezone": "UTC", "Type": None},
    "Create Event Subscription": {"Notification URL": None, "Expiration Date/Time": None,
                                  "Allow Duplicates": False},
    "Create Mail Folder": {"Parent Folder ID": None, "Display name": None},
    "Create Mail Folder Subscription": {"Mail Change Types": None, "Notification URL": None,
                                        "Expiration Date/Time": None},
    "Get Schedule Availability": {"Availability View Interval": 30, "Schedules": None, "Start At": None,
                                  "Start Timezone": "UTC", "End At": None, "End Timezone": "UTC"},
    "List Calendars": {"Page Limit": None, "Page Skip": None, "Fetch All": False},
    "List Events": {"Calendar ID": None, "Page Limit": None, "Page Skip": None, "Fetch All": False},
    "List Mail Folders": {"Parent Folder ID": None, "Page Limit": None, "Page Skip": None, "Fetch All": False},
    "List Mail Messages": {"Folder ID": None, "Search": None, "Filter": None, "Page Limit": None,
                           "Page Skip": None, "Fetch All": False},
    "List Subscriptions": {"Show Instance Webhooks": True},
    "Raw Request": {"URL": None, "Method": "GET", "Data": None, "Form Data": None, "File Data": None,
                    "File Data File Names": None, "Query Parameter": None, "Header": None,
                    "Response Type": "json", "Timeout": None, "Retry Delay (ms)": 0, "Retry On All Errors": False,
                    "Max Retry Count": None, "Use Exponential Backoff": False},
    "Send Message": {"To": None, "CC": None, "BCC": None, "Subject": None, "Message Body": None,
                     "Body Content Type": "html", "Attachments": None, "Dynamic Attachments": None},
    "Update Calendar": {"Calendar ID": None, "Name": None},
    "Update Event Subscription Expiration": {"Subscription ID": None, "Expiration Date/Time": None},
    "Delete Subscription": {"Subscription ID": None},
    "Get Mail Message": {"Message ID": None},
    "Delete Message": {"Message ID": None},
}


def test_catalogue_covers_every_seed_action_and_nothing_unknown():
    assert len(SEED_ACTIONS) == 28
    assert sorted(a.name for a in ACTIONS.values()) == sorted(SEED_ACTIONS)
    for name, slug in ARTISAN.items():
        assert get_action(name).slug == slug


@pytest.mark.parametrize("action_name", sorted(SEED_INPUTS))
def test_seed_inputs_and_defaults(action_name):
    act = get_action(action_name)
    values = parse_inputs(act, {spec.name: "x" for spec in act.inputs if spec.required and spec.type == "string"}
                          | {spec.name: "2025-01-01T00:00:00" for spec in act.inputs
                             if spec.required and spec.type == "datetime"}
                          | {spec.name: ["a@b.c"] for spec in act.inputs if spec.required and spec.type == "list"})
    for label, default in SEED_INPUTS[action_name].items():
        spec = next((s for s in act.inputs if label in (s.label, *s.aliases) or s.label == label), None)
        if spec is None:  # the seed's odd label for attendees
            spec = next(s for s in act.inputs if label.lower() in s.aliases)
        if default is not None:
            assert values[spec.name] == default, (action_name, label)


def test_cli_list_and_http_list_are_the_same_catalogue(cli):
    code, listed, _ = cli("actions", "--json")
    assert code == 0
    import function_app
    from devhost.host import registered_functions

    functions = {f.get_function_name(): f.get_user_function() for f in registered_functions(function_app.app)}
    resp = functions["list_actions"](func.HttpRequest("GET", "http://localhost/api/actions", body=b""))
    over_http = json.loads(resp.get_body())
    assert listed == over_http == json.loads(json.dumps({"actions": [a.describe() for a in ACTIONS.values()]}))
    assert sorted(a["name"] for a in over_http["actions"]) == sorted(SEED_ACTIONS)
    code, text, _ = cli("actions")
    assert all(a.slug in text for a in ACTIONS.values())


def test_inputs_are_parsed_by_labels_keys_and_camel_case():
    act = get_action("create-event")
    v = parse_inputs(act, {"Calendar ID": "c", "startAt": "2025-01-01T09:00:00", "end_at": "2025-01-01T10:00:00",
                           "Type": "a@x.test, b@x.test"})
    assert v["calendar_id"] == "c" and v["attendees"] == ["a@x.test", "b@x.test"]
    assert v["start_timezone"] == "UTC"


@pytest.mark.parametrize(("inputs", "bad"), [
    ({"page_limit": "ten"}, "page_limit"),
    ({"fetch_all": "maybe"}, "fetch_all"),
    ({"nonsense": 1}, "nonsense"),
])
def test_bad_inputs_are_named(inputs, bad):
    with pytest.raises(InputError) as info:
        parse_inputs(get_action("list-calendars"), inputs)
    assert info.value.input == bad


def test_required_and_choices():
    with pytest.raises(InputError) as info:
        parse_inputs(get_action("create-calendar"), {})
    assert info.value.input == "name"
    with pytest.raises(InputError) as info:
        parse_inputs(get_action("create-calendar"), {"name": "x", "color": "purple"})
    assert info.value.input == "color"
    assert parse_inputs(get_action("create-calendar"), {"name": "x", "color": "LIGHTBLUE"})["color"] == "lightBlue"


def test_help_texts_describe_the_product_not_its_sources():
    """What `actions` and GET /api/actions show speaks of this product: no "seed", no claim about
    Outlook limits the connector documentation does not make."""
    from shared.actions import ACTIONS

    for act in ACTIONS.values():
        texts = [act.description, *(spec.help or "" for spec in act.inputs)]
        for text in texts:
            lowered = text.lower()
            assert "seed" not in lowered, (act.slug, text)
            assert "documented maximum" not in lowered, (act.slug, text)
