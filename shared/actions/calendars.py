"""Calendars: list, create, update, delete (the Outlook connector's calendar actions)."""

from __future__ import annotations

from typing import Any

from shared.actions.catalogue import Input, action, paging_inputs
from shared.actions.context import ActionContext, done, list_result, seg

# Graph's calendarColor values (resources/calendar.md).
COLORS = ("auto", "lightBlue", "lightGreen", "lightOrange", "lightGray", "lightYellow", "lightTeal",
          "lightPink", "lightBrown", "lightRed", "maxColor")
COLOR_HELP = "Color of the Calendar (Graph calendarColor)."


def calendar_id_input() -> Input:
    return Input("calendar_id", "string", "Calendar ID", required=True, help="ID of the Calendar to modify.")


@action("List Calendars", "List all Calendars for the user.", *paging_inputs(), area="calendars",
        aliases=("List calendars (Artisan)",))
def list_calendars(ctx: ActionContext, v: dict[str, Any]) -> Any:
    return list_result(ctx, f"{ctx.me}/calendars", v)


@action("Create Calendar", "Create a new Calendar.",
        Input("name", "string", "Name", required=True, help="Name of the Calendar."),
        Input("color", "string", "Color", "auto", help=COLOR_HELP, choices=COLORS),
        area="calendars", aliases=("Create calendar (Artisan)",))
def create_calendar(ctx: ActionContext, v: dict[str, Any]) -> Any:
    return ctx.client.post(f"{ctx.me}/calendars", json={"name": v["name"], "color": v["color"]})


@action("Update Calendar", "Update an existing Calendar.",
        calendar_id_input(),
        Input("name", "string", "Name", help="Name of the Calendar; omitted = unchanged."),
        Input("color", "string", "Color", help=COLOR_HELP + " Omitted = unchanged, so a rename keeps the "
              "colour.", choices=COLORS),
        area="calendars")
def update_calendar(ctx: ActionContext, v: dict[str, Any]) -> Any:
    body = {k: v[k] for k in ("name", "color") if v.get(k) is not None}
    return ctx.client.patch(f"{ctx.me}/calendars/{seg(v['calendar_id'])}", json=body)


@action("Delete Calendar", "Delete an existing Calendar.", calendar_id_input(), area="calendars")
def delete_calendar(ctx: ActionContext, v: dict[str, Any]) -> Any:
    ctx.client.delete(f"{ctx.me}/calendars/{seg(v['calendar_id'])}")
    return done(deleted=v["calendar_id"])
