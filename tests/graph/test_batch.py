"""$batch: chunking, ids, relative urls, per-item throttling retries, dependsOn, order."""

from __future__ import annotations

import json

import requests
import responses

from shared.graph import GraphClient

BASE = "https://graph.microsoft.com/v1.0"


def make():
    sleeps: list[float] = []
    return GraphClient(BASE, lambda: "t", session=requests.Session(), sleep=sleeps.append), sleeps


def sent_batches() -> list[list[dict]]:
    return [json.loads(c.request.body)["requests"] for c in responses.calls]


def echo(request):
    """A batch endpoint answering every item 200 with its url, in reverse order."""
    items = json.loads(request.body)["requests"]
    answer = [{"id": i["id"], "status": 200, "headers": {}, "body": {"url": i["url"]}} for i in reversed(items)]
    return 200, {}, json.dumps({"responses": answer})


@responses.activate
def test_chunks_of_twenty_relative_urls_order_kept():
    responses.add_callback(responses.POST, f"{BASE}/$batch", callback=echo)
    client, _ = make()
    reqs = [{"method": "GET", "url": f"/me/events/{i}"} for i in range(45)]
    reqs[3]["url"] = f"{BASE}/me/events/3"  # absolute on the same origin becomes relative
    out = client.batch(reqs)
    assert [len(b) for b in sent_batches()] == [20, 20, 5]
    assert [o["body"]["url"] for o in out] == [f"/me/events/{i}" for i in range(45)]
    ids = [i["id"] for b in sent_batches() for i in b]
    assert len(set(ids)) == 45


@responses.activate
def test_body_gets_content_type_and_throttled_item_is_retried():
    calls = {"n": 0}

    def cb(request):
        calls["n"] += 1
        items = json.loads(request.body)["requests"]
        answer = []
        for i in items:
            if i["id"] == "2" and calls["n"] == 1:
                answer.append({"id": "2", "status": 429, "headers": {"Retry-After": "3"},
                               "body": {"error": {"code": "TooManyRequests", "message": "x"}}})
            elif i["id"] == "3" and calls["n"] == 1:  # depends on 2, which was throttled
                answer.append({"id": "3", "status": 424, "headers": {}, "body": {}})
            else:
                answer.append({"id": i["id"], "status": 201, "headers": {}, "body": {"n": calls["n"]}})
        return 200, {}, json.dumps({"responses": answer})

    responses.add_callback(responses.POST, f"{BASE}/$batch", callback=cb)
    client, sleeps = make()
    out = client.batch([
        {"method": "POST", "url": "/me/events", "body": {"subject": "a"}},
        {"method": "POST", "url": "/me/events", "body": {"subject": "b"}},
        {"method": "POST", "url": "/me/events", "body": {"subject": "c"}, "dependsOn": ["2"]},
    ])
    first, second = sent_batches()
    assert first[0]["headers"] == {"Content-Type": "application/json"}
    assert first[2]["dependsOn"] == ["2"]
    assert [i["id"] for i in second] == ["2", "3"]
    assert "dependsOn" in second[1]
    assert [o["status"] for o in out] == [201, 201, 201]
    assert [o["body"]["n"] for o in out] == [1, 2, 2]
    assert sleeps == [3.0]


@responses.activate
def test_dependency_in_earlier_chunk_resolved_locally():
    def cb(request):
        items = json.loads(request.body)["requests"]
        answer = [{"id": i["id"], "status": 404 if i["id"] == "1" else 200, "headers": {}, "body": {}}
                  for i in items]
        return 200, {}, json.dumps({"responses": answer})

    responses.add_callback(responses.POST, f"{BASE}/$batch", callback=cb)
    client, _ = make()
    reqs = [{"method": "GET", "url": f"/x/{i}"} for i in range(21)]
    reqs[20]["dependsOn"] = ["1"]
    reqs[20]["id"] = "last"
    for i, r in enumerate(reqs[:20]):
        r["id"] = str(i + 1)
    out = client.batch(reqs)
    assert out[0]["status"] == 404 and out[20]["status"] == 424
    assert len(sent_batches()) == 1
