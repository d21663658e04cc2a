"""`botkit handlers`: list the installed handler plugins (entry points `botkit.handlers`, see botkit.plugins)."""

from __future__ import annotations

from typing import Any

from botkit.plugins import available


def list_handlers(args: Any) -> int:
    found = available()
    if not found:
        print("no handler plugins are installed")
        return 0
    width = max(len(name) for name in found)
    for name, ep in sorted(found.items()):
        dist = ep.dist.name if ep.dist is not None else "?"
        print(f"{name:<{width}}  {ep.value}  ({dist})")
    return 0


def add_commands(subparsers: Any) -> None:
    parser = subparsers.add_parser("handlers", help="list the installed handler plugins (entry points botkit.handlers)")
    parser.set_defaults(func=list_handlers)
