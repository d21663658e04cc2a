"""The app: settings, store, bots, receiver and worker assembled into one Starlette application.

`app_from_env()` is the uvicorn factory (`botkit.app:app_from_env`; `botkit.serve:app_from_env` names the same
function): each uvicorn process builds its app from the environment, so `--workers N` works. The commands
that run it are in `botkit.commands.serve`.
"""

from __future__ import annotations

import gc
import importlib
import os
from typing import Any

from starlette.applications import Starlette

from botkit.config import ConfigError, Settings, load_settings
from botkit.metrics import NULL
from botkit.outcomes import Retention
from botkit.receiver import Endpoint, Receiver, create_app
from botkit.runtime import ChatwootActions, Runtime
from botkit.security import Verifier
from botkit.store import store_from_url
from botkit.worker import Worker

DEFAULT_BOT_NAME = "default"


def load_object(spec: str, setting: str = "BOTKIT_BOT") -> Any:
    """`package.module:attribute` -> the object."""
    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"{setting} names module {module_name!r}, which cannot be imported ({exc}).") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ConfigError(f"{setting} names {attribute!r}, which module {module_name!r} does not have.") from None


def chatwoot_for(settings: Settings) -> ChatwootActions:
    """The real client, or a dry-run printer when no Chatwoot is configured."""
    if settings.chatwoot_base_url is None:
        from botkit.dryrun import ConsoleChatwoot

        return ConsoleChatwoot()
    if settings.chatwoot_bot_token is None:
        raise ConfigError("CHATWOOT_BOT_TOKEN must be set to the agent bot's access token when CHATWOOT_BASE_URL is.")
    from botkit.chatwoot import ChatwootClient
    from botkit.ratelimit import shared_budget_for

    # On Redis, N workers on N hosts share one budget with Chatwoot (it limits per client IP).
    budget = shared_budget_for(settings.botkit_store, settings.chatwoot_base_url, settings.chatwoot_rate_per_minute)
    return ChatwootClient.from_settings(settings, timeout=settings.chatwoot_timeout,
                                        deadline=settings.chatwoot_retry_deadline, rate_limiter=budget)


def bot_from_settings(settings: Settings) -> Any:
    """BOTKIT_HANDLERS (plugins by name) or BOTKIT_BOT (an object with `handle`, or a factory making one)."""
    if settings.botkit_handlers:
        from botkit.bot import Bot
        from botkit.plugins import handlers_from_names

        return Bot("bot", handlers_from_names(settings.botkit_handlers, settings))
    bot = load_object(settings.botkit_bot)
    if not hasattr(bot, "handle") and callable(bot):
        bot = bot()  # a factory such as bots.support_router:make_bot
    if not callable(getattr(bot, "handle", None)):
        raise ConfigError(f"BOTKIT_BOT must name a bot (an object with an async handle() method) or a function "
                          f"making one; {settings.botkit_bot} is neither.")
    return bot


