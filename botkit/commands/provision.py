"""`botkit provision` and `botkit bots ...`: create and manage the Chatwoot agent bot with an admin token.

    botkit provision --name "Support bot" --url https://bot.example.com/webhook --inbox 3 >> .env

`provision` creates the agent bot (or updates the one with that name), connects it to the inboxes and prints
the bot's token and secret as `.env` lines on stdout: the one place where printing secrets is the point.
Everything else it says goes to stderr, so stdout can be appended to `.env` as it is.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import sys
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from botkit.chatwoot import ChatwootClient, ChatwootError
from botkit.commands.errors import CommandError
from botkit.config import load_settings

ACCOUNT_HELP = "Chatwoot account id (default: $CHATWOOT_ACCOUNT_ID, else 1)"


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    provision = subparsers.add_parser(
        "provision", help="create or update the agent bot, connect it to inboxes, print its token and secret",
        description="Needs CHATWOOT_BASE_URL and CHATWOOT_ADMIN_TOKEN (an administrator's access token).",
    )
    provision.add_argument("--name", required=True, help="the bot's name; an existing bot with it is updated")
    provision.add_argument("--url", required=True, help="the outgoing URL Chatwoot posts events to")
    provision.add_argument("--inbox", type=int, action="append", required=True, metavar="ID",
                           help="inbox to connect the bot to (repeatable)")
    provision.add_argument("--description", default=None, help="the bot's description")
    _account_argument(provision)
    provision.set_defaults(func=run_provision)

    bots = subparsers.add_parser("bots", help="list and manage the account's agent bots (admin token)")
    actions = bots.add_subparsers(dest="bots_action", metavar="ACTION")
    actions.required = True
    listing = actions.add_parser("list", help="list the agent bots")
    listing.set_defaults(func=run_list)
    show = actions.add_parser("show", help="show one agent bot (without its token and secret)")
    show.set_defaults(func=run_show)
    update = actions.add_parser("update", help="rename a bot or change its outgoing URL")
    update.add_argument("--name", default=None)
    update.add_argument("--url", default=None, help="the new outgoing URL")
    update.set_defaults(func=run_update)
    delete = actions.add_parser("delete", help="delete an agent bot")
    delete.set_defaults(func=run_delete)
    reset_token = actions.add_parser("reset-token", help="give the bot a new access token and print it")
    reset_token.set_defaults(func=run_reset_token)
    reset_secret = actions.add_parser("reset-secret", help="give the bot a new webhook secret and print it")
    reset_secret.set_defaults(func=run_reset_secret)
    for parser in (listing, show, update, delete, reset_token, reset_secret):
        if parser is not listing:
            parser.add_argument("bot_id", type=int, metavar="ID", help="the agent bot's id")
        _account_argument(parser)


def _account_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--account", type=int, default=None, help=ACCOUNT_HELP)


def _account(args: argparse.Namespace) -> int:
    if args.account is not None:
        return args.account
    return load_settings().chatwoot_account_id


def _admin_client() -> ChatwootClient:
    settings = load_settings()
    if not settings.chatwoot_base_url:
        raise CommandError("CHATWOOT_BASE_URL is not set; set it to Chatwoot's URL, e.g. https://chat.example.com.")
    if settings.chatwoot_admin_token is None:
        raise CommandError(
            "CHATWOOT_ADMIN_TOKEN is not set; set it to an administrator's access token "
            "(Profile settings > Access token in Chatwoot)."
        )
    return ChatwootClient.from_settings(settings, token=settings.chatwoot_admin_token, deadline=15.0)


def _run(work: Callable[[ChatwootClient], Awaitable[int]]) -> int:
    async def main() -> int:
        async with _admin_client() as client:
            return await work(client)

    try:
        return asyncio.run(main())
    except ChatwootError as exc:
        raise CommandError(str(exc)) from None


def _note(text: str) -> None:
    print(text, file=sys.stderr)


def private_url_warning(url: str) -> str | None:
    """A warning when Chatwoot 4.14+ would refuse to post to this URL by default, else None."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    why = None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host == "localhost" or host.endswith(".localhost"):
            why = "is loopback"
        elif host and "." not in host:
            why = "looks like a private (e.g. Docker network) name"
    else:
        if address.is_loopback:
            why = "is loopback"
        elif address.is_private or address.is_link_local:
            why = "is a private address"
    if why is None:
        return None
    return (
        f"warning: the host {host!r} of {url} {why}; Chatwoot 4.14+ refuses such outgoing URLs unless its "
        "server sets SAFE_FETCH_ALLOW_PRIVATE_NETWORK=true."
    )


# provision ----------------------------------------------------------------------------------------------


