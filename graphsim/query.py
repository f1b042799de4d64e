"""OData query options on collections: $filter, $orderby, $count and $select, applied or rejected.

Graph applies these options or answers 400; it never ignores them. The simulator evaluates the subset
clients use on Outlook resources (comparisons, contains/startswith, `and`/`or`, property paths) over the
rendered items and rejects anything else, or any property the v1.0 type does not have, with Graph's
error codes. Rejecting more than Graph is the safe direction: a product bug cannot pass unnoticed.
"""

from __future__ import annotations

import re
from typing import Any

from . import schema
from .util import GraphError

OPTIONS = ("$filter", "$orderby", "$count")
_TERM = re.compile(r"^\s*(?P<path>[A-Za-z][\w/]*)\s+(?P<op>eq|ne|ge|gt|le|lt)\s+(?P<lit>.+?)\s*$")
_FUNC = re.compile(r"^\s*(?P<fn>contains|startswith|endswith)\(\s*(?P<path>[A-Za-z][\w/]*)\s*,\s*"
                   r"'(?P<lit>(?:[^']|'')*)'\s*\)\s*$", re.IGNORECASE)
_OPS = {"eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "ge": lambda a, b: a >= b,
        "gt": lambda a, b: a > b, "le": lambda a, b: a <= b, "lt": lambda a, b: a < b}


def _invalid_filter() -> GraphError:
    return GraphError(400, "ErrorInvalidUrlQueryFilter", "The query filter contains one or more invalid nodes.")


def check_property(path: str, entity: str) -> None:
    """400 unless the first segment of `path` is a property of the v1.0 type `entity`."""
    head = path.split("/", 1)[0].strip()
    if head not in schema.props(entity):
        raise GraphError(400, "BadRequest", f"Could not find a property named '{head}' on type "
                         f"'microsoft.graph.{entity}'.")


def _get(item: dict[str, Any], path: str) -> Any:
    cur: Any = item
    for part in path.split("/"):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return cur


def _literal(raw: str) -> Any:
    raw = raw.strip()
    if raw.startswith("'") and raw.endswith("'") and len(raw) >= 2:
        return raw[1:-1].replace("''", "'")
    if raw in ("true", "false"):
        return raw == "true"
    if raw == "null":
        return None
    if re.fullmatch(r"-?\d+", raw):
        return int(raw)
    if re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z?", raw):     # DateTimeOffset literal
        return raw
    raise _invalid_filter()


def _predicate(expr: str, entity: str) -> Any:
    ors = [part for part in re.split(r"\s+or\s+", expr) if part.strip()]
    clauses = []
    for alt in ors:
        terms = []
        for term in re.split(r"\s+and\s+", alt):
            term = term.strip()
            while term.startswith("(") and term.endswith(")") and not _FUNC.match(term):
                term = term[1:-1].strip()
            m = _FUNC.match(term)
            if m:
                check_property(m["path"], entity)
                lit = m["lit"].replace("''", "'").lower()
                fn = m["fn"].lower()
                terms.append((m["path"], fn, lit))
                continue
            m = _TERM.match(term)
            if not m:
                raise _invalid_filter()
            check_property(m["path"], entity)
            terms.append((m["path"], m["op"], _literal(m["lit"])))
        clauses.append(terms)

    def test(item: dict[str, Any]) -> bool:
        return any(all(_holds(_get(item, path), op, lit) for path, op, lit in terms) for terms in clauses)
    return test


def _holds(value: Any, op: str, lit: Any) -> bool:
    if op in ("contains", "startswith", "endswith"):
        text = str(value or "").lower()
        return {"contains": lit in text, "startswith": text.startswith(lit), "endswith": text.endswith(lit)}[op]
    if isinstance(value, str) and isinstance(lit, str) and re.match(r"\d{4}-\d\d-\d\dT", value):
        value, lit = value.rstrip("Z")[:19], lit.rstrip("Z")[:19]
    try:
        return bool(_OPS[op](value, lit))
    except TypeError:
        return False


def apply(items: list[dict[str, Any]], q: dict[str, str], entity: str) -> tuple[list[dict[str, Any]], int | None]:
    """`items` filtered and ordered as $filter/$orderby ask; the $count when $count=true."""
    if "$filter" in q:
        keep = _predicate(q["$filter"], entity)
        items = [it for it in items if keep(it)]
    if "$orderby" in q:
        for clause in reversed([c.strip() for c in q["$orderby"].split(",") if c.strip()]):
            path, _, direction = clause.partition(" ")
            direction = direction.strip().lower() or "asc"
            if direction not in ("asc", "desc"):
                raise GraphError(400, "BadRequest", f"Invalid $orderby clause '{clause}'.")
            check_property(path, entity)
            def order_key(it: Any, p: str = path) -> tuple[bool, str]:
                return _get(it, p) is not None, str(_get(it, p) or "")

            items = sorted(items, key=order_key, reverse=direction == "desc")
    count = None
    if "$count" in q:
        flag = q["$count"].strip().lower()
        if flag not in ("true", "false"):
            raise GraphError(400, "BadRequest", "Invalid value for $count; expected true or false.")
        count = len(items) if flag == "true" else None
    return items, count


def check_select(q: dict[str, str], entity: str) -> None:
    for name in (q.get("$select") or "").split(","):
        if name.strip():
            check_property(name.strip(), entity)
