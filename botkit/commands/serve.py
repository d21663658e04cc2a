"""`botkit serve`, `botkit worker` and `botkit init`: check the settings, then run the app (botkit.app) under
uvicorn, or its worker alone.

The CLI checks the settings in its own process first (`preflight`), so a misconfiguration stops start-up with
one sentence; uvicorn then builds the app again in each of its processes with `botkit.app:app_from_env`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import signal
import socket
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from botkit.app import build_app, configure_logging, preflight, settle_gc
from botkit.commands.errors import CommandError
from botkit.config import ConfigError, Settings, load_settings

log = logging.getLogger("botkit")

APP_FACTORY = "botkit.app:app_from_env"


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
        share_metrics_with_the_worker(settings)
        hold_the_file(settings)
    configure_logging(settings)
    from botkit.metrics import prepare_multiprocess_dir

    prepare_multiprocess_dir()
    asyncio.run(preflight(build_app(settings, run_worker=False)))

    import uvicorn

    options = {**uvicorn_options(settings), "factory": True, "ssl_certfile": args.ssl_certfile,
               "ssl_keyfile": args.ssl_keyfile}
    listening = inherited_socket()
    if listening is None:
        uvicorn.run(APP_FACTORY, host=settings.botkit_host, port=settings.botkit_port,
                    workers=args.workers, **options)
    elif args.workers > 1:
        raise ConfigError("A socket passed by systemd (LISTEN_FDS) serves one process: drop --workers, or run "
                          "one botkit.socket and botkit.service pair per process.")
    else:
        uvicorn.Server(uvicorn.Config(APP_FACTORY, **options)).run(sockets=[listening])
    return 0


_server_lock: int | None = None  # held for the process's lifetime; the kernel drops it when the process dies


def hold_the_file(settings: Settings) -> None:
    """One `botkit serve` per SQLite file: a second one stops here with one sentence."""
    from botkit.store import store_from_url
    from botkit.store.base import AnotherWorker
    from botkit.store.sqlite import hold_server_lock

    global _server_lock
    store = store_from_url(settings.botkit_store)
    try:
        _server_lock = hold_server_lock(store.path)  # type: ignore[attr-defined]
    except AnotherWorker as exc:
        raise ConfigError(f"{exc}.") from None


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How botkit runs uvicorn, for `serve` and for `worker --metrics-port`."""
    from botkit.logs import uvicorn_log_config

    options = {"loop": "uvloop", "http": "httptools", "lifespan": "on", "access_log": False,
               "log_level": settings.botkit_log_level.lower(),
               "timeout_graceful_shutdown": int(settings.botkit_shutdown_timeout)}
    log_config = uvicorn_log_config(settings.botkit_log_format)
    if log_config is not None:  # else uvicorn's own default
        options["log_config"] = log_config
    return options


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


def share_metrics_with_the_worker(settings: Settings) -> None:
    """/metrics should count the worker child's events too: prometheus_client adds up processes through
    PROMETHEUS_MULTIPROC_DIR, which it reads when imported, so set it and start this command afresh."""
    from botkit.metrics import MULTIPROC_ENV

    if os.environ.get(MULTIPROC_ENV) or not settings.botkit_metrics:
        return
    digest = hashlib.sha1(str(Path.cwd()).encode(), usedforsecurity=False).hexdigest()[:12]
    os.environ[MULTIPROC_ENV] = str(Path(tempfile.gettempdir()) / f"botkit-metrics-{os.getuid()}-{digest}")
    os.execv(sys.executable, [sys.executable, "-m", "botkit", *sys.argv[1:]])  # noqa: S606 - ourselves, again


def work(args: argparse.Namespace) -> int:
    """`botkit worker`: claim and handle events from a shared store; no webhook (`--metrics-port` serves its
    /metrics and probes)."""
    from botkit.worker_process import PARENT_ENV, die_with_parent

    os.environ.update({k: v for k, v in {"BOTKIT_BOT": args.bot, "BOTKIT_STORE": args.store}.items() if v})
    settings = load_settings()
    spawned = bool(os.environ.get(PARENT_ENV))  # by `botkit serve`, as its SQLite file's one worker
    if spawned:
        die_with_parent()
        # Ctrl-C reaches the server's whole process group; the server stops this worker (SIGTERM) in turn,
        # and a worker that stopped first would look to it like a crash.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
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
        run(run_worker(app, settings.botkit_shutdown_timeout, interruptible=not spawned))
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


async def run_worker(app: Starlette, shutdown_timeout: float, *, interruptible: bool = True) -> None:
    """Run the app's lifespan (store, bots, worker) without serving HTTP, until SIGTERM or (`interruptible`)
    SIGINT.

    On the signal the worker claims nothing more, gives in-flight events `shutdown_timeout` seconds and hands
    the rest back to the store, so another worker takes them at once rather than after the lease.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT) if interruptible else (signal.SIGTERM,):
        loop.add_signal_handler(sig, stop.set)
    async with app.router.lifespan_context(app):
        log.info("botkit worker is running (store %s)", app.state.receiver.store.url)
        await check_chatwoot_versions(app)
        stopped = asyncio.create_task(stop.wait())
        ended = asyncio.create_task(app.state.worker.finished())
        await asyncio.wait({stopped, ended}, return_when=asyncio.FIRST_COMPLETED)
        if not stop.is_set():
            raise CommandError("the worker stopped on its own; the line above says why.")
        log.info("botkit worker is stopping: finishing in-flight events for up to %.0f s", shutdown_timeout)
    log.info("botkit worker stopped")


async def check_chatwoot_versions(app: Starlette) -> None:
    """At the worker's start-up, each bot that looks before acting reads its Chatwoot's version, so an older
    Chatwoot (before 4.14.2, where a bot token may not GET a conversation) is said once, now (botkit.turn)."""
    for endpoint in app.state.receiver.endpoints.values():
        bot = endpoint.bot
        looks, policies = getattr(bot, "looks", None), getattr(bot, "policies", None)
        if looks is not None and not looks.checked and getattr(policies, "look_before_acting", False):
            await looks.check_version(bot.runtime.chatwoot)


def init(args: argparse.Namespace) -> int:
    """Give a fresh checkout a webhook secret so `botkit serve` starts, and say where it goes in Chatwoot."""
    env_file = Path(args.env_file)
    settings = load_settings(env_file=str(env_file))  # the file it writes to, so a second init adds nothing
    if settings.webhook_secrets or settings.botkit_basic_auth or settings.botkit_allow_unsigned:
        return 0
    secret = secrets.token_urlsafe(24)
    # a new .env holds a secret, so only its owner may read it; an existing one keeps the mode it has
    try:
        descriptor = os.open(env_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    except OSError as exc:
        raise CommandError(f"{env_file} cannot be written ({exc.strerror}); name another --env-file.") from None
    with open(descriptor, "a") as handle:
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
    if env_file.stat().st_mode & 0o077:
        print(f"botkit: {env_file} is readable by other users; chmod 600 {env_file} keeps its secret yours.",
              file=sys.stderr)
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
