"""GraphClient: the product's one way to call Microsoft Graph.

Why our own thin client instead of the Graph SDK: the SDK costs seconds of
import time on a cold start and hundreds of MB; we need only authenticated
requests, retries that honour Retry-After, one token refresh on 401, paging,
$batch, and a per-mailbox concurrency cap.

The token never leaves the configured Graph host: a relative path is joined to
the base URL, and an absolute URL (nextLink, deltaLink, raw request) is
accepted only if urllib3 -- the parser requests connects with -- resolves it
to the base's scheme, host and port, below the base path. Backslashes,
control characters, userinfo, fragments and dot segments are refused before
parsing (parsers disagree on them: urlsplit keeps `a\\@b` as host `b`, urllib3
connects to `a`). Redirects are followed only for requests without a body;
requests drops the Authorization header when a redirect leaves the origin.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Unpack
from urllib.parse import unquote, urlsplit

import orjson
import requests
from requests.structures import CaseInsensitiveDict
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from shared.graph.errors import ForeignHostError, GraphError, ThrottledError, parse_error_body
from shared.graph.limits import mailbox_slots
from shared.graph.retry import RetryPolicy, parse_retry_after
from shared.graph.session import graph_session
from shared.jsontypes import JsonValue

if TYPE_CHECKING:
    from shared.graph.protocol import RequestOptions

log = logging.getLogger("shared.graph")

DEFAULT_PORTS = {"https": 443, "http": 80}


def origin_of(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with default ports filled in, as urllib3 (requests' parser) reads them."""
    try:
        parts = parse_url(url)
    except LocationParseError:
        return "", "", -1  # never equal to a real origin
    scheme = (parts.scheme or "").lower()
    return scheme, (parts.host or "").lower(), parts.port or DEFAULT_PORTS.get(scheme)


# Control characters, space and backslash anywhere before the query; '#' (a fragment is never sent).
_UNSAFE_BEFORE_QUERY = re.compile(r"[\x00-\x20\x7f\\#]")
_UNSAFE_IN_QUERY = re.compile(r"[\x00-\x1f\x7f\\]")


def unsafe_reason(path_or_url: str) -> str | None:
    """Why a path or URL is not a plain one the client may send (None when it is)."""
    head, _, query = path_or_url.partition("?")
    if _UNSAFE_BEFORE_QUERY.search(head) or _UNSAFE_IN_QUERY.search(query):
        return "backslashes, control characters, spaces and fragments are not allowed in a Graph URL"
    path = urlsplit(head).path if is_absolute(head) else head
    if any(unquote(segment) in (".", "..") for segment in path.split("/")):
        return "'.' and '..' path segments are not allowed"
    return None


def is_absolute(path_or_url: str) -> bool:
    return "://" in path_or_url.split("?", 1)[0] or path_or_url.startswith("//")


def format_prefer(prefer: Mapping[str, str | None]) -> str:
    """{'odata.maxpagesize': '50', 'IdType': '"ImmutableId"'} -> 'odata.maxpagesize=50, IdType="ImmutableId"'."""
    return ", ".join(key if value is None else f"{key}={value}" for key, value in prefer.items())


