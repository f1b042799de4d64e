"""`python -m shared secrets set|list|delete`: manage the secret store without showing values."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.secrets import SecretStore


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("secrets", help="set, list or delete secrets (Key Vault or the local store)")
    sub = parser.add_subparsers(dest="secrets_command", metavar="<action>")
    sub.required = True
    put = sub.add_parser("set", help="store a secret read from stdin or a hidden prompt (never echoed)")
    put.add_argument("name", help="secret name: letters, digits and '-' (e.g. client-secret)")
    put.set_defaults(handler=_set)
    listing = sub.add_parser("list", help="list secret names (never values)")
    listing.add_argument("--prefix", default="", help="only names starting with this")
    listing.set_defaults(handler=_list)
    remove = sub.add_parser("delete", help="delete a secret")
    remove.add_argument("name")
    remove.set_defaults(handler=_delete)


def _read_value(name: str) -> str:
    if sys.stdin is not None and sys.stdin.isatty():
        import getpass

        return getpass.getpass(f"value for {name} (hidden): ")
    return sys.stdin.read().rstrip("\r\n") if sys.stdin is not None else ""


def _store() -> SecretStore:
    from shared.secrets import open_secret_store

    return open_secret_store()


def _checked(name: str) -> str:
    from shared.cli import CommandError
    from shared.secrets import SecretNameError, check_name

    try:
        return check_name(name)
    except SecretNameError as exc:
        raise CommandError(str(exc)) from None


def _set(args: argparse.Namespace) -> int:
    from shared.cli import CommandError

    name = _checked(args.name)
    value = _read_value(name)
    if not value:
        raise CommandError("empty value: nothing stored")
    _store().set(name, value)
    print(f"stored {name} ({len(value)} characters)")
    return 0


def _list(args: argparse.Namespace) -> int:
    for name in _store().names(args.prefix):
        print(name)
    return 0


def _delete(args: argparse.Namespace) -> int:
    _store().delete(_checked(args.name))
    print(f"deleted {args.name}")
    return 0
