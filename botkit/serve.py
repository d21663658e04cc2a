"""`botkit serve` and `botkit init`: assemble settings, store, bot, receiver and worker, and run uvicorn.

The app is built by `app_from_env()` inside each uvicorn process (so `--workers N` works); the CLI checks
the same settings first in its own process, so a misconfiguration stops start-up with one sentence.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hashlib
import importlib
import logging
import os
import secrets
import signal
import socket
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from botkit.config import ConfigError, Settings, load_settings
from botkit.receiver import Endpoint, Receiver, create_app
from botkit.security import Verifier
from botkit.store import Store, store_from_url
from botkit.worker import Worker

log = logging.getLogger("botkit")

DEFAULT_BOT_NAME = "default"


@dataclass
class Runtime:
    """What a bot is given when the server starts: the settings, the store, and the Chatwoot client."""

    settings: Settings
    store: Store
    chatwoot: Any  # a ChatwootClient, or a console printer in a dry run (no CHATWOOT_BASE_URL)
    metrics: Any = None  # a botkit.metrics.Metrics, or None when BOTKIT_METRICS=false


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


def chatwoot_for(settings: Settings) -> Any:
    """The real client, or a dry-run printer when no Chatwoot is configured."""
    if settings.chatwoot_base_url is None:
        from botkit.dryrun import ConsoleChatwoot

        return ConsoleChatwoot()
    if settings.chatwoot_bot_token is None:
        raise ConfigError("CHATWOOT_BOT_TOKEN must be set to the agent bot's access token when CHATWOOT_BASE_URL is.")
    from botkit.chatwoot import ChatwootClient

    return ChatwootClient.from_settings(settings, timeout=settings.chatwoot_timeout,
                                        deadline=settings.chatwoot_retry_deadline)


def bot_from_settings(settings: Settings) -> Any:
    """BOTKIT_HANDLERS (plugins by name) or BOTKIT_BOT (an object with `handle`, or a factory making one)."""
    if settings.botkit_handlers:
        from botkit.bot import Bot
        from botkit.plugins import handlers_from_names

        return Bot("bot", handlers_from_names(settings.botkit_handlers))
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
    from botkit.metrics import metrics_from_env
    from botkit.receiver import limiter_from_env

    if bot is None and settings.botkit_bots_file:
        specs = read_bots_file(settings.botkit_bots_file, settings)
    else:
        specs = [BotSpec(DEFAULT_BOT_NAME, settings)]
    metrics = metrics_from_env()
    store = store_from_url(settings.botkit_store, dedupe_ttl=settings.botkit_dedupe_ttl)
    endpoints: dict[str, Endpoint] = {}
    clients: list[Any] = []
    for spec in specs:
        spec_bot = bot if bot is not None else bot_from_settings(spec.settings)
        if any(e.bot is spec_bot for e in endpoints.values()):
            raise ConfigError(f"BOTKIT_BOTS_FILE: bot {spec.name!r} reuses another bot's object; name a factory "
                              "such as bots.support_router:make_bot so each bot gets its own.")
        chatwoot = chatwoot_for(spec.settings)
        clients.append(chatwoot)
        if metrics is not None and hasattr(chatwoot, "metrics"):
            chatwoot.metrics = metrics
        if hasattr(spec_bot, "bind"):
            spec_bot.bind(Runtime(settings=spec.settings, store=store, chatwoot=chatwoot, metrics=metrics))
        endpoints[spec.name] = Endpoint(spec.name, Verifier.from_settings(spec.settings), spec_bot)
    default = specs[0].name if len(specs) == 1 else None  # plain /webhook is for the single-bot case
    receiver = Receiver(store, endpoints, default=default, max_body_bytes=settings.botkit_max_body_bytes,
                        limiter=limiter_from_env())
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

    async def close_clients() -> None:
        for chatwoot in clients:
            if hasattr(chatwoot, "aclose"):
                await chatwoot.aclose()

    app = create_app(receiver, worker=worker, shutdown_timeout=settings.botkit_shutdown_timeout,
                     on_shutdown=close_clients, metrics=metrics)
    app.state.close_clients = close_clients
    return app


async def preflight(app: Starlette) -> None:
    """Start and stop the bots once in the CLI's own process, so a bad setting is one sentence, not a traceback."""
    for endpoint in app.state.receiver.endpoints.values():
        bot = endpoint.bot
        if hasattr(bot, "startup"):
            await bot.startup()
        if hasattr(bot, "shutdown"):
            await bot.shutdown()
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