def run_provision(args: argparse.Namespace) -> int:
    account_id = _account(args)
    if not args.url.startswith(("http://", "https://")):
        raise CommandError(f"--url must start with http:// or https://, not {args.url!r}.")
    warning = private_url_warning(args.url)
    if warning:
        _note(warning)

    async def work(client: ChatwootClient) -> int:
        inboxes = {inbox["id"]: inbox for inbox in await client.list_inboxes(account_id)}
        missing = [inbox_id for inbox_id in args.inbox if inbox_id not in inboxes]
        if missing:
            known = ", ".join(f"{i} ({inbox.get('name', '?')})" for i, inbox in sorted(inboxes.items())) or "none"
            raise CommandError(f"Inbox {missing[0]} is not in account {account_id}; its inboxes are: {known}.")
        existing = [bot for bot in await client.list_agent_bots(account_id)
                    if bot.get("name") == args.name and bot.get("account_id") == account_id]
        fields: dict[str, Any] = {"outgoing_url": args.url}
        if args.description is not None:
            fields["description"] = args.description
        if existing:
            bot = await client.update_agent_bot(account_id, existing[0]["id"], **fields)
            verb = "updated"
        else:
            bot = await client.create_agent_bot(account_id, name=args.name, outgoing_url=args.url,
                                                description=args.description)
            verb = "created"
        for inbox_id in dict.fromkeys(args.inbox):
            await client.set_inbox_agent_bot(account_id, inbox_id, bot["id"])
        names = ", ".join(f"{i} ({inboxes[i].get('name', '?')})" for i in dict.fromkeys(args.inbox))
        _note(f"Agent bot {args.name!r} (id {bot['id']}) {verb} in account {account_id}, connected to inbox {names}.")
        _print_env(bot)
        return 0

    return _run(work)


def _print_env(bot: dict[str, Any]) -> None:
    """The `.env` lines for this bot, on stdout only."""
    token = bot.get("access_token")
    if not token:
        raise CommandError(
            "Chatwoot did not return the bot's access token; check that the token is an administrator's."
        )
    print(f"CHATWOOT_BOT_TOKEN={token}")
    secret = bot.get("secret")
    if secret:
        print(f"CHATWOOT_WEBHOOK_SECRET={secret}")
    else:
        _note("Chatwoot returned no webhook secret (it signs deliveries from 4.13 on); without one set "
              "BOTKIT_ALLOW_UNSIGNED=true, or better, upgrade Chatwoot.")


# bots ---------------------------------------------------------------------------------------------------


def run_list(args: argparse.Namespace) -> int:
    account_id = _account(args)

    async def work(client: ChatwootClient) -> int:
        bots = await client.list_agent_bots(account_id)
        if not bots:
            _note(f"Account {account_id} has no agent bots; create one with `botkit provision`.")
            return 0
        print(f"{'ID':>6}  {'NAME':<24}  {'SCOPE':<7}  OUTGOING URL")
        for bot in bots:
            scope = "system" if bot.get("system_bot") or bot.get("account_id") is None else "account"
            print(f"{bot['id']:>6}  {str(bot.get('name', ''))[:24]:<24}  {scope:<7}  {bot.get('outgoing_url') or ''}")
        return 0

    return _run(work)


HIDDEN = {"access_token", "secret"}


def run_show(args: argparse.Namespace) -> int:
    account_id = _account(args)

    async def work(client: ChatwootClient) -> int:
        bot = await client.get_agent_bot(account_id, args.bot_id)
        for key, value in bot.items():
            if key in HIDDEN:
                value = "(hidden; `botkit bots reset-token` or `reset-secret` prints a new one)"
            print(f"{key}: {value}")
        return 0

    return _run(work)


def run_update(args: argparse.Namespace) -> int:
    account_id = _account(args)
    fields = {key: value for key, value in (("name", args.name), ("outgoing_url", args.url)) if value is not None}
    if not fields:
        raise CommandError("Nothing to update; pass --name NAME and/or --url URL.")
    if args.url:
        warning = private_url_warning(args.url)
        if warning:
            _note(warning)

    async def work(client: ChatwootClient) -> int:
        bot = await client.update_agent_bot(account_id, args.bot_id, **fields)
        _note(f"Agent bot {bot['id']} updated: name {bot.get('name')!r}, outgoing URL {bot.get('outgoing_url')}.")
        return 0

    return _run(work)


def run_delete(args: argparse.Namespace) -> int:
    account_id = _account(args)

    async def work(client: ChatwootClient) -> int:
        await client.delete_agent_bot(account_id, args.bot_id)
        _note(f"Agent bot {args.bot_id} deleted from account {account_id}.")
        return 0

    return _run(work)


def run_reset_token(args: argparse.Namespace) -> int:
    account_id = _account(args)

    async def work(client: ChatwootClient) -> int:
        bot = await client.reset_agent_bot_token(account_id, args.bot_id)
        if not bot.get("access_token"):
            raise CommandError("Chatwoot did not return the new access token; check the token is an administrator's.")
        _note(f"Agent bot {args.bot_id} has a new access token; the old one no longer works.")
        print(f"CHATWOOT_BOT_TOKEN={bot['access_token']}")
        return 0

    return _run(work)


def run_reset_secret(args: argparse.Namespace) -> int:
    account_id = _account(args)

    async def work(client: ChatwootClient) -> int:
        bot = await client.reset_agent_bot_secret(account_id, args.bot_id)
        if not bot.get("secret"):
            raise CommandError("Chatwoot returned no secret; webhook secrets need Chatwoot 4.13 or newer.")
        _note(f"Agent bot {args.bot_id} has a new webhook secret; deliveries are signed with it from now on.")
        print(f"CHATWOOT_WEBHOOK_SECRET={bot['secret']}")
        return 0

    return _run(work)
