"""Events: list, get, create, update, delete, cancel.

Attendees come from two inputs and are merged: a plain list (addresses or
attendee objects) and a "data collection" (objects from an earlier step),
de-duplicated by address.
"""

from __future__ import annotations

from typing import Any

from shared.actions.catalogue import Input, InputError, action, paging_inputs, time_inputs
from shared.actions.context import ActionContext, date_time_zone, done, list_result, seg
from shared.jsontypes import JsonValue

ATTENDEE_TYPES = ("required", "optional", "resource")


def event_id_input(help_text: str = "Event ID to manipulate.") -> Input:
    return Input("event_id", "string", "Event ID", required=True, help=help_text)


def event_inputs(required_times: bool) -> tuple[Input, ...]:
    return (
        Input("location_name", "string", "Location Name", help="Name of the Location."),
        Input("subject", "string", "Subject", help="Subject of the Event."),
        Input("body_html", "string", "Body (HTML)", help="HTML Body of the Event.", aliases=("body",)),
        Input("attendees_data_collection", "json", "Attendees Data Collection",
              help="Attendee objects from an earlier step ({emailAddress:{address,name}, type} or "
                   "{address|email, name, type}); merged with Attendees."),
        Input("attendees", "list", "Attendees",
              help="Attendees of the Event: addresses (comma-separated or a list) or attendee objects. "
                   "Also accepted as 'type', the Outlook connector's label.", aliases=("type",)),
        *time_inputs(required=required_times),
    )


def _attendee(item: JsonValue, name: str) -> dict[str, Any]:
    address: object  # checked below
    if isinstance(item, str):
        address, display, kind = item.strip(), None, "required"
    elif isinstance(item, dict):
        nested = item.get("emailAddress")
        email: dict[str, Any] = nested if isinstance(nested, dict) else {}
        address = email.get("address") or item.get("address") or item.get("email") or item.get("emailAddress")
        display = email.get("name") or item.get("name")
        kind = str(item.get("type") or "required").lower()
    else:
        raise InputError(name, f"an attendee must be an address or an object, got {item!r}")
    if not isinstance(address, str) or "@" not in address:
        raise InputError(name, f"attendee without a valid email address: {item!r}")
    if kind not in ATTENDEE_TYPES:
        raise InputError(name, f"attendee type {kind!r} is not one of {', '.join(ATTENDEE_TYPES)}")
    email_address = {"address": address.strip()}
    if display:
        email_address["name"] = str(display)
    return {"emailAddress": email_address, "type": kind}


def merge_attendees(listed: JsonValue, collection: JsonValue) -> list[dict[str, Any]] | None:
    """Attendees from both inputs, first occurrence of an address wins; None if neither was given."""
    if listed is None and collection is None:
        return None
    if collection is not None and not isinstance(collection, list):
        collection = [collection]
    merged: dict[str, dict[str, Any]] = {}
    for name, items in (("attendees", listed or []), ("attendees_data_collection", collection or [])):
        for item in items:
            attendee = _attendee(item, name)
            merged.setdefault(attendee["emailAddress"]["address"].lower(), attendee)
    return list(merged.values())


def event_body(v: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if v.get("subject") is not None:
        body["subject"] = v["subject"]
    if v.get("body_html") is not None:
        body["body"] = {"contentType": "html", "content": v["body_html"]}
    if v.get("location_name") is not None:
        body["location"] = {"displayName": v["location_name"]}
    attendees = merge_attendees(v.get("attendees"), v.get("attendees_data_collection"))
    if attendees is not None:
        body["attendees"] = attendees
    for edge in ("start", "end"):
        value = date_time_zone(v.get(f"{edge}_at"), v.get(f"{edge}_timezone"), f"{edge}_at")
        if value is not None:
            body[edge] = value
    return body


@action("List Events", "List all Events for the user.",
        Input("calendar_id", "string", "Calendar ID",
              help="Calendar ID to list Events of; all events of the user if unspecified."),
        *paging_inputs(), area="events", aliases=("List events (Artisan)",))
def list_events(ctx: ActionContext, v: dict[str, Any]) -> Any:
    path = f"{ctx.me}/calendars/{seg(v['calendar_id'])}/events" if v.get("calendar_id") else f"{ctx.me}/events"
    return list_result(ctx, path, v)


@action("Get Calendar Event", "Gets information about a specific calendar event.",
        event_id_input("The ID of a calendar event."), area="events", aliases=("Get Event",))
def get_event(ctx: ActionContext, v: dict[str, Any]) -> Any:
    return ctx.client.get(f"{ctx.me}/events/{seg(v['event_id'])}")


@action("Create Event", "Create an Event on a Calendar.",
        Input("calendar_id", "string", "Calendar ID",
              help="Calendar to create the Event in; the user's default calendar if unspecified."),
        *event_inputs(required_times=True), area="events", aliases=("Create event (Artisan)",))
def create_event(ctx: ActionContext, v: dict[str, Any]) -> Any:
    path = f"{ctx.me}/calendars/{seg(v['calendar_id'])}/events" if v.get("calendar_id") else f"{ctx.me}/events"
    return ctx.client.post(path, json=event_body(v))


@action("Update Event", "Update an existing Event (only the inputs given are changed).",
        event_id_input(), *event_inputs(required_times=False), area="events")
def update_event(ctx: ActionContext, v: dict[str, Any]) -> Any:
    body = event_body(v)
    if not body:
        raise InputError(None, "nothing to update: give at least one of subject, body_html, location_name, "
                               "attendees, start_at, end_at")
    return ctx.client.patch(f"{ctx.me}/events/{seg(v['event_id'])}", json=body)


@action("Delete Event", "Delete an Event.", event_id_input(), area="events")
def delete_event(ctx: ActionContext, v: dict[str, Any]) -> Any:
    ctx.client.delete(f"{ctx.me}/events/{seg(v['event_id'])}")
    return done(deleted=v["event_id"])


@action("Cancel Event", "Cancel an Event (organizer only): attendees receive the cancellation.",
        event_id_input(),
        Input("comment", "string", "Comment", help="Comment about the cancellation sent to all attendees."),
        area="events")
def cancel_event(ctx: ActionContext, v: dict[str, Any]) -> Any:
    body = {"Comment": v["comment"]} if v.get("comment") else {}
    ctx.client.post(f"{ctx.me}/events/{seg(v['event_id'])}/cancel", json=body)
    return done(cancelled=v["event_id"])
