"""`python -m shared rotate-key [--retire]`: switch the token-encryption key while the app runs."""

from __future__ import annotations

import argparse
import sys


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "rotate-key", help="create a new token-encryption key and re-encrypt every stored refresh token")
    parser.add_argument("--retire", action="store_true",
                        help="then wait out SECRET_CACHE_SECONDS, re-check every row and delete the old keys")
    parser.add_argument("--retire-only", action="store_true",
                        help="no new key: re-check every row and delete keys no row uses (run it at least "
                             "SECRET_CACHE_SECONDS after a rotation)")
    parser.set_defaults(handler=_rotate)


def _progress(done: int, total: int) -> None:
    if done == total or done % 100 == 0:
        print(f"  re-encrypted rows checked: {done}/{total}", file=sys.stderr, flush=True)


def _rotate(args: argparse.Namespace) -> int:
    from shared.auth import deps
    from shared.config import get_settings
    from shared.crypto.rotation import RotationReport, retire_old_keys, rotate_key

    settings = get_settings()
    repo, cipher = deps.repository(settings), deps.cipher(settings)
    if args.retire_only:
        report = RotationReport(key_id=cipher.current_key_id())
        retire_old_keys(repo, cipher, report, progress=_progress)
    else:
        print("creating a new key and re-encrypting stored refresh tokens", file=sys.stderr)
        report = rotate_key(repo, cipher, progress=_progress)
        if args.retire:
            wait = settings.secret_cache_seconds
            if wait > 0:
                print(f"waiting {wait}s until no running instance can still use an old key", file=sys.stderr)
            retire_old_keys(repo, cipher, report, wait_seconds=wait, progress=_progress)
    print(f"current key: {report.key_id}")
    print(f"rows: {report.total}, re-encrypted: {report.reencrypted}, already current: "
          f"{report.already_current}, without token: {report.without_token}, unreadable: {len(report.failed)}")
    for user_id, reason in report.failed:
        print(f"  unreadable token for user {user_id}: {reason}")
    if report.retired:
        print(f"deleted old keys: {', '.join(report.retired)}")
    if report.old_keys:
        print(f"old keys no longer needed by any row: {', '.join(report.old_keys)} "
              f"(delete them with `rotate-key --retire-only` after {settings.secret_cache_seconds}s)")
    if report.referenced_old:
        used = ", ".join(f"{k} ({n} rows)" for k, n in report.referenced_old.items())
        print(f"old keys still used: {used}")
    return 1 if report.failed else 0
