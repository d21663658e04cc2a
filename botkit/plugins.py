"""Handler plugins: handler classes that packages register under the entry-point group `botkit.handlers`.

A package declares, in its pyproject.toml:

    [project.entry-points."botkit.handlers"]
    faq = "mypackage.handlers:FAQHandler"

and `BOTKIT_HANDLERS=keywords,faq` assembles a bot from the named handlers, in that order. A plugin class is
built with its `from_settings(settings)` class method when it has one (given the bot's `Settings`; it
reads its own settings class with `settings.section(MySettings)`, so `.env`, secret files and the bot's
BOTKIT_BOTS_FILE table reach it; a `from_settings()` without the argument is called without it), else with
no arguments. botkit's own handlers (keywords, openai, dialogflow) are registered
the same way, so `botkit handlers` (botkit.commands.plugins) lists everything that is installed.
"""

from __future__ import annotations

import inspect
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from botkit.config import ConfigError, Settings, load_settings

GROUP = "botkit.handlers"


def available() -> dict[str, EntryPoint]:
    """Installed handler plugins by name."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def load_handler(name: str, settings: Settings | None = None) -> Any:
    """Build the handler registered as `name`, for a bot with these settings."""
    found = available()
    if name not in found:
        known = ", ".join(sorted(found)) or "none"
        raise ConfigError(f"BOTKIT_HANDLERS names {name!r}, which no installed package registers (installed: {known}).")
    try:
        cls = found[name].load()
    except ImportError as exc:
        raise ConfigError(f"handler plugin {name!r} cannot be imported ({exc}); is its extra installed?") from None
    factory = getattr(cls, "from_settings", None)
    if not callable(factory):
        return cls()
    takes_settings = bool(inspect.signature(factory).parameters)
    return factory(settings if settings is not None else load_settings()) if takes_settings else factory()


def handlers_from_names(names: str, settings: Settings | None = None) -> list[Any]:
    """`keywords,openai` -> [KeywordRouter(...), OpenAIHandler(...)]."""
    return [load_handler(name.strip(), settings) for name in names.split(",") if name.strip()]
