"""What an action runs with: a Graph client, the mailbox path, settings.

Delegated (a linked user) addresses the mailbox as `/me`; app-only addresses
it as `/users/{id}`. Actions write `ctx.me + "/events"` and work either way.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.actions.catalogue import InputError, parse_timestamp
from shared.graph.paths import InvalidSegment, segment
from shared.jsontypes import JsonValue

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.graph import GraphApi


@dataclass
class ActionContext:
    client: GraphApi  # a GraphClient; a test may wrap it
    settings: Settings
    user_id: str | None = None
    app_only: bool = False

    @property
    def me(self) -> str:
        """'/me' or '/users/{id}': the mailbox the action works on."""
        if not self.app_only:
            return "/me"
        if not self.user_id:
            raise InputError("user_id", "app-only actions on a mailbox need a user id")
        return f"/users/{seg(self.user_id, 'user_id')}"

    @property
    def resource_me(self) -> str:
        """The mailbox as a subscription resource ('me' or 'users/{id}', no leading slash)."""
        return self.me.lstrip("/")


def seg(value: str, input_name: str | None = None) -> str:
    """One path segment from user input (ids may hold '/', '+', '='); a bad id is an InputError (400)."""
    try:
        return segment(value)
    except InvalidSegment as exc:
        raise InputError(input_name, str(exc)) from None


def list_result(ctx: ActionContext, path: str, values: dict[str, Any],
                params: dict[str, Any] | None = None) -> dict[str, Any]:
    """One page ($top/$skip) as Graph returned it, or every item when fetch_all."""
    params = dict(params or {})
    if values.get("fetch_all"):
        return {"value": list(ctx.client.iter_values(path, params=params))}
    if values.get("page_limit") is not None:
        if values["page_limit"] < 1:
            raise InputError("page_limit", "must be at least 1")
        params["$top"] = values["page_limit"]
    if values.get("page_skip") is not None:
        if values["page_skip"] < 0:
            raise InputError("page_skip", "must not be negative")
        params["$skip"] = values["page_skip"]
    return ctx.client.get(path, params=params)


def date_time_zone(at: str | None, zone: str | None, name: str) -> dict[str, str] | None:
    """'Start At' + 'Start Timezone' -> Graph's dateTimeTimeZone.

    A naive timestamp is taken in `zone`; one with Z or an offset is converted to UTC
    (the zone input cannot contradict an explicit offset).
    """
    if not at:
        return None
    parsed = parse_timestamp(at, name)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
        zone = "UTC"
    return {"dateTime": parsed.isoformat(timespec="seconds"), "timeZone": zone or "UTC"}


def utc_timestamp(at: str | None, name: str) -> str | None:
    """An ISO input as the UTC 'YYYY-MM-DDTHH:MM:SSZ' Graph wants for subscriptions (naive = UTC)."""
    if not at:
        return None
    parsed = parse_timestamp(at, name)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def done(**fields: JsonValue) -> dict[str, Any]:
    """The result of an action Graph answers with no body (204/202)."""
    return {"ok": True, **fields}
