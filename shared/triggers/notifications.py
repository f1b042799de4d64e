"""Notification triggers: the two Graph receivers and the sync-queue worker.

- `POST /api/graph/notifications` and `POST /api/graph/lifecycle` (anonymous:
  Graph cannot send a function key; trust comes from the HMAC clientState) ->
  `shared.notifications.receiver.handle`;
- queue `calendar-sync` -> `shared.sync.worker.handle_message`.

Only azure.functions is imported at load; the receiver's imports are small and
the sync engine is imported inside the queue trigger.
"""

from __future__ import annotations

import azure.functions as func

from shared.queues.wiring import SYNC_TRIGGER_CONNECTION

bp = func.Blueprint()


def _receive(req: func.HttpRequest) -> func.HttpResponse:
    from shared.notifications.receiver import handle

    try:
        body = req.get_body() or b""
    except ValueError:
        body = b""
    params = {k: v for k, v in req.params.items() if isinstance(v, str)}
    reply = handle(body, req.headers.get("content-type"), params)
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
    if reply.retry_after is not None:
        headers["Retry-After"] = str(reply.retry_after)
    return func.HttpResponse(reply.body, status_code=reply.status, mimetype=reply.content_type,
                             charset="utf-8", headers=headers)


@bp.route(route="graph/notifications", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def graph_notifications(req: func.HttpRequest) -> func.HttpResponse:
    return _receive(req)


@bp.route(route="graph/lifecycle", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def graph_lifecycle(req: func.HttpRequest) -> func.HttpResponse:
    return _receive(req)


@bp.queue_trigger(arg_name="msg", queue_name="calendar-sync", connection=SYNC_TRIGGER_CONNECTION)
def sync_worker(msg: func.QueueMessage) -> None:
    """Transient failures raise (the host retries, then poisons); hopeless messages are dropped."""
    from shared.sync.worker import handle_message

    handle_message(msg.get_body())
