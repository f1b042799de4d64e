"""Maintenance triggers: subscription renewal, window upkeep and `GET /api/status`.

Renewal fans out: the timer queues shards of accounts on `subscription-renewal`, and the
queue-triggered `renewal_worker` renews one shard per invocation (shared/subscriptions/shards.py).

Bodies import their modules lazily: this blueprint is loaded with every
function of the app, and cold starts must stay short.
"""

from __future__ import annotations

import json
import logging

import azure.functions as func

from shared.queues.wiring import RENEWAL_TRIGGER_CONNECTION

bp = func.Blueprint()
log = logging.getLogger(__name__)


@bp.timer_trigger(schedule="%RENEWAL_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True)
def renew_subscriptions(timer: func.TimerRequest) -> None:
    """Plan a renewal run: shards of linked accounts on the renewal queue (seconds, whatever the tenant)."""
    from shared.subscriptions.shards import plan_renewal

    plan = plan_renewal()
    log.info("renew_subscriptions%s: run %d, %d account(s) in %d shard(s) queued",
             " (past due)" if timer.past_due else "", plan.run, plan.accounts, plan.shards)


@bp.queue_trigger(arg_name="msg", queue_name="subscription-renewal", connection=RENEWAL_TRIGGER_CONNECTION)
def renewal_worker(msg: func.QueueMessage) -> None:
    """Renew what expires soon, recreate what vanished, self-heal accounts without a subscription, for
    one shard. Per-subscription failures are recorded and never raise; a failure of the whole shard
    raises (the host retries, then poisons); a malformed message is dropped."""
    from shared.subscriptions.shards import renew_shard

    report = renew_shard(msg.get_body())
    for key, error in (report.errors.items() if report else ()):
        log.warning("renewal of %s: %s", key, error)


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
