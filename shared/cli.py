"""The command line: one sub-command per operator task.

Each area of the package that has commands exposes `register(subparsers)` in
a module listed in COMMAND_MODULES; a command's handler returns the exit code.
Modules are imported only to build the parser, and each keeps its heavy
imports inside the handler so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from shared import __version__
from shared.config import ConfigError

COMMAND_MODULES = (
    "shared.config_commands",
    "shared.storage.commands",
    "shared.secrets.commands", "shared.crypto.commands", "shared.auth.commands",
    "shared.actions.commands",
    "shared.ops.commands",
    "shared.importer.commands",
    "shared.feed.commands", "shared.api.commands",
)


class CommandError(Exception):
    """An operator-facing failure: printed as one line, exit code 1."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m shared",
        description="Replicate Microsoft 365 calendars into your database and act on Outlook.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", metavar="<command>")
    commands.required = True
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from shared.logging_setup import configure_logging

    try:
        from shared.config import get_settings

        configure_logging(get_settings().log_level)
        return int(args.handler(args) or 0)
    except (ConfigError, CommandError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def entry(argv: list[str] | None = None) -> int:
    """`python -m shared`: the settings of the local instance (shared/local_settings.py), then the command.

    A reader that stops early (`python -m shared doctor | head -1`) ends the
    command quietly, as it ends any Unix tool.
    """
    from shared import local_settings

    try:
        local_settings.load()
    except local_settings.LocalSettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        code = main(argv)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # Nothing more can be written; point stdout at /dev/null so the exit flush stays quiet too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # what a shell reports for a process ended by SIGPIPE
