"""Raw Request: paths on the configured base only, bodies, response types, and the seed's retry inputs."""

from __future__ import annotations

import json
import random
import time

import pytest
import requests
import responses

from shared.actions import get_action, parse_inputs
from shared.actions.context import ActionContext
from shared.actions.raw import _body
from shared.graph import GraphClient
from tests.actions.helpers import hits, ok


def seed_for(pattern: list[bool], rate: float) -> int:
    """A fault seed whose first rolls fail exactly as `pattern` says (True = fault)."""
    for seed in range(100_000):
        rng = random.Random(seed)
        if all((rng.random() < rate) == fail for fail in pattern):
            return seed
    raise AssertionError("no seed")


def test_raw_get_via_cli_with_query_and_headers(outlook, cli):
    sim, alice = outlook.sim, outlook.alice
    sim.create_event(alice, subject="A", start={"dateTime": "2030-01-01T10:00:00", "timeZone": "UTC"},
                     end={"dateTime": "2030-01-01T11:00:00", "timeZone": "UTC"})
    code, out, err = cli("action", "raw-request", "--user", alice, "url=/me/calendars")
    assert code == 0, err
    assert out["status"] == 200 and out["data"]["value"][0]["isDefaultCalendar"] is True
    assert hits(sim, "GET /v1.0/me/calendars") == 1
    code, out, err = cli("action", "raw-request", "--user", alice, "url=/me/events",
                         'query_params={"$select": "subject,start"}',
                         'headers={"Prefer": "outlook.timezone=\\"Pacific Standard Time\\""}')
    assert code == 0, err
    [event] = out["data"]["value"]
    assert event["subject"] == "A" and event["start"]["timeZone"] == "Pacific Standard Time"
    assert event["start"]["dateTime"].startswith("2030-01-01T02:00:00")


def test_raw_post_json_and_text_response(outlook, call):
    sim, alice = outlook.sim, outlook.alice
    created = ok(call("raw-request", {"user_id": alice, "inputs": {
        "method": "POST", "url": "me/calendars", "data": {"name": "Raw"}}}))
    assert created["status"] == 201 and created["data"]["name"] == "Raw"
    assert hits(sim, "POST /v1.0/me/calendars") == 1
    text = ok(call("raw-request", {"user_id": alice, "inputs": {"url": "/me", "response_type": "text"}}))
    assert isinstance(text["data"], str) and json.loads(text["data"])["id"] == alice


def test_raw_binary_response_is_returned_as_bytes(outlook, call):
    sim, alice, bob = outlook.sim, outlook.alice, outlook.bob
    sim.send_mail(alice, {"subject": "Mime", "body": {"contentType": "text", "content": "hi"},
                          "toRecipients": [{"emailAddress": {"address": outlook.bob_upn}}]})
    msg_id = next(m["id"] for m in sim.store.mailbox(bob).messages.values() if m["subject"] == "Mime")
    status, body, _headers = call("raw-request", {"user_id": bob, "inputs": {
        "url": f"/me/messages/{msg_id}/$value", "response_type": "binary"}})
    assert status == 200 and isinstance(body, bytes)
    assert b"Subject: Mime" in body


@pytest.mark.parametrize("url", ["https://evil.example.com/v1.0/me", "http://127.0.0.1:1/v1.0/me"])
def test_raw_request_to_another_host_is_refused_with_400(outlook, call, cli, url):
    status, body, _ = call("raw-request", {"user_id": outlook.alice, "inputs": {"url": url}})
    assert status == 400 and body["error"]["code"] == "ForeignHostRefused"
    assert "only " + outlook.sim.base_url in body["error"]["message"]
    code, _, err = cli("action", "raw-request", "--user", outlook.alice, f"url={url}")
    assert code == 1 and "ForeignHostRefused" in err
    assert not any(k.startswith(("GET /v1.0", "POST /v1.0")) for k in outlook.sim.counters())


def test_same_origin_absolute_url_is_allowed(outlook, call):
    out = ok(call("raw-request", {"user_id": outlook.alice, "inputs": {"url": outlook.sim.graph_url + "/me"}}))
    assert out["data"]["id"] == outlook.alice


def test_max_retry_count_survives_two_429s_waiting_retry_after(outlook, call):
    sim = outlook.sim
    sim.faults.set(rate_429=0.5, seed=seed_for([True, True, False], 0.5), retry_after=0.3)
    started = time.monotonic()
    out = ok(call("raw-request", {"user_id": outlook.alice, "inputs": {"url": "/me", "max_retry_count": 3}}))
    assert out["data"]["id"] == outlook.alice
    assert time.monotonic() - started >= 0.6  # Retry-After 0.3 s honoured twice (retry_delay_ms is 0)
    assert hits(sim, "GET /v1.0/me") == 3


