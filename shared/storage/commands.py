"""`python -m shared fixture`: print the DDL of the stored tables."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from shared.storage.fixture import DIALECTS

    parser = subparsers.add_parser(
        "fixture", help="print the CREATE TABLE statements of a table (WebhookDB's `fixture`)",
        description="Print DDL rendered from the table specs. Default: PostgreSQL, table <name>_fixture.")
    parser.add_argument("integration", nargs="?", help="table, e.g. microsoft_calendar_user_v1")
    parser.add_argument("--all", action="store_true", help="every table (replicated and operational)")
    parser.add_argument("--table", metavar="NAME", help="table name to use instead of <integration>_fixture")
    parser.add_argument("--dialect", choices=DIALECTS, default="postgres")
    parser.set_defaults(handler=run_fixture)


def run_fixture(args: argparse.Namespace) -> int:
    from shared.cli import CommandError
    from shared.storage import schema
    from shared.storage.fixture import fixture_ddl

    if args.all == bool(args.integration):
        raise CommandError("give one table name or --all; tables: " + ", ".join(schema.BY_NAME))
    if args.all and args.table:
        raise CommandError("--table renames one table; it cannot be used with --all")
    if not args.all and args.integration not in schema.BY_NAME:
        raise CommandError(f"unknown table {args.integration!r}; tables: " + ", ".join(schema.BY_NAME))
    specs = list(schema.ALL) if args.all else [schema.BY_NAME[args.integration]]
    try:
        print("\n\n".join(fixture_ddl(spec, args.dialect, args.table, together=args.all) for spec in specs))
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    return 0
