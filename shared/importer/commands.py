"""`python -m shared import-webhookdb`: move a WebhookDB replica (and its users' grants) here."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.importer.webhookdb import UserResult

DSN_ENV = "WEBHOOKDB_DSN"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "import-webhookdb", help="import users, calendars and events from a WebhookDB database",
        description="Copy WebhookDB's microsoft_calendar_* tables into the configured backend, re-encrypting "
                    "refresh tokens; each imported account gets a new subscription and one full sync. "
                    "Safe to run again: imported users are skipped. The WebhookDB encryption key is read "
                    "from stdin (or a hidden prompt) unless --key-secret names a secret of the secret store.")
    parser.add_argument("--dsn", help=f"WebhookDB's PostgreSQL connection string (default: ${DSN_ENV}; keep the "
                                      "password in PGPASSWORD or ~/.pgpass rather than here)")
    parser.add_argument("--users-table", required=True, help="e.g. microsoft_calendar_user_v1_8a3f")
    parser.add_argument("--calendars-table", required=True, help="e.g. microsoft_calendar_v1_2b9c")
    parser.add_argument("--events-table", required=True, help="e.g. microsoft_calendar_event_v1_71d0")
    parser.add_argument("--key-secret", metavar="NAME",
                        help="read WebhookDB's data encryption key from this secret of the secret store")
    parser.add_argument("--keep-mutable-ids", action="store_true",
                        help="imported accounts keep Outlook's mutable event ids (WebhookDB's), so "
                             "microsoft_event_id values stay the same; see docs/MIGRATING.md")
    parser.add_argument("--user", action="append", metavar="ID", help="import only this user (repeatable)")
    parser.set_defaults(handler=run_import)


def _read_key(args: argparse.Namespace) -> str:
    from shared.cli import CommandError

    if args.key_secret:
        from shared.secrets import SecretNameError, open_secret_store

        try:
            value = open_secret_store().get(args.key_secret)
        except SecretNameError as exc:
            raise CommandError(str(exc)) from None
        if not value:
            raise CommandError(f"secret {args.key_secret!r} does not exist")
        return value
    if sys.stdin is not None and sys.stdin.isatty():
        import getpass

        return getpass.getpass("WebhookDB data encryption key (hidden): ")
    return sys.stdin.readline().strip() if sys.stdin is not None else ""


def run_import(args: argparse.Namespace) -> int:
    from shared.cli import CommandError
    from shared.config import get_settings
    from shared.importer.webhookdb import SourceTables, WebhookDbSource, import_all
    from shared.importer.webhookdb_crypto import WebhookDbKeyError, parse_key

    dsn = args.dsn or os.environ.get(DSN_ENV)
    if not dsn:
        raise CommandError(f"give --dsn or set {DSN_ENV}")
    try:
        tables = SourceTables(args.users_table, args.calendars_table, args.events_table)
        key = parse_key(_read_key(args))
    except (ValueError, WebhookDbKeyError) as exc:
        raise CommandError(str(exc)) from None
    import psycopg

    settings = get_settings()
    try:
        with WebhookDbSource(dsn, tables) as source:
            users = [u for u in source.users() if not args.user or u.remote_id in set(args.user)]
            summary = import_all(settings, source, users, key, keep_mutable_ids=args.keep_mutable_ids,
                                 progress=_bar(len(users)))
    except psycopg.Error as exc:
        raise CommandError(f"WebhookDB database: {type(exc).__name__}: {str(exc).strip().splitlines()[0]}") from None
    for line in summary.lines():
        print(line)
    return 1 if summary.failed else 0


def _bar(total: int) -> Callable[[UserResult], None]:
    """A tqdm bar over users on stderr (a plain line per user when stderr is not a terminal)."""
    from tqdm import tqdm

    bar = tqdm(total=total, unit=" users", desc="import-webhookdb", file=sys.stderr,
               disable=None if sys.stderr.isatty() else True)
    done = 0

    def step(result: UserResult) -> None:
        nonlocal done
        done += 1
        bar.update(1)
        bar.set_postfix_str(f"{result.user_id}: {result.status}", refresh=False)
        if bar.disable:
            print(f"  [{done}/{total}] {result.user_id}: {result.status}"
                  + (f" ({result.events} events)" if result.status == "imported" else ""), file=sys.stderr)
        if done == total:
            bar.close()

    return step
