"""GraphApi, the seam callers type against, describes GraphClient exactly (mypy checks callers against it)."""

from __future__ import annotations

import inspect

from shared.graph import GraphApi, GraphClient
from shared.graph.protocol import RequestOptions


def _members(cls: type) -> list[str]:
    return sorted(n for n, v in vars(cls).items() if callable(v) and not n.startswith("_"))


def test_every_protocol_method_is_a_client_method_with_the_same_signature():
    methods = _members(GraphApi)
    assert {"get", "post", "patch", "put", "delete", "request", "pages", "iter_values", "batch"} <= set(methods)
    for name in methods:
        declared, actual = inspect.signature(getattr(GraphApi, name)), inspect.signature(getattr(GraphClient, name))
        assert str(declared) == str(actual), name


def test_request_options_are_the_keywords_request_takes_besides_the_bodies():
    keywords = {p.name for p in inspect.signature(GraphClient.request).parameters.values()
                if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert set(RequestOptions.__annotations__) == keywords - {"json", "data", "files"}
