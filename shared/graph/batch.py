"""JSON batching: up to 20 requests per POST /$batch, retried item by item.

Graph answers each inner request separately; a throttled item (429/503/504
with its own retry-after) is sent again in a later round while the others
keep their answers. A dependent of a retried item that failed with 424 is
retried with it. Dependencies on items of an earlier chunk are resolved here:
satisfied ones are dropped, failed ones give the dependent a local 424.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.graph.retry import THROTTLE_STATUSES, RetryPolicy, parse_retry_after

if TYPE_CHECKING:
    from shared.graph.client import GraphClient

MAX_BATCH = 20


def _normalize(client: GraphClient, index: int, request: dict[str, Any]) -> dict[str, Any]:
    item = dict(request)
    item["id"] = str(item.get("id") or index + 1)
    item["method"] = str(item.get("method", "GET")).upper()
    item["url"] = client.relative(str(item["url"]))
    if "body" in item and item["body"] is not None:
        headers = {k: v for k, v in (item.get("headers") or {}).items()}
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
        item["headers"] = headers
    depends = item.get("dependsOn")
    if depends:
        item["dependsOn"] = [str(d) for d in depends]
    return item


def _header(response: dict[str, Any], name: str) -> str | None:
    for key, value in (response.get("headers") or {}).items():
        if key.lower() == name:
            return str(value)
    return None


def _failed_dependency(item: dict[str, Any], dep: str) -> dict[str, Any]:
    return {"id": item["id"], "status": 424, "headers": {},
            "body": {"error": {"code": "FailedDependency", "message": f"request {dep} failed"}}}


def run_batch(client: GraphClient, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Responses ({id, status, headers, body}) in the order of `requests`."""
    items = [_normalize(client, i, r) for i, r in enumerate(requests)]
    ids = [item["id"] for item in items]
    if len(set(ids)) != len(ids):
        raise ValueError("batch request ids must be unique")
    results: dict[str, dict[str, Any]] = {}
    policy = RetryPolicy(max_retries=client.max_retries)
    for start in range(0, len(items), MAX_BATCH):
        pending = items[start:start + MAX_BATCH]
        rounds = 0
        while pending:
            to_send = []
            for item in pending:
                deps = item.get("dependsOn") or []
                failed = next((d for d in deps if d in results and results[d]["status"] >= 400), None)
                if failed is not None:
                    results[item["id"]] = _failed_dependency(item, failed)
                    continue
                outgoing = {k: v for k, v in item.items() if k != "dependsOn"}
                open_deps = [d for d in deps if d not in results]
                if open_deps:
                    outgoing["dependsOn"] = open_deps
                to_send.append(outgoing)
            if not to_send:
                break
            answer = client.post("/$batch", json={"requests": to_send}) or {}
            by_id = {str(r.get("id")): r for r in answer.get("responses") or []}
            retry_ids: set[str] = set()
            wait = 0.0
            can_retry = rounds < policy.max_retries
            for item in to_send:
                response = by_id.get(item["id"]) or {
                    "id": item["id"], "status": 500, "headers": {},
                    "body": {"error": {"code": "MissingBatchResponse", "message": "no response in the batch"}},
                }
                status = int(response.get("status", 500))
                if can_retry and status in THROTTLE_STATUSES:
                    retry_ids.add(item["id"])
                    wait = max(wait, policy.wait(rounds + 1, parse_retry_after(_header(response, "retry-after"))))
                else:
                    results[item["id"]] = response
            # A dependent that failed only because its dependency was throttled goes again too.
            grew = True
            while grew and retry_ids:
                grew = False
                for item in to_send:
                    deps = set(item.get("dependsOn") or [])
                    if item["id"] not in retry_ids and results.get(item["id"], {}).get("status") == 424 \
                            and deps & retry_ids:
                        retry_ids.add(item["id"])
                        results.pop(item["id"], None)
                        grew = True
            pending = [item for item in pending if item["id"] in retry_ids]
            if pending:
                rounds += 1
                client.sleep(wait)
    return [results[item_id] for item_id in ids]
