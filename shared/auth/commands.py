"""`python -m shared link-app-only`: onboard APP_ONLY_USERS / APP_ONLY_GROUP with client credentials."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "link-app-only", help="resolve APP_ONLY_USERS and APP_ONLY_GROUP and queue their first syncs")
    parser.set_defaults(handler=_link)


def _link(args: argparse.Namespace) -> int:
    from shared.auth.app_only import link_app_only
    from shared.auth.errors import AuthError
    from shared.cli import CommandError
    from shared.config import get_settings

    try:
        report = link_app_only(get_settings(), progress=print)
    except AuthError as exc:
        raise CommandError(str(exc)) from None
    print(f"linked: {len(report.linked)}, unchanged: {len(report.unchanged)}, failed: {len(report.failed)}")
    for entry, reason in report.failed:
        print(f"  {entry}: {reason}")
    return 1 if report.failed else 0
