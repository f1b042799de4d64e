"""What callers use of the Graph client, as a Protocol: the seam a test wraps or replaces.

`GraphClient` satisfies it structurally (checked by mypy where the factories return one); a test
may pass any object with these methods, e.g. a wrapper that counts or fails requests.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, Unpack

from shared.jsontypes import JsonValue

if TYPE_CHECKING:
    import requests

    from shared.graph.retry import RetryPolicy


class RequestOptions(TypedDict, total=False):
    """The keywords of `get`/`post`/`patch`/`put`/`delete`, passed on to `request`."""

    params: Mapping[str, Any] | None
    headers: Mapping[str, str] | None
    stream: bool
    retries: int | RetryPolicy | None
    timeout: float | tuple[float, float] | None


class GraphApi(Protocol):
    """Requests against one Graph base URL for one mailbox, with retries and typed errors."""

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
    ) -> requests.Response: ...

    def get(self, path: str, **kw: Unpack[RequestOptions]) -> dict[str, Any]: ...

    def post(self, path: str, json: JsonValue = None, **kw: Unpack[RequestOptions]) -> dict[str, Any] | None: ...

    def patch(self, path: str, json: JsonValue = None, **kw: Unpack[RequestOptions]) -> dict[str, Any] | None: ...

    def put(self, path: str, json: JsonValue = None, **kw: Unpack[RequestOptions]) -> dict[str, Any] | None: ...

    def delete(self, path: str, **kw: Unpack[RequestOptions]) -> None: ...

    def pages(self, path_or_url: str, *, params: Mapping[str, Any] | None = None,
              headers: Mapping[str, str] | None = None) -> Iterator[dict[str, Any]]: ...

    def iter_values(self, path_or_url: str, *, params: Mapping[str, Any] | None = None,
                    headers: Mapping[str, str] | None = None) -> Iterator[dict[str, Any]]: ...

    def batch(self, requests_: list[dict[str, Any]]) -> list[dict[str, Any]]: ...

    def relative(self, path_or_url: str) -> str: ...
