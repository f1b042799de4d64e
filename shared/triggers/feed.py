"""Change-feed triggers: webhook deliveries and the HTTP API's description.

- queue `webhook-deliveries` -> `shared.feed.delivery.deliver` (one signed POST;
  retries and the dead-letter queue are handled there, honouring Retry-After);
- `GET /api/openapi.json` (anonymous: it describes, it grants nothing) ->
  `shared.api.openapi.document`.
"""

from __future__ import annotations

import json

import azure.functions as func

bp = func.Blueprint()


@bp.queue_trigger(arg_name="msg", queue_name="webhook-deliveries", connection="AzureWebJobsStorage")
def webhook_delivery(msg: func.QueueMessage) -> None:
    from shared.feed.delivery import deliver

    deliver(msg.get_body())


@bp.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def openapi(req: func.HttpRequest) -> func.HttpResponse:
    from shared.api.openapi import document

    return func.HttpResponse(json.dumps(document(), indent=1), status_code=200, mimetype="application/json",
                             headers={"Cache-Control": "public, max-age=300"})
