"""Change-notification subscriptions created, renewed, listed and deleted as actions.

Defaults point at this app: notifications to APP_BASE_URL/api/graph/notifications,
lifecycle events to APP_BASE_URL/api/graph/lifecycle, so subscriptions made
here are validated and published by the same receiver as the replication ones.
"This instance's" subscriptions are those whose notificationUrl starts with
APP_BASE_URL. Among them, the replication's own per-calendar subscriptions (their
signed routing id is a `sync` one) are never listed, nor deleted, unless the caller
passes `include_sync=true`: deleting one stops near-real-time replication of that
calendar until the next renewal run recreates it.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import TYPE_CHECKING, Any

from shared.actions.catalogue import Input, InputError, action, strings
from shared.actions.context import ActionContext, done, seg, utc_timestamp

if TYPE_CHECKING:
    from shared.graph import GraphError

NOTIFICATIONS_PATH = "/api/graph/notifications"
LIFECYCLE_PATH = "/api/graph/lifecycle"
CHANGE_TYPES = ("created", "updated", "deleted")

EXPIRATION_HELP = ("Expiration date/time (UTC if no offset). Default: now + SUBSCRIPTION_LIFETIME_MINUTES "
                   "(10070; Outlook allows 10080; lowered automatically if Graph reports a smaller limit).")


def expiration_input() -> Input:
    return Input("expiration", "datetime", "Expiration Date/Time", help=EXPIRATION_HELP,
                 aliases=("expiration_date_time", "expiration_datetime"))


def notification_inputs() -> tuple[Input, ...]:
    return (
        Input("notification_url", "string", "Notification URL",
              help=f"URL Graph posts notifications to. Default: APP_BASE_URL{NOTIFICATIONS_PATH}."),
        Input("lifecycle_notification_url", "string", "Lifecycle Notification URL",
              help=f"URL for lifecycle events. Default: APP_BASE_URL{LIFECYCLE_PATH}."),
    )


def subscription_id_input() -> Input:
    return Input("subscription_id", "string", "Subscription ID", required=True, help="Subscription ID to manage.")


def _default_expiration(ctx: ActionContext, minutes: int | None = None) -> str:
    minutes = minutes or ctx.settings.subscription_lifetime_minutes
    return (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _limit_from(error: GraphError) -> int | None:
    """Graph's 'can only be N minutes in the future' limit, if that is what the error says."""
    from shared.subscriptions.limits import parse_extension_limit

    return parse_extension_limit(error.message) if error.status in (400, 403) else None


def _send_with_expiration(ctx: ActionContext, method: str, path: str, body: dict[str, Any],
                          requested: str | None) -> Any:
    """POST/PATCH; with a defaulted expiration, retry once at the limit Graph names."""
    from shared.graph import GraphError

    send = ctx.client.post if method == "POST" else ctx.client.patch
    body["expirationDateTime"] = utc_timestamp(requested, "expiration") or _default_expiration(ctx)
    try:
        return send(path, json=body)
    except GraphError as exc:
        limit = _limit_from(exc) if requested is None else None
        if limit is None:
            raise
        body["expirationDateTime"] = _default_expiration(ctx, max(limit - 1, 1))
        return send(path, json=body)


def _target(ctx: ActionContext, v: dict[str, Any], resource: str) -> tuple[str, str, str]:
    """(notificationUrl, lifecycleNotificationUrl, clientState).

    Defaults come from shared.notifications.client_state: this app's receiver URLs carrying an
    outbound routing id, and the HMAC clientState the receiver verifies; notifications are then
    published to the outbound queue. A caller's own URL gets a random clientState (returned in
    the result, since Graph lists subscriptions without it).
    """
    from shared.notifications.client_state import OUTBOUND, issue

    issued = issue(OUTBOUND, f"action:{ctx.user_id or 'app'}:{resource}", ctx.settings)
    notification_url = v.get("notification_url") or issued.notification_url
    lifecycle_url = v.get("lifecycle_notification_url") or issued.lifecycle_notification_url
    state = issued.client_state if notification_url == issued.notification_url else secrets.token_urlsafe(32)
    return notification_url, lifecycle_url, state


def include_sync_input() -> Input:
    return Input("include_sync", "boolean", "Include Sync Subscriptions", False,
                 help="Also act on this app's own replication subscriptions (one per replicated calendar). "
                      "Deleting them pauses near-real-time replication until the next renewal run.")


def is_sync_subscription(sub: dict[str, Any]) -> bool:
    """A replication subscription of this app: its notification URL carries a `sync` routing id."""
    from shared.notifications.client_state import SYNC, routing_of_url

    routing = routing_of_url(sub.get("notificationUrl"))
    return routing is not None and routing.kind == SYNC


def _base(ctx: ActionContext) -> str:
    return ctx.settings.app_base_url.rstrip("/")


def is_instance_url(ctx: ActionContext, url: str | None) -> bool:
    if not url:
        return False
    base = _base(ctx).lower()
    return url.lower() == base or url.lower().startswith(base + "/")


