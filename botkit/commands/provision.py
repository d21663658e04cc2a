"""`botkit provision` and `botkit bots ...`: create and manage the Chatwoot agent bot with an admin token.

    botkit provision --name "Support bot" --url https://bot.example.com/webhook --inbox 3 >> .env
    botkit bots show 7                    # its fields and the inboxes it is connected to
    botkit bots disconnect 7 --inbox 3    # take it off an inbox
    botkit provision --system ...; botkit bots --system list   # system bots: botkit/commands/system_bots.py

`provision` creates the agent bot (or updates the one with that name), connects it to the inboxes and prints
the bot's token and secret as `.env` lines on stdout: the one place where printing secrets is the point.
Everything else it says goes to stderr, so stdout can be appended to `.env` as it is.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
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
    provision.add_argument("--inbox", type=int, action="append", default=[], metavar="ID",
                           help="inbox to connect the bot to (repeatable; needed unless --system)")
    provision.add_argument("--description", default=None, help="the bot's description")
    _profile_arguments(provision)
    provision.add_argument("--system", action="store_true",
                           help="a system bot, for every account, through the Platform API (CHATWOOT_PLATFORM_TOKEN)")
    _account_argument(provision)
    provision.set_defaults(func=run_provision)

    bots = subparsers.add_parser("bots", help="list and manage the account's agent bots (admin token)")
    bots.add_argument("--system", action="store_true",
                      help="system bots, through the Platform API (CHATWOOT_PLATFORM_TOKEN)")
    actions = bots.add_subparsers(dest="bots_action", metavar="ACTION")
    actions.required = True
    listing = actions.add_parser("list", help="list the agent bots")
    listing.set_defaults(func=run_list)
    show = actions.add_parser("show", help="show one agent bot (without its token and secret)")
    show.set_defaults(func=run_show)
    update = actions.add_parser("update", help="change a bot's name, outgoing URL, description, avatar or bot_config")
    update.add_argument("--name", default=None)
    update.add_argument("--url", default=None, help="the new outgoing URL")
    update.add_argument("--description", default=None)
    _profile_arguments(update)
    update.set_defaults(func=run_update)
    delete = actions.add_parser("delete", help="delete an agent bot")
    delete.set_defaults(func=run_delete)
    disconnect = actions.add_parser("disconnect", help="take the bot off inboxes (it stays, for other inboxes)")
    disconnect.add_argument("--inbox", type=int, action="append", required=True, metavar="ID",
                            help="inbox to disconnect the bot from (repeatable)")
    disconnect.set_defaults(func=run_disconnect)
    reset_token = actions.add_parser("reset-token", help="give the bot a new access token and print it")
    reset_token.set_defaults(func=run_reset_token)
    reset_secret = actions.add_parser("reset-secret", help="give the bot a new webhook secret and print it")
    reset_secret.set_defaults(func=run_reset_secret)
    for parser in (listing, show, update, delete, disconnect, reset_token, reset_secret):
        if parser is not listing:
            parser.add_argument("bot_id", type=int, metavar="ID", help="the agent bot's id")
        _account_argument(parser)


def _profile_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--avatar-url", default=None, metavar="URL",
                        help="an image (jpeg, png) Chatwoot fetches and shows as the bot's avatar")
    parser.add_argument("--bot-config", default=None, type=bot_config, metavar="JSON",
                        help="a JSON object Chatwoot keeps with the bot (not for system bots)")


def bot_config(text: str) -> dict[str, Any]:
    """--bot-config's value: a JSON object, or argparse's one-line error."""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object, e.g. '{{\"language\": \"en\"}}' (it is {text!r})")
    return value


def profile_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The avatar and bot_config given on the command line, as Chatwoot's fields."""
    fields = {"avatar_url": args.avatar_url, "bot_config": args.bot_config}
    if args.avatar_url is not None and not args.avatar_url.startswith(("http://", "https://")):
        raise CommandError(f"--avatar-url must start with http:// or https://, not {args.avatar_url!r}.")
    return {key: value for key, value in fields.items() if value is not None}


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
    if not args.url.startswith(("http://", "https://")):
        raise CommandError(f"--url must start with http:// or https://, not {args.url!r}.")
    if args.system:
        from botkit.commands.system_bots import run_provision_system

        return run_provision_system(args)
    if not args.inbox:
        raise CommandError("Pass --inbox ID (repeatable) to connect the bot to inboxes, or --system for a system bot.")
    account_id = _account(args)
    profile = profile_fields(args)
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
        fields: dict[str, Any] = {"outgoing_url": args.url, **profile}
        if args.description is not None:
            fields["description"] = args.description
        if existing:
            bot = await client.update_agent_bot(account_id, existing[0]["id"], **fields)
            verb = "updated"
        else:
            bot = await client.create_agent_bot(account_id, name=args.name, outgoing_url=args.url,
                                                description=args.description, **profile)
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
    if args.system:
        from botkit.commands.system_bots import run_list_system

        return run_list_system(args)
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
    if args.system:
        from botkit.commands.system_bots import run_show_system

        return run_show_system(args)
    account_id = _account(args)

    async def work(client: ChatwootClient) -> int:
        bot = await client.get_agent_bot(account_id, args.bot_id)
        for key, value in bot.items():
            if key in HIDDEN:
                value = "(hidden; `botkit bots reset-token` or `reset-secret` prints a new one)"
            print(f"{key}: {value}")
        print(f"inboxes: {await connected_inboxes(client, account_id, args.bot_id)}")
        return 0

    return _run(work)


