"""DDL rendered from the table specs, for PostgreSQL and SQLite.

`python -m shared fixture microsoft_calendar_user_v1` prints WebhookDB's own
fixture text for that table (table `public.<name>_fixture`, indexes
`svi_fixture_*`); migrations render the real tables with the same function.
"""

from __future__ import annotations

import re

from shared.storage import schema
from shared.storage.schema import TableSpec

SQL_TYPES = {
    "postgres": {schema.TEXT: "text", schema.TIMESTAMP: "timestamptz", schema.BOOL: "boolean",
                 schema.INT: "bigint", schema.JSON: "jsonb"},
    "sqlite": {schema.TEXT: "TEXT", schema.TIMESTAMP: "TEXT", schema.BOOL: "INTEGER",
               schema.INT: "INTEGER", schema.JSON: "TEXT"},
}
DIALECTS = tuple(SQL_TYPES)
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def identifier(name: str) -> str:
    """Only plain identifiers reach DDL text (table names may come from the command line)."""
    if not _IDENT.match(name):
        raise ValueError(f"not a valid SQL identifier: {name!r}")
    return name


def _column_sql(spec: TableSpec, col: schema.Column, dialect: str) -> str:
    sql_type = SQL_TYPES[dialect][col.type]
    if spec.replicated and col.role == schema.KEY:
        return f"{col.name} {sql_type} UNIQUE NOT NULL"
    if col.role == schema.KEY or (col.role == schema.DATA and spec.replicated):
        return f"{col.name} {sql_type} NOT NULL"
    return f"{col.name} {sql_type}"


def render_table(spec: TableSpec, dialect: str, *, table: str | None = None, opaque: str | None = None,
                 if_not_exists: bool = False) -> list[str]:
    """CREATE TABLE plus CREATE INDEX statements for one spec."""
    if dialect not in SQL_TYPES:
        raise ValueError(f"dialect must be one of {', '.join(DIALECTS)}")
    name = identifier(table or spec.name)
    opaque = identifier(opaque or name)
    qualified = f"public.{name}" if dialect == "postgres" else name
    lines = []
    if spec.replicated:
        lines.append("pk bigserial PRIMARY KEY" if dialect == "postgres" else "pk INTEGER PRIMARY KEY AUTOINCREMENT")
    lines += [_column_sql(spec, col, dialect) for col in spec.columns]
    if not spec.replicated:
        lines.append(f"PRIMARY KEY ({', '.join(spec.key)})")
    exists = "IF NOT EXISTS " if if_not_exists else ""
    body = ",\n".join(f"  {line}" for line in lines)
    statements = [f"CREATE TABLE {exists}{qualified} (\n{body}\n);"]
    for column in spec.indexed:
        index = identifier(f"svi_{opaque}_{column}_idx")
        statements.append(f"CREATE INDEX IF NOT EXISTS {index} ON {qualified} ({column});")
    return statements


def fixture_ddl(spec: TableSpec, dialect: str = "postgres", table: str | None = None, *,
                together: bool = False) -> str:
    """The text `fixture` prints: WebhookDB's naming (`<name>_fixture`, `svi_fixture_*`) unless renamed.

    WebhookDB's fixture names every table's indexes `svi_fixture_*`; printed `together` (all
    tables in one script) they would collide, so each table's indexes then carry its short
    name (`svi_fixture_events_*`) and every one is created.
    """
    opaque = table or (f"fixture_{spec.short}" if together else "fixture")
    return "\n".join(render_table(spec, dialect, table=table or f"{spec.name}_fixture", opaque=opaque))


def real_table_ddl(spec: TableSpec, dialect: str) -> list[str]:
    """The statements migrations run for the real table (idempotent)."""
    return render_table(spec, dialect, opaque=spec.short, if_not_exists=True)
