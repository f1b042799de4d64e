"""`python -m shared actions` and `python -m shared action <name> --user ... key=value ...`.

Inputs are parsed by the same catalogue as the HTTP endpoint: `key=value`
pairs are strings the catalogue coerces (JSON for lists and objects, or
comma-separated lists); `--inputs '{...}'` (or `--inputs @file.json`) gives
them as one JSON object. The result is printed as JSON; a binary result is
written to `--output` (or printed as base64 JSON).
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.actions.catalogue import Action


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    listing = commands.add_parser("actions", help="list the Outlook actions and their inputs")
    listing.add_argument("name", nargs="?", help="show one action only")
    listing.add_argument("--json", action="store_true", help="the catalogue as JSON (as GET /api/actions)")
    listing.set_defaults(handler=_list)

    run = commands.add_parser("action", help="run one Outlook action (JSON output)")
    run.add_argument("name", help="action slug or name, e.g. create-event or 'Create Event'")
    _run_options(run)
    # REMAINDER: options may follow the key=value pairs; _run picks them out again.
    run.add_argument("pairs", nargs=argparse.REMAINDER, metavar="key=value", help="inputs (see `actions <name>`)")
    run.set_defaults(handler=_run)


def _run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user", help="linked user: id or address (delegated); with --app-only, the mailbox id/UPN")
    parser.add_argument("--app-only", action="store_true", default=None, help="use the app-only token")
    parser.add_argument("--inputs", help="inputs as a JSON object, or @path to a JSON file")
    parser.add_argument("--output", help="write a binary result to this file")


def _split_options(args: argparse.Namespace) -> None:
    """Options given among the key=value pairs (`action x a=1 --user u b=2`) override the earlier ones."""
    parser = argparse.ArgumentParser(prog="python -m shared action", add_help=False)
    _run_options(parser)
    found, rest = parser.parse_known_args(args.pairs)
    for name in ("user", "app_only", "inputs", "output"):
        if getattr(found, name) is not None:
            setattr(args, name, getattr(found, name))
    args.pairs = rest


def _describe_text(act: Action) -> str:
    lines = [f"{act.slug}  ({act.name}){'' if act.needs_user else '  [no mailbox needed]'}",
             f"    {act.description}"]
    for spec in act.inputs:
        flags = "required" if spec.required else f"default {json.dumps(spec.default)}"
        choices = f" one of {'|'.join(spec.choices)};" if spec.choices else ""
        lines.append(f"    {spec.name:<28} {spec.type:<8} {flags};{choices} {spec.help}".rstrip())
    return "\n".join(lines)


def _list(args: argparse.Namespace) -> int:
    from shared.actions import ACTIONS
    from shared.actions.runner import find
    from shared.cli import CommandError

    try:
        actions = [find(args.name)] if args.name else list(ACTIONS.values())
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if args.json:
        print(json.dumps({"actions": [a.describe() for a in actions]}, indent=2))
    else:
        print("\n\n".join(_describe_text(a) for a in actions))
    return 0


def _inputs(args: argparse.Namespace) -> dict[str, Any]:
    from shared.cli import CommandError

    inputs: dict[str, Any] = {}
    if args.inputs:
        text = Path(args.inputs[1:]).read_text() if args.inputs.startswith("@") else args.inputs
        try:
            inputs = json.loads(text)
        except ValueError as exc:
            raise CommandError(f"--inputs is not JSON: {exc}") from None
        if not isinstance(inputs, dict):
            raise CommandError("--inputs must be a JSON object")
    for pair in args.pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CommandError(f"expected key=value, got {pair!r}")
        inputs[key] = value
    return inputs


def _run(args: argparse.Namespace) -> int:
    from shared.actions import Binary, error_status, run_action
    from shared.actions.catalogue import InputError
    from shared.cli import CommandError

    _split_options(args)
    if args.user and not args.app_only:
        from shared.storage import open_repository, people

        args.user = people.resolve(open_repository(), args.user)  # a linked user's address works too
    try:
        result = run_action(args.name, user_id=args.user, inputs=_inputs(args), app_only=args.app_only)
    except InputError as exc:
        raise CommandError(str(exc)) from None
    except Exception as exc:
        status, body, _ = error_status(exc)
        if body["error"]["code"] == "InternalError":
            raise
        print(json.dumps({"status": status, **body}, indent=2), file=sys.stderr)
        return 1
    if isinstance(result, Binary):
        if args.output:
            Path(args.output).write_bytes(result.content)
            result = {"written": args.output, "bytes": len(result.content), "contentType": result.content_type}
        else:
            result = {"contentType": result.content_type, "base64": base64.b64encode(result.content).decode()}
    print(json.dumps(result, indent=2, default=str))
    return 0
