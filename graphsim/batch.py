"""JSON batching: up to 20 requests, dependsOn ordering, 424 for failed dependencies."""

from __future__ import annotations

import json
import random
from typing import TYPE_CHECKING, Any

from .util import GraphError
from .wire import Request, Response

if TYPE_CHECKING:
    from .simulator import GraphSimulator

MAX_REQUESTS = 20


def run_batch(sim: GraphSimulator, req: Request) -> Response:
    sim.graph.authenticate(req)
    payload = req.json()
    reqs = payload.get("requests") if isinstance(payload, dict) else None
    if not isinstance(reqs, list) or not reqs:
        raise GraphError(400, "BadRequest", "Invalid batch payload format.")
    if len(reqs) > MAX_REQUESTS:
        raise GraphError(400, "BadRequest", f"The number of requests in a batch exceeds the limit of "
                         f"{MAX_REQUESTS}.")
    ids = [str(r.get("id", "")) for r in reqs]
    if any(not i for i in ids) or len(set(ids)) != len(ids):
        raise GraphError(400, "BadRequest", "Batch request ids must be present and unique.")
    by_id = {str(r["id"]): r for r in reqs}
    for r in reqs:
        url = str(r.get("url", ""))
        # Absolute URLs are accepted for this service and version (msgraph-sdk sends them), nothing else.
        if url.lower().startswith(("http://", "https://")) and not url.startswith(sim.graph_url + "/"):
            raise GraphError(400, "BadRequest", "Batch request urls must be relative or point to this "
                             "service and version.")
        for dep in r.get("dependsOn") or []:
            if dep not in by_id:
                raise GraphError(400, "BadRequest", f"Request '{r['id']}' depends on unknown id '{dep}'.")
    results: dict[str, dict[str, Any]] = {}

    def run(r: dict[str, Any], stack: tuple[str, ...] = ()) -> dict[str, Any]:
        rid = str(r["id"])
        if rid in results:
            return results[rid]
        if rid in stack:
            raise GraphError(400, "BadRequest", "Batch dependsOn contains a cycle.")
        for dep in r.get("dependsOn") or []:
            res = run(by_id[dep], (*stack, rid))
            if not 200 <= res["status"] < 300:
                results[rid] = {"id": rid, "status": 424, "body": {"error": {
                    "code": "FailedDependency", "message": "Dependent request failed."}}}
                return results[rid]
        results[rid] = _one(sim, req, r)
        return results[rid]

    for r in reqs:
        run(r)
    out = [results[i] for i in ids]
    random.shuffle(out)   # Graph answers in any order; clients must match by id.
    return Response.json(200, {"responses": out})


def _one(sim: GraphSimulator, outer: Request, r: dict[str, Any]) -> dict[str, Any]:
    rid = str(r["id"])
    headers = {k.lower(): str(v) for k, v in (r.get("headers") or {}).items()}
    body = r.get("body")
    if body is not None and "content-type" not in headers:
        return {"id": rid, "status": 400, "body": {"error": {
            "code": "BadRequest", "message": "Content-Type header is required when a body is present."}}}
    raw = json.dumps(body).encode() if body is not None and not isinstance(body, str) else (body or "").encode()
    url = str(r.get("url", "")).removeprefix(sim.graph_url)
    target = "/v1.0" + (url if url.startswith("/") else "/" + url)
    h = dict(headers)
    h["authorization"] = outer.headers.get("authorization", "")
    inner = Request.build(str(r.get("method", "GET")), target, h, raw)
    resp = sim.dispatch(inner, count_prefix="$batch ")
    out: dict[str, Any] = {"id": rid, "status": resp.status,
                           "headers": {k: v for k, v in resp.headers.items()
                                       if k.lower() in ("content-type", "retry-after", "location",
                                                        "preference-applied")}}
    if resp.body:
        try:
            out["body"] = json.loads(resp.body)
        except ValueError:
            out["body"] = resp.body.decode("utf-8", "replace")
    return out
