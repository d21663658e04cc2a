"""Several bots on one server: a TOML file (BOTKIT_BOTS_FILE) lists them, each at `/webhooks/<name>` with
its own token, secret and settings; anything a bot does not set comes from the environment as usual.

    [bots.support]
    bot = "bots.support_router:make_bot"    # or: handlers = "keywords,openai"
    token_file = "/run/secrets/support_token"
    secret = "..."                          # or secret_file; comma-separated during a rotation
    teams = "billing=3,technical=4"
    mode = "suggest"                        # and summary, hours, holidays, outside_hours, ...

    [bots.sales]
    handlers = "keywords"
    token = "..."
    secret = "..."
    base_url = "https://chat.other.example"
    BOTKIT_KEYWORDS_FILE = "sales_rules.toml"  # any setting by its NAME, the handlers' own included
    OPENAI_MODEL = "gpt-4o"
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botkit.config import ConfigError, Settings

# The file's keys, and the settings they stand for.
KEYS = {
    "bot": "botkit_bot",
    "handlers": "botkit_handlers",
    "token": "chatwoot_bot_token",
    "secret": "chatwoot_webhook_secret",
    "base_url": "chatwoot_base_url",
    "teams": "botkit_teams",
    "basic_auth": "botkit_basic_auth",
    "allow_unsigned": "botkit_allow_unsigned",
    "mode": "botkit_mode",
    "suggest_inboxes": "botkit_suggest_inboxes",
    "command_prefix": "botkit_command_prefix",
    "summary": "botkit_summary",
    "hours": "botkit_hours",
    "holidays": "botkit_holidays",
    "outside_hours": "botkit_outside_hours",
}
FILE_KEYS = {"token_file": "token", "secret_file": "secret"}
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
SETTING = re.compile(r"^[A-Z][A-Z0-9_]*$")  # a setting by its environment name


@dataclass
class BotSpec:
    name: str
    settings: Settings


def read_bots_file(path: str, parent: Settings) -> list[BotSpec]:
    """Each bot's settings: the server's settings, with the bot's own table on top."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"BOTKIT_BOTS_FILE names {path}, which cannot be read ({exc}).") from None
    bots = data.get("bots")
    if not isinstance(bots, dict) or not bots:
        raise ConfigError(f"BOTKIT_BOTS_FILE {path} must have at least one [bots.NAME] table.")
    return [_spec(name, table, parent) for name, table in bots.items()]


def _spec(name: str, table: Any, parent: Settings) -> BotSpec:
    where = f"BOTKIT_BOTS_FILE [bots.{name}]"
    if not NAME.match(name):
        raise ConfigError(f"{where}: a bot's name must be lowercase letters, digits, - and _ (it is in its URL).")
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table of settings.")
    unknown = {k for k in table if not SETTING.match(k)} - set(KEYS) - set(FILE_KEYS)
    if unknown:
        raise ConfigError(f"{where} has unknown keys {', '.join(sorted(unknown))}; known: "
                          f"{', '.join(sorted({*KEYS, *FILE_KEYS}))}, or any setting by its NAME.")
    values = dict(table)
    for file_key, key in FILE_KEYS.items():
        if file_key in values:
            try:
                values[key] = Path(values.pop(file_key)).read_text().strip()
            except OSError as exc:
                raise ConfigError(f"{where}: {file_key} cannot be read ({exc.strerror}).") from None
    try:
        by_name = {KEYS.get(k, k).upper(): v if isinstance(v, str | bool) else str(v) for k, v in values.items()}
        settings = parent.for_bot(by_name)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return BotSpec(name, settings)
