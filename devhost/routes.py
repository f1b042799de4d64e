"""Route templates of HTTP triggers (`users/{id}`, `{*rest}`, `{n:int}`, `{x?}`) as regexes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_PARAM = re.compile(r"\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::[a-z]+)?(\?)?\}")


def compile_route(template: str) -> re.Pattern[str]:
    pattern, last = "", 0
    for match in _PARAM.finditer(template):
        pattern += re.escape(template[last:match.start()])
        catch_all, name, optional = match.groups()
        body = f"(?P<{name}>.*)" if catch_all else f"(?P<{name}>[^/]+)"
        pattern += f"{body}?" if optional else body
        last = match.end()
    pattern += re.escape(template[last:])
    return re.compile(f"^{pattern}/?$", re.IGNORECASE)


@dataclass
class HttpRoute:
    name: str
    template: str
    regex: re.Pattern[str]
    methods: frozenset[str]
    auth_level: str  # ANONYMOUS, FUNCTION or ADMIN
    function: Any
    arg_name: str

    def match(self, path: str) -> dict[str, str] | None:
        found = self.regex.match(path)
        return None if found is None else {k: v for k, v in found.groupdict().items() if v is not None}
