"""The `botkit` command.

Each group of subcommands lives in its own module of `botkit.commands`, with an `add_commands(subparsers)`
function that adds its parsers and sets `func` (taking the parsed args, returning an exit code). Errors users
meet are one sentence on stderr and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from botkit.commands.errors import CommandError
from botkit.config import ConfigError

COMMAND_MODULES = [
    "botkit.commands.serve",
    "botkit.commands.provision",
    "botkit.commands.deadletters",
    "botkit.commands.plugins",
    "botkit.commands.chat",
    "botkit.commands.devtools",
    "botkit.commands.doctor",
    "botkit.commands.scaffold",
    "botkit.commands.kb",
    "botkit.commands.playground",
    "botkit.commands.report",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="botkit", description="Run and manage Chatwoot agent bots.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ConfigError, CommandError) as exc:
        print(f"botkit: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
