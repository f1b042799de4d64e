"""Acceptance 3: the OpenAPI description validates, is current in docs/, and the API keeps to it.

The property-based run drives every operation in process through the local
host's dispatcher (routing, function keys, the real triggers) with requests
generated from the description itself (`from_schema`, for the JSON Schema
subset the generator emits: hypothesis-jsonschema 0.23 does not run on this
hypothesis release), against the
Graph simulator with one linked user: no 5xx, and every response's status,
content type and JSON body are among those described.
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from shared.api.commands import render
from shared.api.openapi import OPERATIONS, document, routes
from tests.keepalive.conftest import CALLBACK, link

DOC = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
EXAMPLES = 6


def test_docs_openapi_json_is_current():
    assert DOC.read_text(encoding="utf-8") == render(), "run: python -m shared openapi --write docs/openapi.json"


def test_every_http_trigger_and_action_is_described():
    from shared.actions import ACTIONS

    assert {r.name for r in routes()} == set(OPERATIONS), "OPERATIONS has one entry per HTTP trigger"
    paths = document()["paths"]
    for route in routes():
        assert {m.lower() for m in route.methods} <= set(paths["/" + route.template])
    for act in ACTIONS.values():
        assert "post" in paths[f"/actions/{act.slug}"]


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in document()["paths"].items() for method, op in item.items()]


def _described(op: dict[str, Any], status: int) -> dict[str, Any] | None:
    responses = op["responses"]
    return responses.get(str(status)) or responses.get(f"{str(status)[0]}XX")


def _check_response(path: str, method: str, op: dict[str, Any], response: Any) -> None:
    where = f"{method.upper()} {path} -> {response.status_code}"
    assert response.status_code < 500, f"{where}: {response.get_body()[:300]!r}"
    described = _described(op, response.status_code)
    assert described is not None, f"{where} is not described"
    content = described.get("content")
    if not content:
        return
    media = (response.mimetype or "").split(";")[0]
    assert media in content, f"{where}: content type {media} not described ({sorted(content)})"
    if media == "application/json":
        schema = {**content[media]["schema"], "components": document()["components"]}
        Draft202012Validator(schema).validate(json.loads(response.get_body()))


_JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                         max_size=3), max_leaves=6)


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy:
    """Values valid for `schema` (enum, const, string, integer, boolean, array, object, or anything)."""
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "const" in schema:
        return st.just(schema["const"])
    kind = schema.get("type")
    if kind == "string":
        return st.text(min_size=schema.get("minLength", 0), max_size=40)
    if kind == "integer":
        return st.integers(min_value=-10, max_value=10**6)
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        return st.lists(st.text(max_size=20) | st.integers(), max_size=3)
    if kind == "object":
        properties = schema.get("properties", {})
        if not properties:
            return st.dictionaries(st.text(max_size=8), _JSON_VALUES, max_size=3)
        required = set(schema.get("required", ()))
        return st.fixed_dictionaries({k: from_schema(v) for k, v in properties.items() if k in required},
                                     optional={k: from_schema(v) for k, v in properties.items() if k not in required})
    return _JSON_VALUES


def _request(op: dict[str, Any]) -> st.SearchStrategy:
    query = {p["name"]: from_schema(p["schema"]) for p in op.get("parameters", []) if p["in"] == "query"}
    path = {p["name"]: st.text(min_size=1, max_size=30) for p in op.get("parameters", []) if p["in"] == "path"}
    body_schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    body = from_schema(body_schema) if body_schema else st.none()
    return st.fixed_dictionaries({
        "query": st.fixed_dictionaries({}, optional=query), "path": st.fixed_dictionaries(path), "body": body})


@pytest.fixture
def api(graphsim, app_env, monkeypatch):
    from devhost import DevHost
    from shared.secrets import CLIENT_SECRET, open_secret_store

    tenant = graphsim.create_tenant()
    client_id, secret = graphsim.register_app(tenant, redirect_uris=[CALLBACK])
    user = graphsim.create_user(tenant, display_name="Api", user_principal_name=f"api@{tenant}.test")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", graphsim.ca_file)
    settings_ = app_env(AUTHORITY_HOST=graphsim.base_url, TENANT=tenant, GRAPH_BASE_URL=graphsim.graph_url,
                        CLIENT_ID=client_id, GRAPH_MAX_RETRIES="1")
    open_secret_store(settings_).set(CLIENT_SECRET, secret)
    env = type("Env", (), {"sim": graphsim, "tenant": tenant, "client_id": client_id, "secret": secret})()
    link(env, user, "delegated")
    host = DevHost(port=0, timers=False, queues=False).start()
    yield host, user
    host.stop()


def test_served_description_validates(api):
    host, _ = api
    response = host.dispatch("GET", "/api/openapi.json", {}, b"")
    assert response.status_code == 200
    validate(json.loads(response.get_body()))


@pytest.mark.parametrize(("action", "inputs", "bad"), [
    ("send-message", {"to": [0], "subject": "s", "body": "b"}, "to"),      # found by the run below: was a 500
    ("send-message", {"to": ["a@b.test"], "cc": [{"x": 1}]}, "cc"),
    ("create-event-subscription", {"change_types": [1]}, "change_types"),
])
def test_non_text_list_items_are_a_400_naming_the_input(api, action, inputs, bad):
    host, user = api
    body = json.dumps({"user_id": user, "inputs": inputs}).encode()
    response = host.dispatch("POST", f"/api/actions/{action}", {"x-functions-key": host.function_key}, body)
    assert response.status_code == 400, response.get_body()
    assert json.loads(response.get_body())["error"]["input"] == bad


@pytest.mark.parametrize(("path", "method", "op"), _operations(), ids=lambda v: v if isinstance(v, str) else "")
def test_property_based_requests_stay_within_the_description(api, path, method, op):
    host, user = api

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(request=_request(op), as_linked_user=st.booleans())
    def check(request: dict[str, Any], as_linked_user: bool) -> None:
        url = "/api" + path
        for name, value in request["path"].items():
            url = url.replace("{" + name + "}", urllib.parse.quote(value, safe=""))
        query = {k: v for k, v in request["query"].items() if isinstance(v, str)}
        if query:
            url += "?" + urllib.parse.urlencode(query)
        body = request["body"]
        if isinstance(body, dict) and as_linked_user and "user_id" in body:
            body = {**body, "user_id": user}
        data = b"" if body is None else json.dumps(body).encode()
        headers = {"x-functions-key": host.function_key, "Content-Type": "application/json"}
        _check_response(path, method, op, host.dispatch(method.upper(), url, headers, data))

    check()
