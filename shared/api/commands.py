"""`python -m shared openapi`: print or write the OpenAPI description (docs/openapi.json)."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = subparsers.add_parser("openapi", help="print the HTTP API's OpenAPI 3.1 description")
    command.add_argument("--write", metavar="FILE", help="write it to FILE (docs/openapi.json) instead")
    command.set_defaults(handler=run_openapi)


def render() -> str:
    from shared.api.openapi import document

    return json.dumps(document(), indent=2, ensure_ascii=False) + "\n"


def run_openapi(args: argparse.Namespace) -> int:
    text = render()
    if args.write:
        with open(args.write, "w", encoding="utf-8") as out:
            out.write(text)
    else:
        print(text, end="")
    return 0
