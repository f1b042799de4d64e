"""`python -m shared replay-webhooks`: deliver dead-lettered webhook jobs again, attempts reset."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    replay = subparsers.add_parser(
        "replay-webhooks", help="move dead-lettered webhook deliveries back to their queue (attempts reset)")
    replay.add_argument("--dry-run", action="store_true", help="only show what would be replayed")
    replay.add_argument("--limit", type=int, default=None, help="replay at most this many")
    replay.set_defaults(handler=run_replay)


def fresh_attempts(body: str) -> str:
    """A parked job with its attempt count back at 1 (its message and endpoint unchanged)."""
    from shared.feed.fanout import job

    doc = json.loads(body)
    message = json.dumps(doc["message"], separators=(",", ":"), ensure_ascii=False)
    return job(doc["endpoint"], message, queued_at=doc.get("queued_at"))


def run_replay(args: argparse.Namespace) -> int:
    from shared.cli import CommandError
    from shared.ops.poison import replay_poison
    from shared.queues import WEBHOOK_QUEUE

    if args.limit is not None and args.limit < 1:
        raise CommandError("--limit must be at least 1")
    report = replay_poison(WEBHOOK_QUEUE, dry_run=args.dry_run, limit=args.limit, rewrite=fresh_attempts)
    verb = "would replay" if report.dry_run else "replayed"
    print(f"{verb} {report.found} webhook deliver{'y' if report.found == 1 else 'ies'} "
          f"from {report.queue}-poison to {report.queue}")
    for item in report.preview:
        print("  " + json.dumps(item, sort_keys=True))
    return 0
