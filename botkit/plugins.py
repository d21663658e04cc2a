"""Handler plugins: handler classes that packages register under the entry-point group `botkit.handlers`.

A package declares, in its pyproject.toml:

    [project.entry-points."botkit.handlers"]
    faq = "mypackage.handlers:FAQHandler"

and `BOTKIT_HANDLERS=keywords,faq` assembles a bot from the named handlers, in that order. A plugin class is
built with its `from_settings()` class method when it has one (reading its own settings from the
environment), else with no arguments. botkit's own handlers (keywords, openai, dialogflow) are registered
the same way, so `botkit handlers` (botkit.commands.plugins) lists everything that is installed.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any

from botkit.config import ConfigError

GROUP = "botkit.handlers"


def available() -> dict[str, EntryPoint]:
    """Installed handler plugins by name."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def load_handler(name: str) -> Any:
    """Build the handler registered as `name`."""
    found = available()
    if name not in found:
        known = ", ".join(sorted(found)) or "none"
        raise ConfigError(f"BOTKIT_HANDLERS names {name!r}, which no installed package registers (installed: {known}).")
    try:
        cls = found[name].load()
    except ImportError as exc:
        raise ConfigError(f"handler plugin {name!r} cannot be imported ({exc}); is its extra installed?") from None
    factory = getattr(cls, "from_settings", None)
    return factory() if callable(factory) else cls()


def handlers_from_names(names: str) -> list[Any]:
    """`keywords,openai` -> [KeywordRouter(...), OpenAIHandler(...)]."""
    return [load_handler(name.strip()) for name in names.split(",") if name.strip()]