def build_app(settings: Settings, bot: Any | None = None, *, run_worker: bool = True,
              worker_process: bool = False) -> Starlette:
    """The whole server: one bot (`bot`, or the one the settings name), or every bot of BOTKIT_BOTS_FILE.

    The worker runs in this process (`run_worker`), in a child process this one supervises (`worker_process`,
    what `botkit serve` does on SQLite), or elsewhere (`botkit worker` on a shared store).
    """
    from botkit.bots_file import BotSpec, read_bots_file
    from botkit.metrics import metrics_from_settings
    from botkit.receiver import limiter_from_settings

    if bot is None and settings.botkit_bots_file:
        specs = read_bots_file(settings.botkit_bots_file, settings)
    else:
        specs = [BotSpec(DEFAULT_BOT_NAME, settings)]
    metrics = metrics_from_settings(settings)
    store = store_from_url(settings.botkit_store, dedupe_ttl=settings.botkit_dedupe_ttl)
    endpoints: dict[str, Endpoint] = {}
    clients: list[ChatwootActions] = []
    bots: list[Any] = []
    for spec in specs:
        spec_bot = bot if bot is not None else bot_from_settings(spec.settings)
        if any(spec_bot is other for other in bots):
            raise ConfigError(f"BOTKIT_BOTS_FILE: bot {spec.name!r} reuses another bot's object; name a factory "
                              "such as bots.support_router:make_bot so each bot gets its own.")
        bots.append(spec_bot)
        chatwoot = chatwoot_for(spec.settings)
        clients.append(chatwoot)
        if metrics is not None:
            chatwoot.metrics = metrics
        endpoint = Endpoint(spec.name, Verifier.from_settings(spec.settings), spec_bot)
        endpoint.bot.bind(Runtime(settings=spec.settings, store=store, chatwoot=chatwoot, metrics=metrics or NULL,
                                  name=spec.name))
        endpoints[spec.name] = endpoint
    default = specs[0].name if len(specs) == 1 else None  # plain /webhook is for the single-bot case
    receiver = Receiver(store, endpoints, default=default, max_body_bytes=settings.botkit_max_body_bytes,
                        limiter=limiter_from_settings(settings))
    if metrics is not None:
        receiver.observe = metrics.delivery
    worker: Any = None
    if worker_process:
        from botkit.worker_process import WorkerProcess, WorkerProcesses

        workers = getattr(store, "workers", 1)  # sqlite:///...?workers=N: N children share the lanes
        worker = (WorkerProcesses(settings.botkit_store, workers, shutdown_timeout=settings.botkit_shutdown_timeout)
                  if workers > 1 else WorkerProcess(shutdown_timeout=settings.botkit_shutdown_timeout))
    elif run_worker:
        worker = Worker(store, {name: e.bot for name, e in endpoints.items()},
                        concurrency=settings.botkit_concurrency, max_attempts=settings.botkit_max_attempts,
                        backoff=settings.botkit_retry_backoff, on_outcome=metrics.event if metrics else None)

    # where the worker runs, old outcome facts are pruned beside it (botkit/outcomes.py)
    retention = Retention(store, settings.botkit_outcomes_keep_days) if isinstance(worker, Worker) else None

    async def start_retention() -> None:
        if retention is not None:
            retention.start()

    async def close_clients() -> None:
        if retention is not None:
            await retention.stop()
        for chatwoot in clients:
            await chatwoot.aclose()

    app = create_app(receiver, worker=worker, shutdown_timeout=settings.botkit_shutdown_timeout,
                     on_startup=start_retention, on_shutdown=close_clients, metrics=metrics)
    app.state.close_clients = close_clients
    from botkit.console.server import add_console

    add_console(app, settings, store)  # /console, only with BOTKIT_CONSOLE_TOKEN
    return app


async def preflight(app: Starlette) -> None:
    """Start and stop the bots once in the CLI's own process, so a bad setting is one sentence, not a traceback."""
    for endpoint in app.state.receiver.endpoints.values():
        await endpoint.bot.startup()
        await endpoint.bot.shutdown()
    await app.state.close_clients()


def app_from_env() -> Starlette:
    """The uvicorn factory: every process builds its app from the same environment."""
    settings = load_settings()
    configure_logging(settings)
    mode = os.environ.get("BOTKIT_RUN_WORKER", "1")  # 1: in this process, process: in a child, 0: elsewhere
    app = build_app(settings, run_worker=mode == "1", worker_process=mode == "process")
    settle_gc()
    return app


def settle_gc() -> None:
    """Once a server process has imported and built everything: hide those objects from the cyclic garbage
    collector (gc.freeze) and collect less often. Otherwise each full collection walks ~60k start-up objects,
    20-70 ms during which no request is answered (bench/ack.py: ack p99 72 -> 45 ms, +10% acks/s)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


def configure_logging(settings: Settings) -> None:
    from botkit.logs import secrets_of, setup_logging

    setup_logging(settings.botkit_log_level, settings.botkit_log_format, secrets=secrets_of(settings))
    from botkit import tracing

    tracing.setup()
