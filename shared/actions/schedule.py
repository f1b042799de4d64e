"""Free/busy (getSchedule), supported time zones and languages."""

from __future__ import annotations

from typing import Any

from shared.actions.catalogue import Input, InputError, action, strings, time_inputs
from shared.actions.context import ActionContext, date_time_zone


@action("Get Schedule Availability",
        "Get the free/busy availability information for a collection of users.",
        Input("availability_view_interval", "integer", "Availability View Interval", 30,
              help="Duration of one time slot of the availability view, in minutes (5 to 1440)."),
        Input("schedules", "list", "Schedules", required=True,
              help="SMTP addresses of users, distribution lists or resources."),
        *time_inputs(required=True), area="schedule")
def get_schedule(ctx: ActionContext, v: dict[str, Any]) -> Any:
    interval = v["availability_view_interval"]
    if not 5 <= interval <= 1440:
        raise InputError("availability_view_interval", "must be between 5 and 1440 minutes")
    body = {
        "schedules": strings(v["schedules"], "schedules"),
        "startTime": date_time_zone(v["start_at"], v["start_timezone"], "start_at"),
        "endTime": date_time_zone(v["end_at"], v["end_timezone"], "end_at"),
        "availabilityViewInterval": interval,
    }
    return ctx.client.post(f"{ctx.me}/calendar/getSchedule", json=body)


@action("List Supported Languages", "List supported languages for current user.", area="schedule")
def list_languages(ctx: ActionContext, v: dict[str, Any]) -> Any:
    return ctx.client.get(f"{ctx.me}/outlook/supportedLanguages")


@action("List Supported Timezones", "List supported timezones for current user.",
        Input("time_zone_standard", "string", "Time Zone Standard", "Windows", choices=("Windows", "Iana"),
              help="Windows names (Graph's default) or IANA names."),
        area="schedule")
def list_time_zones(ctx: ActionContext, v: dict[str, Any]) -> Any:
    path = f"{ctx.me}/outlook/supportedTimeZones"
    if v["time_zone_standard"] == "Iana":
        path += "(TimeZoneStandard=microsoft.graph.timeZoneStandard'Iana')"
    return ctx.client.get(path)
