"""Store backends behind one interface (see base.py), chosen by URL."""

from __future__ import annotations

import os
from urllib.parse import parse_qs, urlsplit

from botkit.config import ConfigError
from botkit.store.base import DeadLetter, Finish, Job, QueueStats, Store, StoreUnavailable, bot_of, lane_for

__all__ = ["DeadLetter", "Finish", "Job", "QueueStats", "Store", "StoreUnavailable", "bot_of", "lane_for",
           "store_from_url"]


def store_from_url(url: str, *, dedupe_ttl: float = 24 * 3600) -> Store:
    """`sqlite:///./botkit.db`, `sqlite:////abs/path.db?synchronous=full&workers=2`, `memory://` or
    `redis://host:port/db`."""
    parts = urlsplit(url)
    if parts.scheme == "memory":
        from botkit.store.memory import MemoryStore

        return MemoryStore(dedupe_ttl=dedupe_ttl)
    if parts.scheme == "sqlite":
        from botkit.store.sqlite import SQLiteStore

        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        if not path:
            raise ConfigError("BOTKIT_STORE must name a file, e.g. sqlite:///./botkit.db.")
        folder = os.path.dirname(path) or "."
        if not os.path.isdir(folder):  # SQLite would say "unable to open database file", from deep in start-up
            raise ConfigError(f"BOTKIT_STORE names {path}, in a folder that does not exist ({folder}): create the "
                              "folder or name another file.")
        query = parse_qs(parts.query)
        synchronous = query.get("synchronous", ["normal"])[0]
        if synchronous.lower() not in ("normal", "full", "extra"):
            raise ConfigError("BOTKIT_STORE's synchronous= must be normal, full or extra.")
        workers, partition = query.get("workers", ["1"])[0], query.get("partition", [None])[0]
        if not workers.isdigit() or not 1 <= int(workers) <= 64:
            raise ConfigError("BOTKIT_STORE's workers= must be a number of worker processes from 1 to 64.")
        if partition is not None and not (partition.isdigit() and int(partition) < int(workers)):
            raise ConfigError("BOTKIT_STORE's partition= must be below its workers= (botkit serve sets it).")
        return SQLiteStore(path, dedupe_ttl=dedupe_ttl, synchronous=synchronous, workers=int(workers),
                           partition=None if partition is None else int(partition))
    if parts.scheme in ("redis", "rediss", "unix"):
        try:
            from botkit.store.redis import RedisStore
        except ImportError:
            raise ConfigError("BOTKIT_STORE is a Redis URL: install botkit[redis] to use it.") from None
        return RedisStore(url, dedupe_ttl=dedupe_ttl)
    raise ConfigError("BOTKIT_STORE must be sqlite:///PATH, memory:// or redis://HOST:PORT/DB.")
