"""The store a reading command opens must be there: opening a SQLite file that is not would make it, empty,
in whatever folder the command ran, and the command would answer from nothing."""

from __future__ import annotations

from pathlib import Path

from botkit.config import ConfigError


def require_store(url: str, command: str, naming: str = "BOTKIT_STORE") -> None:
    """ConfigError, one sentence, when `url` (BOTKIT_STORE) names a SQLite file that does not exist. `command`
    is what the user ran ("botkit report"), `naming` how they can name the store instead. Other stores (Redis)
    pass: they are not made by opening them."""
    from botkit.store import store_from_url

    path = getattr(store_from_url(url), "path", None)
    if path is not None and not Path(path).exists():
        raise ConfigError(f"there is no store at {path}: run {command} where botkit serve runs, or name the store "
                          f"with {naming}.")
