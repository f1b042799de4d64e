"""`GET /api/health`: liveness for load balancers and the deploy checks.

It touches neither Graph nor the database, so it answers even when they are
down; `python -m shared doctor` is the deep check.
"""

from __future__ import annotations

import json

import azure.functions as func

from shared import __version__

bp = func.Blueprint()


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    body = {"status": "ok", "version": __version__}
    return func.HttpResponse(json.dumps(body), status_code=200, mimetype="application/json")
