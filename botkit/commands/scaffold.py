"""`botkit new NAME`: a bot package in ./NAME, ready to test, chat with and serve.

It holds a handler (also registered as a `botkit.handlers` plugin), a bot, flow tests on the testing kit,
an example.env and a pyproject.toml depending on botkit. The files come from `botkit/scaffold_template/`,
where `package/` becomes the package's directory and `{{name}}`, `{{package}}`, `{{class_name}}` and
`{{env_prefix}}` are filled in.
"""

from __future__ import annotations

import argparse
import keyword
import re
import sys
from pathlib import Path
from typing import Any

from botkit.commands.errors import CommandError

TEMPLATE = Path(__file__).parent.parent / "scaffold_template"
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


def add_commands(subparsers: Any) -> None:
    parser = subparsers.add_parser("new", help="create a bot package (handler, tests, example.env) in ./NAME")
    parser.add_argument("name", help="the project's name, e.g. shop-bot (the package becomes shop_bot)")
    parser.set_defaults(func=run_new)


def names_for(name: str) -> dict[str, str]:
    if not NAME.match(name):
        raise CommandError(f"{name!r} cannot name a bot package: use letters, digits, '-' and '_', starting with "
                           "a letter, e.g. shop-bot.")
    package = name.replace("-", "_").lower()
    if keyword.iskeyword(package) or package in sys.stdlib_module_names or package in ("botkit", "bots", "tests"):
        raise CommandError(f"{name!r} would make a package named {package!r}, which is taken; pick another name.")
    class_name = "".join(part.capitalize() for part in package.split("_") if part) + "Handler"
    return {"name": name, "package": package, "class_name": class_name, "env_prefix": package.upper()}


def render(template: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        template = template.replace("{{" + key + "}}", value)
    return template


def create(name: str, parent: Path) -> Path:
    """Write the project into parent/name; returns its directory."""
    values = names_for(name)
    target = parent / name
    if target.exists() and any(target.iterdir()):
        raise CommandError(f"{target} already exists and is not empty; pick another name or remove it.")
    for source in sorted(TEMPLATE.rglob("*.tmpl")):
        relative = source.relative_to(TEMPLATE).with_suffix("")  # drop .tmpl
        parts = [values["package"] if part == "package" else part for part in relative.parts]
        destination = target.joinpath(*parts)
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(render(source.read_text(), values))
    return target


def run_new(args: argparse.Namespace) -> int:
    target = create(args.name, Path.cwd())
    package = names_for(args.name)["package"]
    print(f"Created {target}/ with the bot package {package}. Next:\n"
          f"  cd {args.name} && pip install -e '.[dev]'\n"
          f"  pytest\n"
          f"  botkit chat {package}.bot --teams support=1\n"
          f"  cp example.env .env   # then fill it in, and check it with botkit doctor")
    return 0