def serve(args: argparse.Namespace) -> int:
    overrides = {"BOTKIT_BOT": args.bot, "BOTKIT_STORE": args.store, "BOTKIT_HOST": args.host,
                 "BOTKIT_PORT": None if args.port is None else str(args.port)}
    os.environ.update({k: v for k, v in overrides.items() if v is not None})
    settings = load_settings()
    # On SQLite the worker runs in a child process, so handlers never take CPU from the acks.
    single_file = settings.botkit_store.startswith("sqlite")
    os.environ["BOTKIT_RUN_WORKER"] = "0" if args.no_worker else "process" if single_file else "1"
    if args.workers > 1 and settings.botkit_store.startswith(("sqlite", "memory")):
        raise ConfigError("--workers above 1 needs a shared store: set BOTKIT_STORE to a redis:// URL.")
    if args.no_worker and settings.botkit_store.startswith(("sqlite", "memory")):
        raise ConfigError("--no-worker needs a shared store that `botkit worker` can read: set BOTKIT_STORE to a "
                          "redis:// URL (with SQLite, run `botkit serve` alone).")
    if single_file and not args.no_worker:
        share_metrics_with_the_worker()
    configure_logging(settings)
    from botkit.metrics import prepare_multiprocess_dir

    prepare_multiprocess_dir()
    asyncio.run(preflight(build_app(settings, run_worker=False)))

    import uvicorn

    options = {**uvicorn_options(settings), "factory": True, "ssl_certfile": args.ssl_certfile,
               "ssl_keyfile": args.ssl_keyfile}
    listening = inherited_socket()
    if listening is None:
        uvicorn.run("botkit.serve:app_from_env", host=settings.botkit_host, port=settings.botkit_port,
                    workers=args.workers, **options)
    elif args.workers > 1:
        raise ConfigError("A socket passed by systemd (LISTEN_FDS) serves one process: drop --workers, or run "
                          "one botkit.socket and botkit.service pair per process.")
    else:
        uvicorn.Server(uvicorn.Config("botkit.serve:app_from_env", **options)).run(sockets=[listening])
    return 0


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How botkit runs uvicorn, for `serve` and for `worker --metrics-port`."""
    return {"loop": "uvloop", "http": "httptools", "lifespan": "on", "access_log": False,
            "log_level": settings.botkit_log_level.lower(),
            "timeout_graceful_shutdown": int(settings.botkit_shutdown_timeout)}


def inherited_socket() -> socket.socket | None:
    """The listening socket systemd passed at fd 3 (socket activation: LISTEN_PID and LISTEN_FDS), else None.

    systemd keeps that socket open while the service restarts, so deliveries that arrive meanwhile wait in
    its backlog and are answered by the next process; without it they are refused, and Chatwoot never
    retries a refused connection (docs/deploy.md).
    """
    if os.environ.get("LISTEN_PID") != str(os.getpid()) or int(os.environ.get("LISTEN_FDS") or 0) < 1:
        return None
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)  # meant for this process only, not the worker child
    return socket.socket(fileno=3)


def share_metrics_with_the_worker() -> None:
    """/metrics should count the worker child's events too: prometheus_client adds up processes through
    PROMETHEUS_MULTIPROC_DIR, which it reads when imported, so set it and start this command afresh."""
    from botkit.metrics import MULTIPROC_ENV, MetricsSettings

    if os.environ.get(MULTIPROC_ENV) or not MetricsSettings().botkit_metrics:
        return
    digest = hashlib.sha1(str(Path.cwd()).encode(), usedforsecurity=False).hexdigest()[:12]
    os.environ[MULTIPROC_ENV] = str(Path(tempfile.gettempdir()) / f"botkit-metrics-{os.getuid()}-{digest}")
    os.execv(sys.executable, [sys.executable, "-m", "botkit.cli", *sys.argv[1:]])  # noqa: S606 - ourselves, again


def work(args: argparse.Namespace) -> int:
    """`botkit worker`: claim and handle events from a shared store; no webhook (`--metrics-port` serves its
    /metrics and probes)."""
    from botkit.worker_process import PARENT_ENV, die_with_parent

    os.environ.update({k: v for k, v in {"BOTKIT_BOT": args.bot, "BOTKIT_STORE": args.store}.items() if v})
    settings = load_settings()
    spawned = bool(os.environ.get(PARENT_ENV))  # by `botkit serve`, as its SQLite file's one worker
    if spawned:
        die_with_parent()
    elif settings.botkit_store.startswith(("sqlite", "memory")):
        raise ConfigError("botkit worker needs a shared store: set BOTKIT_STORE to a redis:// URL (with SQLite, "
                          "`botkit serve` runs the worker itself).")
    configure_logging(settings)
    try:
        import uvloop

        run: Any = uvloop.run
    except ImportError:
        run = asyncio.run
    # A worker serves no webhook, so it needs no webhook secret: the receiver built here is never reached.
    app = build_app(settings.model_copy(update={"botkit_allow_unsigned": True}), run_worker=True)
    settle_gc()
    if args.metrics_port is None:
        run(run_worker(app, settings.botkit_shutdown_timeout))
        return 0
    import uvicorn

    # Only the probes and /metrics: the receiver built above accepts unsigned deliveries, and is never served.
    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with app.router.lifespan_context(app):
            log.info("botkit worker is running (store %s); /metrics on %s:%d", app.state.receiver.store.url,
                     args.metrics_host, args.metrics_port)
            yield

    probes = Starlette(routes=[r for r in app.routes if getattr(r, "path", "") in ("/healthz", "/readyz", "/metrics")],
                       lifespan=lifespan)
    probes.state = app.state
    uvicorn.run(probes, host=args.metrics_host, port=args.metrics_port, **uvicorn_options(settings))
    return 0


async def run_worker(app: Starlette, shutdown_timeout: float) -> None:
    """Run the app's lifespan (store, bots, worker) without serving HTTP, until SIGTERM or SIGINT.

    On the signal the worker claims nothing more, gives in-flight events `shutdown_timeout` seconds and hands
    the rest back to the store, so another worker takes them at once rather than after the lease.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with app.router.lifespan_context(app):
        log.info("botkit worker is running (store %s)", app.state.receiver.store.url)
        stopped = asyncio.create_task(stop.wait())
        ended = asyncio.create_task(app.state.worker.finished())
        await asyncio.wait({stopped, ended}, return_when=asyncio.FIRST_COMPLETED)
        if not stop.is_set():
            from botkit.cli import CommandError

            raise CommandError("the worker stopped on its own; the line above says why.")
        log.info("botkit worker is stopping: finishing in-flight events for up to %.0f s", shutdown_timeout)
    log.info("botkit worker stopped")


