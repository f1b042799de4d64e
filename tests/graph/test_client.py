"""GraphClient exchanges, one at a time, against `responses` mocks."""

from __future__ import annotations

import email.utils
import json
import threading
import time

import pytest
import requests
import responses

from shared.graph import ForeignHostError, GraphClient, GraphError, RetryPolicy, ThrottledError
from shared.graph.retry import backoff, parse_retry_after

BASE = "https://graph.microsoft.com/v1.0"


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make(base: str = BASE, **kw) -> tuple[GraphClient, Sleeps]:
    sleeps = Sleeps()
    kw.setdefault("session", requests.Session())
    return GraphClient(base, lambda: "tok", sleep=sleeps, **kw), sleeps


def err(code: str, message: str, rid: str = "rid-1") -> dict:
    return {"error": {"code": code, "message": message, "innerError": {"request-id": rid}}}


@responses.activate
def test_relative_path_joins_base_and_sends_token():
    responses.get(f"{BASE}/me/events", json={"value": []})
    client, _ = make()
    assert client.get("/me/events", params={"$top": 5}) == {"value": []}
    sent = responses.calls[0].request
    assert sent.headers["Authorization"] == "Bearer tok"
    assert sent.url == f"{BASE}/me/events?%24top=5"
    assert sent.headers["client-request-id"]


@responses.activate
def test_national_cloud_base_works_unchanged():
    base = "https://microsoftgraph.chinacloudapi.cn/v1.0"
    responses.get(f"{base}/me", json={"id": "u"})
    client, _ = make(base)
    assert client.get("me")["id"] == "u"


@pytest.mark.parametrize("url", [
    "https://evil.example.com/v1.0/me",
    "http://graph.microsoft.com/v1.0/me",  # scheme differs
    "https://graph.microsoft.com:8443/v1.0/me",  # port differs
    "//evil.example.com/me",
])
@responses.activate
def test_foreign_absolute_url_is_refused_before_any_request(url):
    client, _ = make()
    with pytest.raises(ForeignHostError) as info:
        client.get(url)
    assert isinstance(info.value, ValueError) and info.value.status == 400
    assert len(responses.calls) == 0


@responses.activate
def test_same_origin_absolute_url_allowed_with_default_port():
    responses.get("https://graph.microsoft.com:443/v1.0/me/events", json={"ok": 1})
    client, _ = make()
    assert client.get("https://GRAPH.microsoft.com:443/v1.0/me/events") == {"ok": 1}


@responses.activate
def test_429_retry_after_is_honoured_then_success():
    responses.get(f"{BASE}/me", status=429, headers={"Retry-After": "2"}, json=err("TooManyRequests", "slow"))
    responses.get(f"{BASE}/me", status=429, headers={"Retry-After": "0.5"}, json=err("TooManyRequests", "slow"))
    responses.get(f"{BASE}/me", json={"id": "u"})
    client, sleeps = make()
    assert client.get("/me") == {"id": "u"}
    assert sleeps == [2.0, 0.5]


@responses.activate
def test_503_and_504_retried_by_default_with_jittered_backoff():
    responses.get(f"{BASE}/me", status=503)
    responses.get(f"{BASE}/me", status=504)
    responses.get(f"{BASE}/me", json={"id": "u"})
    client, sleeps = make()
    assert client.get("/me")["id"] == "u"
    assert len(sleeps) == 2 and 0 <= sleeps[0] <= 0.5 and 0 <= sleeps[1] <= 1.0


@responses.activate
def test_gives_up_after_max_retries_with_typed_error():
    responses.get(f"{BASE}/me", status=429, headers={"Retry-After": "1", "request-id": "h"},
                  json=err("ApplicationThrottled", "Application is over its MailboxConcurrency limit.", "r9"))
    client, sleeps = make(max_retries=2)
    with pytest.raises(ThrottledError) as info:
        client.get("/me")
    e = info.value
    assert (e.status, e.code, e.request_id, e.retry_after, e.attempts) == (
        429, "ApplicationThrottled", "r9", 1.0, 3)
    assert "MailboxConcurrency" in str(e) and "after 3 attempts" in str(e)
    assert sleeps == [1.0, 1.0]


@responses.activate
def test_non_retriable_error_raises_at_once_with_graph_code():
    responses.get(f"{BASE}/me/events/x", status=404, json=err("ErrorItemNotFound", "not found", "r1"))
    client, sleeps = make()
    with pytest.raises(GraphError) as info:
        client.get("/me/events/x")
    assert not isinstance(info.value, ThrottledError)
    assert (info.value.status, info.value.code, info.value.message) == (404, "ErrorItemNotFound", "not found")
    assert sleeps == [] and len(responses.calls) == 1


@responses.activate
def test_401_refreshes_token_once():
    tokens = iter(["old", "new", "newer"])
    invalidated = []
    responses.get(f"{BASE}/me", status=401, json=err("InvalidAuthenticationToken", "expired"))
    responses.get(f"{BASE}/me", json={"id": "u"})
    client = GraphClient(BASE, lambda: next(tokens), on_unauthorized=lambda: invalidated.append(1),
                         session=requests.Session())
    assert client.get("/me") == {"id": "u"}
    assert invalidated == [1]
    assert [c.request.headers["Authorization"] for c in responses.calls] == ["Bearer old", "Bearer new"]


@responses.activate
def test_second_401_is_an_error():
    responses.get(f"{BASE}/me", status=401, json=err("InvalidAuthenticationToken", "expired"))
    client, _ = make()
    with pytest.raises(GraphError) as info:
        client.get("/me")
    assert info.value.status == 401 and info.value.code == "InvalidAuthenticationToken"
    assert len(responses.calls) == 2


