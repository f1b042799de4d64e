"""Issue 12 acceptance 2: every HTTP trigger, called in process as the Functions host calls it, with
hostile bodies, headers and query strings, answers below 500 and never shows a traceback.

The triggers are read from the function app itself, so a new HTTP trigger is fuzzed without
touching this file. The app runs against the Graph simulator with one linked user, so requests
that get past validation reach the real code paths (MSAL, the cipher, the repository, the queue,
Graph). Examples per endpoint: FUZZ_EXAMPLES (anonymous endpoints) and FUZZ_KEYED_EXAMPLES
(function-key endpoints); `make fuzz` runs 10,000 per anonymous endpoint.
"""

from __future__ import annotations

import json
import os
import time
import types
import urllib.parse
from typing import Any

import azure.functions as func
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
KEYED_EXAMPLES = int(os.environ.get("FUZZ_KEYED_EXAMPLES", "25"))
TRACEBACK_MARKERS = (b"Traceback (most recent call last)", b'File "/', b"  File \"")


def http_functions() -> dict[str, Any]:
    import function_app
    from devhost.host import registered_functions

    found = {}
    for registered in registered_functions(function_app.app):
        trigger = registered.get_trigger()
        if type(trigger).__name__ == "HttpTrigger":
            found[registered.get_function_name()] = types.SimpleNamespace(
                function=registered.get_user_function(), route=trigger.route,
                methods=[str(getattr(m, "value", m)) for m in trigger.methods],
                anonymous=str(getattr(trigger.auth_level, "value", trigger.auth_level)).upper() == "ANONYMOUS")
    return found


# --- hostile values ------------------------------------------------------------------------------
surrogates = st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3)
controls = st.text(st.characters(max_codepoint=0x1F), min_size=1, max_size=4)
huge = st.sampled_from([1_025, 10_001, 70_000, 300_000]).map(lambda n: "A" * n)
tricks = st.sampled_from([
    "", ".", "..", "../..", "/", "\\", "\x00", "%00", "%2e%2e", "null", "[]", "{}", "true", "-1", "1e309",
    "https://evil.example\\@graph.microsoft.com/v1.0/me", "//evil.example/x", "a@b", "\u202e", "\ufeff",
    "v1.0123456789ab.AAAA", "v1..", "\r\nSet-Cookie: x=1", "<script>alert(1)</script>", "' OR 1=1 --",
])
hostile_text = st.one_of(
    st.text(max_size=40), surrogates, controls, huge, tricks,
    st.tuples(st.text(max_size=6), surrogates | controls, st.text(max_size=6)).map("".join),
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), hostile_text)
json_values = st.recursive(scalars, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(hostile_text, children, max_size=4)), max_leaves=10)


def deep(n: int, kind: str) -> bytes:
    opening, closing = ("[", "]") if kind == "list" else ('{"a":', "}")
    return (opening * n + ("1" if kind == "dict" else "") + closing * n).encode()


deep_bodies = st.builds(deep, st.integers(60, 5000), st.sampled_from(["list", "dict"]))


def encode(value: Any, how: str) -> bytes:
    if how == "ascii":
        return json.dumps(value).encode()  # surrogates escaped as \udXXX, as an attacker would send them
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")  # invalid UTF-8 bytes


def bodies(structured: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.builds(encode, structured, st.sampled_from(["ascii", "raw"])),
        st.builds(encode, json_values, st.sampled_from(["ascii", "raw"])),
        deep_bodies,
        st.binary(max_size=200),
        st.sampled_from([b"", b"{", b"\x00", b"\xff\xfe", b'{"value": ' + b"[" * 100_000, b"A" * 5_000_000]),
    )


