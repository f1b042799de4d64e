"""Operator commands: `status`, `doctor`, `rows`, `replay-poison`, `renew` (python -m shared ...)."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = subparsers.add_parser("status", help="per-user replication health (a table), totals and queue depths")
    status.add_argument("--json", action="store_true", help="the same document GET /api/status returns")
    status.add_argument("--user", metavar="ID", help="only this user (microsoft_user_id or address)")
    status.set_defaults(handler=run_status)

    doctor = subparsers.add_parser("doctor", help="check settings, secrets, database, queue, tokens, reachability")
    doctor.set_defaults(handler=run_doctor)

    replay = subparsers.add_parser("replay-poison", help="move poison messages back to their queue")
    replay.add_argument("--queue", default=None, help="queue whose -poison queue is replayed (default: the sync queue)")
    replay.add_argument("--dry-run", action="store_true", help="only show what would be replayed")
    replay.add_argument("--limit", type=int, default=None, help="replay at most this many")
    replay.set_defaults(handler=run_replay)

    rows = subparsers.add_parser(
        "rows", help="show replicated rows: users, calendars or events (any backend)",
        description="The rows of microsoft_calendar_user_v1 / _v1 / _event_v1 as the replica holds them, "
                    "newest change first.")
    rows.add_argument("kind", choices=("users", "calendars", "events"))
    rows.add_argument("--user", metavar="ID", help="only this user (microsoft_user_id or address)")
    rows.add_argument("--since", metavar="WHEN",
                      help="only rows changed since then: ISO 8601 (2025-01-31T08:00Z) or an age (15m, 2h, 7d)")
    rows.add_argument("--limit", type=int, default=50, help="at most this many rows (default 50)")
    rows.add_argument("--json", action="store_true", help="one JSON object per row and line, every column")
    rows.set_defaults(handler=run_rows)

    renew = subparsers.add_parser(
        "renew", help="run a whole subscription renewal now, in this process (the timer fans it out on a queue)")
    renew.add_argument("--json", action="store_true")
    renew.set_defaults(handler=run_renew)


def run_status(args: argparse.Namespace) -> int:
    from shared.ops.status import collect, render_text

    report = collect(user_id=args.user)
    print(json.dumps(report.as_dict(), indent=2) if args.json else render_text(report))
    return 0 if report.healthy else 1


def run_doctor(args: argparse.Namespace) -> int:
    from shared.ops.doctor import run_checks

    checks = run_checks()
    for check in checks:
        print(check.line())
    failed = sum(1 for c in checks if not c.ok)
    print(f"\n{len(checks) - failed} ok, {failed} to fix" if failed else f"\nall {len(checks)} checks ok")
    return 1 if failed else 0


def run_replay(args: argparse.Namespace) -> int:
    from shared.cli import CommandError
    from shared.ops.poison import replay_poison

    if args.limit is not None and args.limit < 1:
        raise CommandError("--limit must be at least 1")
    report = replay_poison(args.queue, dry_run=args.dry_run, limit=args.limit)
    verb = "would replay" if report.dry_run else "replayed"
    print(f"{verb} {report.found} message(s) from {report.queue}-poison to {report.queue}")
    for item in report.preview:
        print("  " + json.dumps(item, sort_keys=True))
    return 0


def run_renew(args: argparse.Namespace) -> int:
    from shared.subscriptions import renew_due

    report = renew_due()
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(report.summary())
        for user_id, error in sorted(report.errors.items()):
            print(f"  {user_id}: {error}")
    return 1 if report.failed else 0


def run_rows(args: argparse.Namespace) -> int:
    import datetime as dt

    from shared.cli import CommandError
    from shared.ops.rows import RowQuery, as_json, parse_since, render_text, select
    from shared.storage import open_repository

    if args.limit < 1:
        raise CommandError("--limit must be at least 1")
    try:
        since = parse_since(args.since, dt.datetime.now(dt.UTC)) if args.since else None
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    repo = open_repository()
    try:
        rows = select(repo, RowQuery(args.kind, args.user, since, args.limit))
    except LookupError as exc:
        raise CommandError(str(exc.args[0])) from None
    if args.json:
        for row in rows:
            print(json.dumps(as_json(row), default=str))
    else:
        print(render_text(repo, args.kind, rows))
    return 0