def _create(ctx: ActionContext, v: dict[str, Any], resource: str, change_type: str,
            allow_duplicates: bool) -> Any:
    notification_url, lifecycle_url, client_state = _target(ctx, v, resource)
    for name, url in (("notification_url", notification_url), ("lifecycle_notification_url", lifecycle_url)):
        if not url.startswith(("https://", "http://")):
            raise InputError(name, "must be an absolute https URL")
    if not allow_duplicates:
        for sub in ctx.client.iter_values("/subscriptions"):
            if (sub.get("notificationUrl") == notification_url
                    and str(sub.get("resource", "")).lower() == resource.lower()):
                return {**sub, "created": False}
    body = {
        "changeType": change_type,
        "notificationUrl": notification_url,
        "lifecycleNotificationUrl": lifecycle_url,
        "resource": resource,
        "clientState": client_state,
        "latestSupportedTlsVersion": "v1_2",
    }
    sub = _send_with_expiration(ctx, "POST", "/subscriptions", body, v.get("expiration"))
    return {**sub, "created": True}


def _change_types(value: list[Any], name: str) -> str:
    kinds = [k.strip().lower() for k in strings(value, name) if k.strip()]
    bad = [k for k in kinds if k not in CHANGE_TYPES]
    if bad or not kinds:
        raise InputError(name, f"change types must be among {', '.join(CHANGE_TYPES)}")
    return ",".join(dict.fromkeys(kinds))


@action("Create Event Subscription", "Create an Event subscription for the user's calendar events.",
        *notification_inputs(), expiration_input(),
        Input("allow_duplicates", "boolean", "Allow Duplicates", False,
              help="Allow more than one subscription per endpoint; otherwise an existing one is returned."),
        Input("change_types", "list", "Change Types", "created,updated,deleted",
              help="The changes to be notified of: created, updated, deleted."),
        area="subscriptions")
def create_event_subscription(ctx: ActionContext, v: dict[str, Any]) -> Any:
    change_types = v["change_types"]
    if isinstance(change_types, str):
        change_types = change_types.split(",")
    return _create(ctx, v, f"{ctx.resource_me}/events", _change_types(change_types, "change_types"),
                   v["allow_duplicates"])


@action("Create Mail Folder Subscription", "Create a Mail Folder (messages) subscription.",
        Input("mail_change_types", "list", "Mail Change Types", required=True,
              help="The types of change to listen for: created, updated, deleted."),
        *notification_inputs(), expiration_input(),
        Input("folder_id", "string", "Folder ID", "inbox", help="Mail folder id or well-known name."),
        area="subscriptions")
def create_mail_subscription(ctx: ActionContext, v: dict[str, Any]) -> Any:
    resource = f"{ctx.resource_me}/mailFolders('{v['folder_id']}')/messages"
    return _create(ctx, v, resource, _change_types(v["mail_change_types"], "mail_change_types"),
                   allow_duplicates=True)


@action("Update Event Subscription Expiration", "Renew a subscription: set a new expiration.",
        subscription_id_input(), expiration_input(), area="subscriptions", needs_user=False)
def update_expiration(ctx: ActionContext, v: dict[str, Any]) -> Any:
    return _send_with_expiration(ctx, "PATCH", f"/subscriptions/{seg(v['subscription_id'])}", {},
                                 v.get("expiration"))


@action("List Subscriptions", "List the subscriptions of this app (not its replication subscriptions "
        "unless include_sync).",
        Input("show_instance_webhooks", "boolean", "Show Instance Webhooks", True,
              help="Only subscriptions whose notification URL is this app's (starts with APP_BASE_URL)."),
        include_sync_input(), area="subscriptions", needs_user=False)
def list_subscriptions(ctx: ActionContext, v: dict[str, Any]) -> Any:
    subs = list(ctx.client.iter_values("/subscriptions"))
    if v["show_instance_webhooks"]:
        subs = [s for s in subs if is_instance_url(ctx, s.get("notificationUrl"))]
    if not v["include_sync"]:
        subs = [s for s in subs if not is_sync_subscription(s)]
    return {"value": subs}


@action("Delete Subscription", "Delete an existing subscription (a replication subscription only with "
        "include_sync).", subscription_id_input(), include_sync_input(), area="subscriptions", needs_user=False)
def delete_subscription(ctx: ActionContext, v: dict[str, Any]) -> Any:
    path = f"/subscriptions/{seg(v['subscription_id'])}"
    if not v["include_sync"] and is_sync_subscription(ctx.client.get(path)):
        raise InputError("subscription_id", "is one of this app's replication subscriptions; it is kept "
                                            "unless include_sync=true is given")
    ctx.client.delete(path)
    return done(deleted=v["subscription_id"])


@action("Delete All Instance Subscriptions", "Delete all subscriptions pointed at this instance "
        "(notification URL under APP_BASE_URL) except the replication's own unless include_sync; one $batch "
        "per 20.", include_sync_input(), area="subscriptions", needs_user=False)
def delete_instance_subscriptions(ctx: ActionContext, v: dict[str, Any]) -> Any:
    mine = [s for s in ctx.client.iter_values("/subscriptions") if is_instance_url(ctx, s.get("notificationUrl"))]
    kept = [s["id"] for s in mine if not v["include_sync"] and is_sync_subscription(s)]
    ids = [s["id"] for s in mine if s["id"] not in kept]
    answers = ctx.client.batch([{"method": "DELETE", "url": f"/subscriptions/{seg(i)}"} for i in ids])
    deleted, failed = [], []
    for sub_id, answer in zip(ids, answers, strict=True):
        status = int(answer.get("status", 500))
        if status < 400 or status == 404:  # 404: already gone, which is what was asked
            deleted.append(sub_id)
        else:
            error = (answer.get("body") or {}).get("error") or {}
            failed.append({"id": sub_id, "status": status, "code": error.get("code"),
                           "message": error.get("message")})
    return {"ok": not failed, "deleted": deleted, "failed": failed, "kept_sync": kept}