async def connected_inboxes(client: ChatwootClient, account_id: int, bot_id: int) -> str:
    """The account's inboxes the bot is connected to, as `3 (Website), 5 (Email)`, or why they are not
    known: each inbox's bot is asked for (GET inboxes/ID/agent_bot), since an inbox's own JSON does not say."""
    try:
        inboxes = await client.list_inboxes(account_id)
        names = [f"{inbox['id']} ({inbox.get('name', '?')})" for inbox in inboxes
                 if ((await client.get_inbox_agent_bot(account_id, inbox["id"])) or {}).get("id") == bot_id]
    except ChatwootError as exc:
        return f"not visible with this token in account {account_id} ({exc})"
    return ", ".join(names) or f"none in account {account_id}"


def run_update(args: argparse.Namespace) -> int:
    if args.system:
        from botkit.commands.system_bots import run_update_system

        return run_update_system(args)
    account_id = _account(args)
    fields = update_fields(args)
    if args.url:
        warning = private_url_warning(args.url)
        if warning:
            _note(warning)

    async def work(client: ChatwootClient) -> int:
        bot = await client.update_agent_bot(account_id, args.bot_id, **fields)
        _note(f"Agent bot {bot['id']} updated: {', '.join(sorted(fields))}.")
        return 0

    return _run(work)


def update_fields(args: argparse.Namespace) -> dict[str, Any]:
    """What `bots update` changes, as Chatwoot's fields; one sentence when nothing was given."""
    given = {"name": args.name, "outgoing_url": args.url, "description": args.description}
    fields = {key: value for key, value in given.items() if value is not None} | profile_fields(args)
    if not fields:
        raise CommandError("Nothing to update; pass --name, --url, --description, --avatar-url or --bot-config.")
    if args.url is not None:
        if not args.url.startswith(("http://", "https://")):
            raise CommandError(f"--url must start with http:// or https://, not {args.url!r}.")
        warning = private_url_warning(args.url)
        if warning:
            _note(warning)
    return fields


def run_delete(args: argparse.Namespace) -> int:
    if args.system:
        from botkit.commands.system_bots import run_delete_system

        return run_delete_system(args)
    account_id = _account(args)

    async def work(client: ChatwootClient) -> int:
        await client.delete_agent_bot(account_id, args.bot_id)
        _note(f"Agent bot {args.bot_id} deleted from account {account_id}.")
        return 0

    return _run(work)


def run_disconnect(args: argparse.Namespace) -> int:
    """Take the bot off each inbox, after looking: an inbox connected to another bot (or none) is left as it
    is, and said so, so a wrong id never disconnects someone else's bot. Works for system bots too (an
    account's administrator connects and disconnects them in that account)."""
    account_id = _account(args)

    async def work(client: ChatwootClient) -> int:
        refused = []
        for inbox_id in dict.fromkeys(args.inbox):
            current = await client.get_inbox_agent_bot(account_id, inbox_id)
            if current is None or current.get("id") != args.bot_id:
                what = f"bot {current.get('id')} ({current.get('name')!r})" if current else "no bot"
                refused.append(f"inbox {inbox_id} is connected to {what}, not bot {args.bot_id}")
                continue
            await client.set_inbox_agent_bot(account_id, inbox_id, None)
            _note(f"Agent bot {args.bot_id} disconnected from inbox {inbox_id} in account {account_id}.")
        if refused:
            raise CommandError("Left as it was: " + "; ".join(refused) + ".")
        return 0

    return _run(work)


def _no_system(args: argparse.Namespace, what: str) -> None:
    if args.system:
        raise CommandError(f"Chatwoot's Platform API cannot {what} of a system bot; only account bots have that "
                           "(botkit bots reset-token/reset-secret without --system).")


def run_reset_token(args: argparse.Namespace) -> int:
    _no_system(args, "reset the access token")
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
    _no_system(args, "reset the webhook secret")
    account_id = _account(args)

    async def work(client: ChatwootClient) -> int:
        bot = await client.reset_agent_bot_secret(account_id, args.bot_id)
        if not bot.get("secret"):
            raise CommandError("Chatwoot returned no secret; webhook secrets need Chatwoot 4.13 or newer.")
        _note(f"Agent bot {args.bot_id} has a new webhook secret; deliveries are signed with it from now on.")
        print(f"CHATWOOT_WEBHOOK_SECRET={bot['secret']}")
        return 0

    return _run(work)
