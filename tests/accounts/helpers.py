"""Calling the registered HTTP functions the way the Functions host does."""

from __future__ import annotations

import urllib.parse
from typing import Any

import azure.functions as func


def function(name: str) -> Any:
    import function_app
    from devhost.host import registered_functions

    for registered in registered_functions(function_app.app):
        if registered.get_function_name() == name:
            return registered.get_user_function()
    raise KeyError(name)


def get(name: str, url: str) -> func.HttpResponse:
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    request = func.HttpRequest("GET", url, headers={}, params=query, body=b"")
    return function(name)(request)


def post_json(name: str, url: str, body: bytes) -> func.HttpResponse:
    request = func.HttpRequest("POST", url, headers={"Content-Type": "application/json"}, params={}, body=body)
    return function(name)(request)