@responses.activate
def test_prefer_headers_merge():
    responses.get(f"{BASE}/me/events", json={})
    client, _ = make(prefer_headers={"IdType": '"ImmutableId"'})
    client.get("/me/events", headers={"Prefer": "odata.maxpagesize=10", "Authorization": "Bearer stolen"})
    sent = responses.calls[0].request.headers
    assert sent["Prefer"] == 'IdType="ImmutableId", odata.maxpagesize=10'
    assert sent["Authorization"] == "Bearer tok"


@responses.activate
def test_pages_follow_next_link_verbatim_and_keep_delta_link():
    responses.get(f"{BASE}/me/calendarView/delta", json={
        "value": [{"id": "1"}], "@odata.nextLink": f"{BASE}/me/calendarView/delta?$skiptoken=abc"})
    responses.get(f"{BASE}/me/calendarView/delta?$skiptoken=abc", json={"value": [],
                  "@odata.nextLink": f"{BASE}/me/calendarView/delta?$skiptoken=def"})
    responses.get(f"{BASE}/me/calendarView/delta?$skiptoken=def", json={
        "value": [{"id": "2"}], "@odata.deltaLink": f"{BASE}/me/calendarView/delta?$deltatoken=zz"})
    client, _ = make()
    pages = list(client.pages("/me/calendarView/delta", params={"startDateTime": "a"}))
    assert len(pages) == 3 and pages[-1]["@odata.deltaLink"].endswith("$deltatoken=zz")
    assert responses.calls[1].request.url.endswith("$skiptoken=abc")


@responses.activate
def test_iter_values_flattens_pages():
    responses.get(f"{BASE}/me/events?$skip=1", json={"value": [{"id": "2"}]})
    responses.get(f"{BASE}/me/events", json={"value": [{"id": "1"}], "@odata.nextLink": f"{BASE}/me/events?$skip=1"})
    client, _ = make()
    assert [e["id"] for e in client.iter_values("/me/events")] == ["1", "2"]


@responses.activate
def test_next_link_to_foreign_host_is_refused():
    responses.get(f"{BASE}/me/events", json={"value": [], "@odata.nextLink": "https://evil.example.com/x"})
    client, _ = make()
    with pytest.raises(ForeignHostError):
        list(client.pages("/me/events"))


@responses.activate
def test_custom_policy_retries_all_errors_with_fixed_delay():
    responses.get(f"{BASE}/x", status=400, json=err("BadRequest", "no"))
    responses.get(f"{BASE}/x", json={"ok": True})
    client, sleeps = make()
    policy = RetryPolicy(max_retries=1, retry_all_errors=True, delay=0.25)
    assert client.request("GET", "/x", retries=policy).json() == {"ok": True}
    assert sleeps == [0.25]


@responses.activate
def test_network_errors_retried_for_get_not_post():
    responses.get(f"{BASE}/x", body=requests.ConnectionError("reset"))
    responses.get(f"{BASE}/x", json={"ok": 1})
    responses.post(f"{BASE}/y", body=requests.ConnectionError("reset"))
    client, _ = make()
    assert client.get("/x") == {"ok": 1}
    with pytest.raises(GraphError) as info:
        client.post("/y", json={})
    assert info.value.status is None and info.value.code == "NetworkError"


def test_retry_after_parsing():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    now = time.time()
    date = email.utils.formatdate(now + 10, usegmt=True)
    assert 8 <= parse_retry_after(date, now=now) <= 10.5
    assert parse_retry_after(email.utils.formatdate(now - 100, usegmt=True)) == 0.0
    assert RetryPolicy(max_retry_after=60).wait(1, 999) == 60
    assert all(0 <= backoff(10, 0.5, 4) <= 4 for _ in range(50))


def test_no_more_than_four_requests_in_flight_per_mailbox():
    """A fake session records concurrency; 12 threads share one mailbox, 4 share another."""
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    class SlowSession:
        def request(self, method, url, **kw):
            with lock:
                state["now"] += 1
                state["peak"] = max(state["peak"], state["now"])
            time.sleep(0.05)
            with lock:
                state["now"] -= 1
            resp = requests.Response()
            resp.status_code = 200
            resp._content = b"{}"
            return resp

    client = GraphClient(BASE, lambda: "t", mailbox="Alice@Contoso.com", session=SlowSession())
    same = GraphClient(BASE, lambda: "t", mailbox="alice@contoso.com", session=SlowSession())
    threads = [threading.Thread(target=(client if i % 2 else same).get, args=("/me",)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert state["peak"] == 4


@responses.activate
def test_json_body_and_empty_responses():
    responses.post(f"{BASE}/me/events", status=201, json={"id": "e1"})
    responses.patch(f"{BASE}/me/events/e1", status=200, json={"id": "e1", "subject": "s"})
    responses.post(f"{BASE}/me/events/e1/cancel", status=202)
    responses.delete(f"{BASE}/me/events/e1", status=204)
    client, _ = make()
    assert client.post("/me/events", json={"subject": "x"}) == {"id": "e1"}
    assert json.loads(responses.calls[0].request.body) == {"subject": "x"}
    assert client.patch("/me/events/e1", json={"subject": "s"})["subject"] == "s"
    assert client.post("/me/events/e1/cancel", json={"Comment": "c"}) is None
    assert client.delete("/me/events/e1") is None
