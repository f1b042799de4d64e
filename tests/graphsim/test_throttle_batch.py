"""Acceptance 4: mailbox concurrency throttling, injected faults and JSON batching."""

from __future__ import annotations

import concurrent.futures

from tests.graphsim.helpers import bearer, setup, slot, user_token


def test_five_concurrent_requests_on_one_mailbox_get_429(graphsim, graphsim_session):
    s = setup(graphsim)
    h = bearer(user_token(graphsim, s, graphsim_session)["access_token"])
    graphsim.faults.set(latency_ms=400)
    url = f"{graphsim.graph_url}/me/calendars"

    def call(_: int):
        import requests
        with requests.Session() as sess:
            sess.verify, sess.trust_env = graphsim.ca_file, False
            return sess.get(url, headers=h)

    with concurrent.futures.ThreadPoolExecutor(5) as pool:
        results = list(pool.map(call, range(5)))
    throttled = [r for r in results if r.status_code == 429]
    assert throttled and sum(r.status_code == 200 for r in results) == 4
    err = throttled[0].json()["error"]
    assert err["code"] == "ApplicationThrottled"
    assert err["message"] == "Application is over its MailboxConcurrency limit."
    assert float(throttled[0].headers["Retry-After"]) > 0


def test_fault_injection_429_and_503(graphsim, graphsim_session):
    s = setup(graphsim)
    h = bearer(user_token(graphsim, s, graphsim_session)["access_token"])
    graphsim.faults.set(rate_429=1.0, seed=3)
    r = graphsim_session.get(f"{graphsim.graph_url}/me/events", headers=h)
    assert r.status_code == 429 and r.json()["error"]["code"] == "TooManyRequests" and r.headers["Retry-After"]
    graphsim.faults.set(rate_503=1.0)
    assert graphsim_session.get(f"{graphsim.graph_url}/me/events", headers=h).status_code == 503
    graphsim.faults.clear()
    assert graphsim_session.get(f"{graphsim.graph_url}/me/events", headers=h).status_code == 200
    assert graphsim.counters()["GET /v1.0/me/events"] == 3


def test_batch_limits_depends_on_and_424(graphsim, graphsim_session):
    s = setup(graphsim)
    h = bearer(user_token(graphsim, s, graphsim_session)["access_token"])
    api = f"{graphsim.graph_url}/$batch"
    too_many = {"requests": [{"id": str(i), "method": "GET", "url": "/me"} for i in range(21)]}
    r = graphsim_session.post(api, headers=h, json=too_many)
    assert r.status_code == 400 and r.json()["error"]["code"] == "BadRequest"
    dup = {"requests": [{"id": "1", "method": "GET", "url": "/me"}, {"id": "1", "method": "GET", "url": "/me"}]}
    assert graphsim_session.post(api, headers=h, json=dup).status_code == 400
    body = {"requests": [
        {"id": "1", "method": "POST", "url": "/me/events", "headers": {"Content-Type": "application/json"},
         "body": {"subject": "batched", **slot("2024-05-01", 9)}},
        {"id": "2", "method": "GET", "url": "/me/events/doesnotexist", "dependsOn": ["1"]},
        {"id": "3", "method": "GET", "url": "/me/calendar", "dependsOn": ["2"]},
        {"id": "4", "method": "GET", "url": "/me"},
    ]}
    r = graphsim_session.post(api, headers=h, json=body)
    assert r.status_code == 200
    res = {x["id"]: x for x in r.json()["responses"]}
    assert res["1"]["status"] == 201 and res["1"]["body"]["subject"] == "batched"
    assert res["2"]["status"] == 404 and res["3"]["status"] == 424 and res["4"]["status"] == 200
    graphsim.faults.set(rate_429=1.0)
    r = graphsim_session.post(api, headers=h, json={"requests": [{"id": "a", "method": "GET", "url": "/me"}]})
    inner = r.json()["responses"][0]
    assert r.status_code == 200 and inner["status"] == 429 and "Retry-After" in inner["headers"]