class GraphClient:
    """Authenticated, retrying, mailbox-limited requests against one Graph base URL.

    `token_provider()` is called before every attempt (it caches); after a 401
    the client calls `on_unauthorized()` once (drop the cached token), asks
    for a token again and retries once. `mailbox` keys the in-process
    concurrency cap (`max_in_flight`, Outlook's 4 per mailbox).
    """

    def __init__(
        self,
        base_url: str,
        token_provider: Callable[[], str],
        *,
        on_unauthorized: Callable[[], None] | None = None,
        mailbox: str | None = None,
        timeout: float | tuple[float, float] = 30,
        max_retries: int = 5,
        session: requests.Session | None = None,
        prefer_headers: Mapping[str, str | None] | None = None,
        max_in_flight: int = 4,
        sleep: Callable[[float], None] = time.sleep,
        defer_retry_after: float | None = None,
    ) -> None:
        if not is_absolute(base_url):
            raise ValueError(f"Graph base URL must be absolute, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.origin = origin_of(self.base_url)
        self.base_path = (parse_url(self.base_url).path or "").rstrip("/")
        self.token_provider = token_provider
        self.on_unauthorized = on_unauthorized
        self.mailbox = mailbox
        self.timeout = timeout
        self.max_retries = max_retries
        self._session = session
        self.prefer_headers = dict(prefer_headers or {})
        self.max_in_flight = max_in_flight
        self.sleep = sleep
        self.defer_retry_after = defer_retry_after  # see RetryPolicy.defer_above

    @property
    def session(self) -> requests.Session:
        return self._session if self._session is not None else graph_session()

    # --- URLs -------------------------------------------------------------------------
    def url_for(self, path_or_url: str) -> str:
        """Join a relative path to the base; accept an absolute URL only below the base, as the
        HTTP client will resolve it."""
        reason = unsafe_reason(path_or_url)
        if reason is not None:
            raise ForeignHostError(path_or_url, self.base_url, reason)
        url = path_or_url if is_absolute(path_or_url) else f"{self.base_url}/{path_or_url.lstrip('/')}"
        reason = self._off_base(url)
        if reason is not None:
            raise ForeignHostError(url, self.base_url, reason)
        return url

    def _off_base(self, url: str) -> str | None:
        """Why urllib3 (what requests connects with) would not send `url` below the base, or None."""
        try:
            parsed = parse_url(url)
        except LocationParseError:
            return "the URL cannot be parsed"
        if parsed.auth is not None:
            return "user information in a URL is not allowed"
        if origin_of(url) != self.origin:
            return "another host"
        path, base_path = (parsed.path or "").rstrip("/"), self.base_path
        if path != base_path and not path.startswith(base_path + "/"):
            return "the path is not below the Graph base"
        return None

    def relative(self, path_or_url: str) -> str:
        """The path of a same-origin URL below the base ('/me/events?...'), as $batch wants it."""
        url = self.url_for(path_or_url)
        if not url.startswith(self.base_url + "/") and url != self.base_url:
            raise ValueError(f"{url.split('?', 1)[0]} is not below the Graph base {self.base_url}")
        return "/" + url[len(self.base_url):].lstrip("/")

    # --- requests ---------------------------------------------------------------------
    def _policy(self, retries: int | RetryPolicy | None) -> RetryPolicy:
        if isinstance(retries, RetryPolicy):
            return retries
        return RetryPolicy(max_retries=self.max_retries if retries is None else retries,
                           defer_above=self.defer_retry_after)

    def _headers(self, extra: Mapping[str, str] | None) -> CaseInsensitiveDict[str]:
        headers: CaseInsensitiveDict[str] = CaseInsensitiveDict({"Accept": "application/json"})
        headers["client-request-id"] = str(uuid.uuid4())
        prefer = [format_prefer(self.prefer_headers)] if self.prefer_headers else []
        for key, value in (extra or {}).items():
            if key.lower() == "prefer":
                prefer.append(value)
            elif key.lower() != "authorization":  # the token is ours to set
                headers[key] = value
        if prefer:
            headers["Prefer"] = ", ".join(p for p in prefer if p)
        headers["Authorization"] = f"Bearer {self.token_provider()}"
        return headers

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: JsonValue = None,
        data: Any = None,
        files: Any = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        retries: int | RetryPolicy | None = None,
        timeout: float | tuple[float, float] | None = None,
    ) -> requests.Response:
        """Send one request with retries; return the final response (status < 400) or raise GraphError.

        Bodies must be re-sendable (bytes, dicts, files as bytes) since a retry sends them again.
        """
        method = method.upper()
        url = self.url_for(path_or_url)
        policy = self._policy(retries)
        retried = 0
        attempts = 0
        refreshed = False
        while True:
            attempts += 1
            try:
                with mailbox_slots().slot(self.mailbox, self.max_in_flight):
                    response = self.session.request(
                        method, url, params=params, json=json, data=data, files=files,
                        headers=self._headers(headers), stream=stream,
                        timeout=self.timeout if timeout is None else timeout,
                        # A 307/308 re-sends the body to wherever it points: a request with a body gets
                        # the redirect itself as its answer. Bodyless ones follow (Authorization is
                        # dropped by requests when the redirect changes host, scheme or port).
                        allow_redirects=json is None and data is None and files is None,
                    )
            except requests.RequestException as exc:
                retriable = isinstance(exc, requests.ConnectTimeout) or (
                    isinstance(exc, requests.ConnectionError | requests.Timeout)
                    and policy.should_retry_network(method)
                )
                if retriable and retried < policy.max_retries:
                    retried += 1
                    wait = policy.wait(retried, None)
                    log.warning("Graph %s %s: %s; retry %d in %.2fs", method, _short(url), type(exc).__name__,
                                retried, wait)
                    self.sleep(wait)
                    continue
                code = "Timeout" if isinstance(exc, requests.Timeout) else "NetworkError"
                raise GraphError(None, code, str(exc), method=method, url=url, attempts=attempts) from exc

            status = response.status_code
            if status < 400:
                return response
            if status == 401 and not refreshed:
                refreshed = True
                response.close()
                log.info("Graph %s %s: 401, refreshing the token once", method, _short(url))
                if self.on_unauthorized is not None:
                    self.on_unauthorized()
                continue
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if policy.should_retry_status(status) and retried < policy.max_retries and not policy.defers(retry_after):
                retried += 1
                wait = policy.wait(retried, retry_after)
                log.warning("Graph %s %s: %d, retry %d/%d in %.2fs (request-id %s)", method, _short(url), status,
                            retried, policy.max_retries, wait, response.headers.get("request-id"))
                response.close()
                self.sleep(wait)
                continue
            raise error_from_response(response, method=method, url=url, attempts=attempts)

    def get(self, path: str, **kw: Unpack[RequestOptions]) -> dict[str, Any]:
        return _json(self.request("GET", path, **kw)) or {}

    def post(self, path: str, json: JsonValue = None, **kw: Unpack[RequestOptions]) -> dict[str, Any] | None:
        return _json(self.request("POST", path, json=json, **kw))

    def patch(self, path: str, json: JsonValue = None, **kw: Unpack[RequestOptions]) -> dict[str, Any] | None:
        return _json(self.request("PATCH", path, json=json, **kw))

    def put(self, path: str, json: JsonValue = None, **kw: Unpack[RequestOptions]) -> dict[str, Any] | None:
        return _json(self.request("PUT", path, json=json, **kw))

    def delete(self, path: str, **kw: Unpack[RequestOptions]) -> None:
        self.request("DELETE", path, **kw).close()

    # --- paging and batching --------------------------------------------------------------
    def pages(
        self,
        path_or_url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every page, following @odata.nextLink verbatim; the last page keeps its @odata.deltaLink."""
        url: str | None = path_or_url
        page_params = params
        while url:
            page = self.get(url, params=page_params, headers=headers)
            yield page
            url = page.get("@odata.nextLink")
            page_params = None  # the link already carries the query

    def iter_values(
        self,
        path_or_url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Items of every page's `value`."""
        for page in self.pages(path_or_url, params=params, headers=headers):
            yield from page.get("value") or []

    def batch(self, requests_: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """POST /$batch in chunks of 20; see shared.graph.batch.run_batch."""
        from shared.graph.batch import run_batch

        return run_batch(self, requests_)


def _short(url: str) -> str:
    return url.split("?", 1)[0]


def _json(response: requests.Response) -> dict[str, Any] | None:
    """Parsed JSON body; None for an empty body (201/202/204 without content)."""
    try:
        if not response.content:
            return None
        try:  # orjson: a backfill decodes every page, 3-4x faster; json for what orjson refuses (NaN, lone surrogates)
            return orjson.loads(response.content)  # type: ignore[no-any-return]  # JSON of a Graph page
        except orjson.JSONDecodeError:
            pass
        try:
            body: dict[str, Any] = response.json()  # Graph answers with a JSON object
            return body
        except ValueError:
            raise GraphError(response.status_code, "InvalidResponse",
                             f"expected JSON, got {response.headers.get('Content-Type', 'no content type')}",
                             request_id=response.headers.get("request-id")) from None
    finally:
        response.close()


def error_from_response(
    response: requests.Response, *, method: str | None = None, url: str | None = None, attempts: int = 1
) -> GraphError:
    """A typed error from a failed response's OData envelope (falling back to the reason phrase)."""
    try:
        body: JsonValue = response.json()
    except ValueError:
        body = response.text[:500] if response.content else None
    finally:
        response.close()
    code, message, request_id = parse_error_body(body)
    status = response.status_code
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    cls = ThrottledError if status in (429, 503) else GraphError
    return cls(
        status,
        code or (response.reason or "HttpError").replace(" ", ""),
        message or (body if isinstance(body, str) and body else response.reason or f"HTTP {status}"),
        request_id=request_id or response.headers.get("request-id"),
        retry_after=retry_after,
        method=method,
        url=url,
        body=body,
        attempts=attempts,
    )