def init(args: argparse.Namespace) -> int:
    """Give a fresh checkout a webhook secret so `botkit serve` starts, and say where it goes in Chatwoot."""
    settings = load_settings()
    if settings.webhook_secrets or settings.botkit_basic_auth or settings.botkit_allow_unsigned:
        return 0
    env_file = Path(args.env_file)
    secret = secrets.token_urlsafe(24)
    with env_file.open("a") as handle:
        if env_file.stat().st_size and not env_file.read_text().endswith("\n"):
            handle.write("\n")
        handle.write(f"CHATWOOT_WEBHOOK_SECRET={secret}\n")
    print(
        f"botkit: wrote a new CHATWOOT_WEBHOOK_SECRET to {env_file}, so the server checks every delivery.\n"
        "  For a real Chatwoot, replace it with your agent bot's own secret: an administrator gets it from\n"
        "  `botkit provision` or `botkit bots reset-secret ID` (Chatwoot 4.13+ makes the secret, not you).\n"
        "  To try the bot locally now: botkit send \"I have a billing question\"",
        file=sys.stderr,
    )
    return 0


def add_commands(subparsers: Any) -> None:
    parser = subparsers.add_parser("serve", help="run the webhook receiver and the worker")
    parser.add_argument("--bot", help="the bot to serve, module:attribute (BOTKIT_BOT)")
    parser.add_argument("--host", help="address to listen on (BOTKIT_HOST)")
    parser.add_argument("--port", type=int, help="port to listen on (BOTKIT_PORT)")
    parser.add_argument("--store", help="store URL (BOTKIT_STORE)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn processes (needs a Redis store above 1)")
    parser.add_argument("--no-worker", action="store_true", help="receive and queue only; run `botkit worker` apart")
    parser.add_argument("--ssl-certfile", help="serve HTTPS with this certificate")
    parser.add_argument("--ssl-keyfile", help="the certificate's key")
    parser.set_defaults(func=serve)

    parser = subparsers.add_parser("worker", help="run only the worker, on a shared (redis://) store")
    parser.add_argument("--bot", help="the bot to run, module:attribute (BOTKIT_BOT)")
    parser.add_argument("--store", help="store URL (BOTKIT_STORE), a redis:// URL")
    parser.add_argument("--metrics-port", type=int, help="serve /metrics, /healthz and /readyz on this port")
    parser.add_argument("--metrics-host", default="127.0.0.1", help="address for --metrics-port (127.0.0.1)")
    parser.set_defaults(func=work)

    parser = subparsers.add_parser("init", help="write a webhook secret to .env when none is configured")
    parser.add_argument("--env-file", default=".env")
    parser.set_defaults(func=init)
