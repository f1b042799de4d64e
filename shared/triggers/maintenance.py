"""Maintenance triggers: subscription renewal, window upkeep and `GET /api/status`.

Bodies import their modules lazily: this blueprint is loaded with every
function of the app, and cold starts must stay short.
"""

from __future__ import annotations

import json
import logging

import azure.functions as func

bp = func.Blueprint()
log = logging.getLogger(__name__)


@bp.timer_trigger(schedule="%RENEWAL_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True)
def renew_subscriptions(timer: func.TimerRequest) -> None:
    """Renew what expires soon, recreate what vanished, self-heal accounts without a subscription."""
    from shared.subscriptions import renew_due

    report = renew_due()
    log.info("renew_subscriptions%s: %s", " (past due)" if timer.past_due else "", report.summary())
    for user_id, error in report.errors.items():
        log.warning("renewal of user %s: %s", user_id, error)


@bp.timer_trigger(schedule="%WINDOW_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True)
def advance_window(timer: func.TimerRequest) -> None:
    """Queue a window sync for every linked account whose calendar-view window moved."""
    from shared.ops.window import enqueue_window_syncs

    queued = enqueue_window_syncs()
    log.info("advance_window: %d account(s) queued for a window sync", len(queued))


@bp.route(route="status", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def status(req: func.HttpRequest) -> func.HttpResponse:
    from shared.ops.status import collect_status

    try:
        doc = collect_status(user_id=req.params.get("user") or None)
    except Exception as exc:
        log.exception("status failed")
        body = {"healthy": False, "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
        return func.HttpResponse(json.dumps(body), status_code=503, mimetype="application/json")
    return func.HttpResponse(json.dumps(doc), status_code=200, mimetype="application/json",
                             headers={"Cache-Control": "no-store"})