@pytest.mark.parametrize("retries", [2, 3])
def test_all_429s_report_the_last_failure_clearly(outlook, call, retries):
    sim = outlook.sim
    sim.faults.set(rate_429=1.0, retry_after=0.1)
    status, body, headers = call("raw-request", {"user_id": outlook.alice, "inputs": {
        "url": "/me", "max_retry_count": retries}})
    assert status == 429 and headers["Retry-After"] == "1"
    error = body["error"]
    assert error["code"] == "TooManyRequests" and error["attempts"] == retries + 1
    assert error["graphStatus"] == 429 and error["requestId"]
    assert hits(sim, "GET /v1.0/me") == retries + 1


def test_max_retry_count_zero_means_no_retry(outlook, call):
    outlook.sim.faults.set(rate_429=1.0, retry_after=0.1)
    status, body, _ = call("raw-request", {"user_id": outlook.alice, "inputs": {"url": "/me", "max_retry_count": 0}})
    assert status == 429 and body["error"]["attempts"] == 1


def test_default_client_retries_429_and_503_unasked(outlook, call):
    sim = outlook.sim
    sim.faults.set(rate_503=0.5, seed=seed_for([True, True, False], 0.5), retry_after=0.05)
    assert ok(call("list-calendars", {"user_id": outlook.alice}))["value"]
    assert hits(sim, "GET /v1.0/me/calendars") == 3
    sim.faults.set(rate_429=0.5, seed=seed_for([True, False], 0.5), retry_after=0.05)
    assert ok(call("raw-request", {"user_id": outlook.alice, "inputs": {"url": "/me"}}))["data"]["id"]
    assert hits(sim, "GET /v1.0/me") == 2


# --- narrow exchanges (responses) ---------------------------------------------------------
BASE = "https://graph.microsoft.com/v1.0"


def run_raw(inputs: dict, app_env) -> object:
    settings = app_env()
    sleeps: list[float] = []
    client = GraphClient(BASE, lambda: "t", session=requests.Session(), sleep=sleeps.append)
    act = get_action("raw-request")
    result = act.function(ActionContext(client, settings, "u"), parse_inputs(act, inputs))
    return result, sleeps


@responses.activate
def test_retry_on_all_errors_and_fixed_delay(app_env):
    responses.get(f"{BASE}/x", status=400, json={"error": {"code": "BadRequest", "message": "flaky"}})
    responses.get(f"{BASE}/x", json={"ok": 1})
    result, sleeps = run_raw({"url": "/x", "max_retry_count": 1, "retry_on_all_errors": True,
                              "retry_delay_ms": 250}, app_env)
    assert result["data"] == {"ok": 1} and sleeps == [0.25]


@responses.activate
def test_4xx_not_retried_without_retry_on_all_errors_but_5xx_is(app_env):
    responses.get(f"{BASE}/x", status=500)
    responses.get(f"{BASE}/x", status=409, json={"error": {"code": "Conflict", "message": "no"}})
    from shared.graph import GraphError

    with pytest.raises(GraphError) as info:
        run_raw({"url": "/x", "max_retry_count": 3, "use_exponential_backoff": True}, app_env)
    assert info.value.status == 409 and len(responses.calls) == 2


@responses.activate
def test_multipart_with_file_names_and_form_fields(app_env):
    responses.post(f"{BASE}/upload", json={"ok": True})
    run_raw({"method": "POST", "url": "/upload", "form_data": {"kind": "doc"},
             "file_data": {"file1": "hello", "file2": {"base64": "AAEC"}},
             "file_data_file_names": {"file1": "a.txt"}}, app_env)
    sent = responses.calls[0].request
    assert sent.headers["Content-Type"].startswith("multipart/form-data")
    assert b'name="file1"; filename="a.txt"' in sent.body and b"hello" in sent.body
    assert b'name="file2"; filename="file2"' in sent.body and b"\x00\x01\x02" in sent.body
    assert b'name="kind"' in sent.body


@responses.activate
def test_form_and_raw_bodies(app_env):
    responses.post(f"{BASE}/form", json={})
    responses.put(f"{BASE}/raw", json={})
    run_raw({"method": "POST", "url": "/form", "body_type": "form", "form_data": {"a": "1 2"}}, app_env)
    run_raw({"method": "PUT", "url": "/raw", "data": "plain body", "headers": {"Content-Type": "text/plain"}},
            app_env)
    assert responses.calls[0].request.body == "a=1+2"
    assert responses.calls[1].request.body == b"plain body"
    assert responses.calls[1].request.headers["Content-Type"] == "text/plain"


def test_body_errors_name_the_input():
    from shared.actions import InputError

    with pytest.raises(InputError) as info:
        _body({"body_type": "auto", "data": None, "form_data": None, "file_data": {"a": "x"},
               "file_data_file_names": {"b": "b.txt"}})
    assert info.value.input == "file_data_file_names"