def with_known_keys(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Mostly the real keys (to get past 'unknown input'), with hostile values."""
    if not keys:
        return st.dictionaries(hostile_text, json_values, max_size=3)
    return st.dictionaries(st.sampled_from(keys) | hostile_text, json_values | st.sampled_from(keys), max_size=6)


QUERY_KEYS = ["sid", "kid", "validationToken", "validationtoken", "microsoft_user_id", "login_hint", "state",
              "code", "error", "error_description", "user", "session_state"]
HEADER_KEYS = ["Content-Type", "content-type", "Authorization", "x-functions-key", "Host", "Accept",
               "X-Forwarded-For", "Content-Length", "Cookie"]
CONTENT_TYPES = ["application/json", "application/json; charset=utf-16", "text/plain", "application/x+json",
                 "multipart/form-data; boundary=x", "\x00", ""]


@st.composite
def requests_for(draw, name: str, endpoint: Any, app: types.SimpleNamespace) -> func.HttpRequest:
    action = draw(st.sampled_from(sorted(app.inputs_of)) | hostile_text)  # a real action, or not
    params = draw(st.dictionaries(st.sampled_from(QUERY_KEYS) | hostile_text, hostile_text, max_size=5))
    if name.startswith("graph_") and draw(st.booleans()):
        params.update(app.routing)  # a genuine sid/kid gets the batch past the key lookup
    if name == "oauth_callback" and draw(st.booleans()):
        params.update(state=app.state_sample, code=draw(hostile_text))
    headers = draw(st.dictionaries(st.sampled_from(HEADER_KEYS) | st.text(max_size=20), hostile_text, max_size=4))
    headers["Content-Type"] = draw(st.sampled_from(CONTENT_TYPES) | hostile_text)
    items = st.lists(st.fixed_dictionaries({}, optional={
        "clientState": st.just(app.client_state) | hostile_text | json_values,
        "lifecycleEvent": st.sampled_from(["missed", "subscriptionRemoved", "reauthorizationRequired"]) | json_values,
        "subscriptionId": hostile_text | json_values, "changeType": hostile_text,
        "resource": hostile_text, "resourceData": json_values}) | json_values, max_size=6)
    structured = {
        "graph_notifications": st.fixed_dictionaries({"value": items}),
        "graph_lifecycle": st.fixed_dictionaries({"value": items}),
        "users": st.fixed_dictionaries({}, optional={
            "type": st.sampled_from(["LINKED", "REFRESHED", "RESYNC", "UNLINKED"]) | json_values,
            "microsoft_user_id": st.just(app.alice) | hostile_text | json_values,
            "refresh_token": hostile_text | json_values}),
        "run_action": st.fixed_dictionaries({"user_id": st.just(app.alice) | hostile_text | json_values}, optional={
            "app_only": st.booleans() | json_values,
            "inputs": with_known_keys(app.inputs_of.get(action, []))}),
    }.get(name, json_values)
    body = draw(bodies(structured)) if "POST" in endpoint.methods else b""
    route_params = {"action": action} if "{action}" in endpoint.route else {}
    query = "&".join(f"{urllib.parse.quote(k, errors='surrogatepass')}="
                     f"{urllib.parse.quote(v, errors='surrogatepass')}" for k, v in params.items())
    return func.HttpRequest(endpoint.methods[0], f"http://127.0.0.1:7071/api/{endpoint.route}?{query}",
                            headers=headers, params=params, route_params=route_params, body=body)


# --- the app under attack ------------------------------------------------------------------------
@pytest.fixture
def fuzz_app(graphsim, app_env, monkeypatch, webhook_receiver) -> types.SimpleNamespace:
    from tests.actions.conftest import CALLBACK, delegated_token

    tenant = graphsim.create_tenant()
    client_id, secret = graphsim.register_app(tenant, redirect_uris=[CALLBACK,
                                                                     "http://127.0.0.1:7071/api/oauth/callback"])
    alice = graphsim.create_user(tenant, display_name="Alice", user_principal_name=f"alice@{tenant}.test")
    graphsim.set_consent_user(tenant, alice)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", graphsim.ca_file)
    settings_ = app_env(AUTHORITY_HOST=graphsim.base_url, TENANT=tenant, GRAPH_BASE_URL=graphsim.graph_url,
                        CLIENT_ID=client_id, APP_BASE_URL=webhook_receiver.url.rsplit("/api/", 1)[0],
                        GRAPH_MAX_RETRIES="0")
    from shared.actions import ACTIONS
    from shared.auth.tokens import get_token_service
    from shared.notifications import client_state
    from shared.secrets import CLIENT_SECRET, open_secret_store
    from shared.storage import open_repository

    open_secret_store(settings_).set(CLIENT_SECRET, secret)
    open_repository(settings_).ensure_schema()
    token = delegated_token(graphsim, tenant, client_id, secret, alice)
    get_token_service().remember(alice, token["access_token"], token["expires_in"])
    target = client_state.issue(client_state.SYNC, alice)
    routing = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(target.notification_url).query))
    start = http_functions()["oauth_start"].function(
        func.HttpRequest("GET", "http://127.0.0.1:7071/api/oauth/start", headers={}, params={}, body=b""))
    state = urllib.parse.parse_qs(urllib.parse.urlsplit(start.headers["Location"]).query)["state"][0]
    return types.SimpleNamespace(
        alice=alice, routing=routing, client_state=target.client_state, state_sample=state,
        inputs_of={slug: [i.name for i in act.inputs] for slug, act in ACTIONS.items()})


def check(name: str, request: func.HttpRequest, response: func.HttpResponse) -> None:
    body = response.get_body() or b""
    assert response.status_code < 500, (name, response.status_code, body[:300], request.params)
    assert not any(marker in body for marker in TRACEBACK_MARKERS), (name, body[:300])


ENDPOINTS = http_functions()


@pytest.mark.parametrize("name", sorted(ENDPOINTS))
def test_no_5xx_and_no_traceback(fuzz_app, name):
    endpoint = ENDPOINTS[name]
    examples = EXAMPLES if endpoint.anonymous else KEYED_EXAMPLES
    calls = []

    @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(request=requests_for(name, endpoint, fuzz_app))
    def attack(request: func.HttpRequest) -> None:
        calls.append(1)
        check(name, request, endpoint.function(request))

    started = time.perf_counter()
    attack()
    elapsed = time.perf_counter() - started
    print(f"\nfuzz {name}: {len(calls)} cases in {elapsed:.1f} s "
          f"({'anonymous' if endpoint.anonymous else 'function key'}), 0 findings")
