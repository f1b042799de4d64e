"""WEBHOOKS: endpoints are https (http only on loopback), kinds and users filter what each receives."""

from __future__ import annotations

import json

import pytest

from shared.config import ConfigError, load_settings
from shared.feed.endpoints import parse_endpoints
from shared.feed.fanout import jobs_for


def _one(**fields) -> str:
    return json.dumps([{"name": "crm", "url": "https://hooks.example.com/x", **fields}])


@pytest.mark.parametrize("url", ["https://hooks.example.com/x", "http://127.0.0.1:8080/x", "http://[::1]/x",
                                 "http://localhost:9/x"])
def test_https_and_loopback_http_are_accepted(url):
    (endpoint,) = parse_endpoints(_one(url=url))
    assert endpoint.url == url and endpoint.secret_name == "webhook-crm"


@pytest.mark.parametrize(("fields", "message"), [
    ({"url": "http://hooks.example.com/x"}, "must use https"),
    ({"url": "http://10.0.0.5/x"}, "must use https"),
    ({"url": "ftp://hooks.example.com/x"}, "not an absolute https URL"),
    ({"url": "https://user:pw@hooks.example.com/x"}, "credentials"),
    ({"kinds": ["row.moved"]}, "unknown kinds"),
    ({"users": "alice"}, "list of non-empty strings"),
    ({"name": "CRM!"}, "lowercase"),
    ({"secret": "a/b"}, "secret"),
    ({"retries": 3}, "unknown webhook keys"),
])
def test_bad_endpoints_are_refused_with_the_reason(fields, message):
    with pytest.raises(ConfigError, match=message):
        load_settings({"WEBHOOKS": _one(**fields)})


def test_duplicate_names_and_non_arrays_are_refused():
    with pytest.raises(ConfigError, match="unique"):
        load_settings({"WEBHOOKS": json.dumps([{"name": "a", "url": "https://x.test"}] * 2)})
    with pytest.raises(ConfigError, match="JSON array"):
        load_settings({"WEBHOOKS": '{"name": "a"}'})


def test_jobs_go_only_to_endpoints_wanting_the_kind_and_user():
    endpoints = parse_endpoints(json.dumps([
        {"name": "all", "url": "https://a.test"},
        {"name": "deletions", "url": "https://b.test", "kinds": ["row.deleted"]},
        {"name": "alice", "url": "https://c.test", "users": ["alice"]},
    ]))
    messages = [json.dumps({"type": "row.deleted", "user_id": "alice", "id": "1"}),
                json.dumps({"type": "row.created", "user_id": "bob", "id": "2"}),
                json.dumps({"type": "notification", "label": "action:alice:me/messages", "id": "3"})]
    routed = {(json.loads(j)["endpoint"], json.loads(j)["message"]["id"]) for j in jobs_for(messages, endpoints)}
    assert routed == {("all", "1"), ("all", "2"), ("all", "3"), ("deletions", "1"), ("alice", "1"), ("alice", "3")}
    job = json.loads(jobs_for(messages[:1], endpoints[:1])[0])
    assert job["attempt"] == 1 and job["message"] == json.loads(messages[0])


def test_doctor_names_a_webhook_whose_signing_secret_is_missing(app_env):
    from shared.ops.doctor import check_webhooks, run_checks
    from shared.secrets import open_secret_store

    settings = app_env(WEBHOOKS=_one())
    (check,) = check_webhooks(settings)
    assert not check.ok and "webhook-crm" in check.detail and check.fix == "python -m shared secrets set webhook-crm"
    assert any(c.name == "webhook crm" and not c.ok for c in run_checks(settings))
    open_secret_store(settings).set("webhook-crm", "s3cret")
    (check,) = check_webhooks(settings)
    assert check.ok and "s3cret" not in check.line()
    assert list(check_webhooks(app_env(WEBHOOKS=None))) == []  # no webhooks configured: nothing to check
