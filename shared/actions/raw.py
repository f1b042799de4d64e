"""Raw Request: any Graph call the catalogue lacks, on the configured Graph base only.

The path is joined to GRAPH_BASE_URL (the Artisan connector's "path suffix");
an absolute URL is accepted only below that base as urllib3 resolves it, and
backslashes, userinfo, control characters and dot segments are refused, so the
token is never sent elsewhere (ForeignHostError -> HTTP 400; see
shared/graph/client.py). Retry inputs are the Outlook connector's;
Graph throttling (429/503/504 with Retry-After) is always honoured.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from shared.actions.catalogue import Binary, Input, InputError, action
from shared.actions.context import ActionContext
from shared.jsontypes import JsonValue

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


def _bytes(name: str, key: str, value: JsonValue) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, dict) and isinstance(value.get("base64") or value.get("contentBytes"), str):
        try:
            return base64.b64decode(value.get("base64") or value["contentBytes"], validate=True)
        except ValueError:
            raise InputError(name, f"{key}: invalid base64") from None
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, dict | list):
        return json.dumps(value).encode()
    raise InputError(name, f"{key}: unsupported content {type(value).__name__}")


def _body(v: dict[str, Any]) -> dict[str, Any]:
    """requests keyword arguments for the body, from body_type (auto picks from the inputs given)."""
    kind = v["body_type"]
    data, form, files = v.get("data"), v.get("form_data") or {}, v.get("file_data") or {}
    names = v.get("file_data_file_names") or {}
    unknown = set(names) - set(files)
    if unknown:
        raise InputError("file_data_file_names", f"keys without file data: {', '.join(sorted(unknown))}")
    if kind == "auto":
        kind = "multipart" if files or form else "json" if isinstance(data, dict | list) else "raw"
    if kind == "multipart":
        parts: dict[str, Any] = {k: (None, str(val)) for k, val in form.items()}
        for k, val in files.items():
            parts[k] = (str(names.get(k, k)), _bytes("file_data", k, val))
        if not parts:
            raise InputError("file_data", "a multipart body needs form_data or file_data")
        return {"files": parts}
    if kind == "form":
        fields = form or (data if isinstance(data, dict) else None)
        if fields is None:
            raise InputError("form_data", "a form body needs form_data (or data as an object)")
        return {"data": {k: str(val) for k, val in fields.items()}}
    if kind == "json":
        return {"json": data} if data is not None else {}
    if data is None:
        return {}
    return {"data": _bytes("data", "data", data) if not isinstance(data, str) else data.encode()}


def _policy(v: dict[str, Any]) -> Any:
    if v.get("max_retry_count") is None:
        return None  # the client's default: 429/503/504 up to GRAPH_MAX_RETRIES
    from shared.graph import RetryPolicy
    from shared.graph.retry import THROTTLE_STATUSES

    if v["max_retry_count"] < 0:
        raise InputError("max_retry_count", "must not be negative")
    return RetryPolicy(
        max_retries=v["max_retry_count"],
        statuses=THROTTLE_STATUSES | set(range(500, 600)),
        retry_all_errors=v["retry_on_all_errors"],
        delay=None if v["use_exponential_backoff"] else max(v["retry_delay_ms"], 0) / 1000,
        network_errors_any_method=True,
    )


@action("Raw Request", "Send a raw HTTP request to Microsoft Graph (path relative to the configured base).",
        Input("url", "string", "URL", required=True, aliases=("endpoint", "path"),
              help="The path only (/me/calendars); the base URL (GRAPH_BASE_URL, e.g. "
                   "https://graph.microsoft.com/v1.0) is added. Absolute URLs to another host are refused."),
        Input("method", "string", "Method", "GET", choices=METHODS, help="The HTTP method to use."),
        Input("data", "json", "Data", help="Body: an object/array is sent as JSON, a string as is."),
        Input("form_data", "object", "Form Data", help="Form fields (multipart unless body_type is form)."),
        Input("file_data", "object", "File Data",
              help="Files for a multipart upload: key -> content (text, or {\"base64\": ...})."),
        Input("file_data_file_names", "object", "File Data File Names",
              help="File names for the file data; keys must match the file data keys."),
        Input("query_params", "object", "Query Parameter", aliases=("query", "params", "query_parameter"),
              help="Query parameters (?key1=value1&key2=value2) as an object or a list of {key, value}."),
        Input("headers", "object", "Header", aliases=("header",),
              help="Headers to send (Authorization is always the app's own)."),
        Input("body_type", "string", "Body Type", "auto", choices=("auto", "json", "raw", "form", "multipart"),
              help="auto: multipart with files/form data, JSON for an object, raw for text."),
        Input("response_type", "string", "Response Type", "json", choices=("json", "text", "binary"),
              help="The type of data you expect in the response."),
        Input("timeout", "integer", "Timeout", help="Milliseconds to await the response (default "
              "GRAPH_TIMEOUT_SECONDS)."),
        Input("retry_delay_ms", "integer", "Retry Delay (ms)", 0,
              help="Delay between retries when exponential backoff is off (a Retry-After header wins)."),
        Input("retry_on_all_errors", "boolean", "Retry On All Errors", False,
              help="Retry every error status; otherwise only 5xx, 429 and network errors."),
        Input("max_retry_count", "integer", "Max Retry Count",
              help="Retries to attempt (0 = none). Unset: GRAPH_MAX_RETRIES retries on 429/503/504, "
                   "honouring Retry-After."),
        Input("use_exponential_backoff", "boolean", "Use Exponential Backoff", False,
              help="Exponential backoff with jitter between retries; retry_delay_ms is then ignored."),
        area="raw", needs_user=False, aliases=("Raw HTTP Request", "Universal Operation"))
def raw_request(ctx: ActionContext, v: dict[str, Any]) -> Any:
    headers = {str(k): str(val) for k, val in (v.get("headers") or {}).items()}
    timeout = v["timeout"] / 1000 if v.get("timeout") else None
    if timeout is not None and timeout <= 0:
        raise InputError("timeout", "must be positive (milliseconds)")
    response = ctx.client.request(
        v["method"], v["url"], params=v.get("query_params"), headers=headers, retries=_policy(v),
        timeout=timeout, **_body(v),
    )
    content_type = response.headers.get("Content-Type", "")
    if v["response_type"] == "binary":
        return Binary(response.content, content_type or "application/octet-stream", response.status_code)
    if v["response_type"] == "text":
        data: JsonValue = response.text
    elif not response.content:
        data = None
    else:
        try:
            data = response.json()
        except ValueError:
            data = response.text
    return {"status": response.status_code, "headers": dict(response.headers), "data": data}
