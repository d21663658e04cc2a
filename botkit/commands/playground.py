"""`botkit playground [BOT]`: try a bot in the browser, as a contact and as an agent, with no Chatwoot.

The bot runs against the testing kit's fake Chatwoot in this process, as in `botkit chat`; the page is served
on 127.0.0.1 (botkit/console/playground.py says what it shows and how clicks reach the bot).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

from botkit.config import ConfigError, load_settings

DEFAULT_PORT = 8765


def add_commands(subparsers: Any) -> None:
    from botkit.commands.chat import add_bot_arguments

    parser = subparsers.add_parser("playground", help="try a bot in the browser, against a fake Chatwoot")
    add_bot_arguments(parser)
    parser.add_argument("--channel", default="Channel::WebWidget", help="the contact's channel at the start")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.set_defaults(func=run_playground)


def run_playground(args: argparse.Namespace) -> int:
    from botkit.commands.chat import fresh_bot
    from botkit.console import channel_view

    settings = load_settings()
    try:
        channel_view.channel(args.channel)
    except ValueError as exc:
        raise ConfigError(f"--channel: {exc}.") from None
    bot = fresh_bot(args.bot or settings.botkit_bot)
    logging.basicConfig(level=logging.WARNING, format="  [log] %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve_playground(bot, teams=args.teams or settings.botkit_teams, channel=args.channel,
                                     host=args.host, port=args.port))
    except KeyboardInterrupt:
        pass
    return 0


async def serve_playground(bot: Any, *, teams: str | None, channel: str, host: str, port: int) -> None:
    from botkit.console.playground import Playground
    from botkit.testing.server import serve_app

    async with Playground(bot, teams=teams, channel=channel) as playground:
        try:
            served = serve_app(playground.app, host=host, port=port, lifespan="off")
            url = await served.__aenter__()
        except (OSError, OverflowError, RuntimeError):  # uvicorn logs the reason (address in use) and stops
            raise ConfigError(f"cannot listen on {host}:{port}; pick another --port.") from None
        try:
            print(f"botkit playground: open {url}/ (bot {getattr(bot, 'name', '?')!r}; Chatwoot is a local fake, "
                  "nothing leaves this machine). Ctrl-C stops it.", flush=True)
            await asyncio.Event().wait()
        finally:
            await served.__aexit__(None, None, None)
