"""`python -m shared settings sample|table`: regenerate the documents made from the settings."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("settings", help="print the sample settings file or the README settings table")
    parser.add_argument("what", choices=("sample", "table"))
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from shared.config_docs import sample_settings_json, settings_table

    print(sample_settings_json() if args.what == "sample" else settings_table(), end="")
    return 0
