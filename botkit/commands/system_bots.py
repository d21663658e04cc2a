"""System bots: `botkit provision --system` and `botkit bots --system list|show|update|delete`.

    botkit provision --system --name "Support bot" --url https://bot.example.com/webhook [--inbox 3]
    botkit bots --system list

A system bot belongs to no account: every account's administrators may connect it to their inboxes. It is
made through Chatwoot's Platform API with a platform app's token (CHATWOOT_PLATFORM_TOKEN; Super Admin >
Platform Apps), which sees only the bots that app made (app/controllers/platform_controller.rb). The Platform
API answers `{id, name, description, outgoing_url, account_id}` and takes name, description, account_id,
outgoing_url and avatar_url (app/controllers/platform/api/v1/agent_bots_controller.rb): never the bot's
access token, nor bot_config. Inboxes are an account's, so connecting one (`--inbox`) and naming those the
bot serves take an administrator's token (CHATWOOT_ADMIN_TOKEN) too; so does reading the bot's access token,
which the account API shows for system bots (app/views/api/v1/models/_agent_bot.json.jbuilder). Chatwoot
never shows a system bot's webhook secret.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from botkit.chatwoot import ChatwootClient, ChatwootError
from botkit.commands.errors import CommandError
from botkit.commands.provision import (
    _account,
    _admin_client,
    _note,
    connected_inboxes,
    private_url_warning,
    profile_fields,
    update_fields,
)
from botkit.config import load_settings

NO_BOT_CONFIG = ("--bot-config cannot be set on a system bot: Chatwoot's Platform API ignores it (it takes name, "
                 "description, account_id, outgoing_url and avatar_url).")
UNSIGNED_ADVICE = ("Chatwoot never shows a system bot's webhook secret: put credentials in its URL "
             "(https://user:pass@bot.example.com/webhook) and set BOTKIT_BASIC_AUTH=user:pass.")


def _platform_client() -> ChatwootClient:
    settings = load_settings()
    if not settings.chatwoot_base_url:
        raise CommandError("CHATWOOT_BASE_URL is not set; set it to Chatwoot's URL, e.g. https://chat.example.com.")
    if settings.chatwoot_platform_token is None:
        raise CommandError("CHATWOOT_PLATFORM_TOKEN is not set; set it to a platform app's access token "
                           "(Super Admin > Platform Apps in Chatwoot) to manage system bots.")
    return ChatwootClient.from_settings(settings, token=settings.chatwoot_platform_token, deadline=15.0)


def _has_admin_token() -> bool:
    return load_settings().chatwoot_admin_token is not None


def _run(work: Callable[[ChatwootClient], Awaitable[int]]) -> int:
    async def main() -> int:
        async with _platform_client() as client:
            return await work(client)

    try:
        return asyncio.run(main())
    except ChatwootError as exc:
        raise CommandError(str(exc)) from None


def _describe(bot: dict[str, Any]) -> str:
    scope = "system bot" if bot.get("account_id") is None else f"bot of account {bot['account_id']}"
    return f"{bot.get('name')!r} (id {bot['id']}, {scope})"


# provision ----------------------------------------------------------------------------------------------


def run_provision_system(args: argparse.Namespace) -> int:
    profile = profile_fields(args)
    if "bot_config" in profile:
        raise CommandError(NO_BOT_CONFIG)
    if args.inbox and not _has_admin_token():
        raise CommandError("--inbox connects the system bot in an account, which takes CHATWOOT_ADMIN_TOKEN (an "
                           "administrator's access token) besides the platform token.")
    warning = private_url_warning(args.url)
    if warning:
        _note(warning)
    account_id = _account(args)

    async def work(platform: ChatwootClient) -> int:
        existing = [bot for bot in await platform.list_platform_bots() if bot.get("name") == args.name]
        fields: dict[str, Any] = {"outgoing_url": args.url, **profile}
        if args.description is not None:
            fields["description"] = args.description
        if existing:
            bot = await platform.update_platform_bot(existing[0]["id"], **fields)
            verb = "updated"
        else:
            bot = await platform.create_platform_bot(name=args.name, **fields)
            verb = "created"
        _note(f"System bot {_describe(bot)} {verb}.")
        if not _has_admin_token():
            _note("The Platform API never returns a bot's access token: set CHATWOOT_ADMIN_TOKEN (an account "
                  "administrator's) and run this again to print CHATWOOT_BOT_TOKEN, and to connect inboxes.")
            _note(UNSIGNED_ADVICE)
            return 0
        async with _admin_client() as admin:
            await _connect(admin, account_id, bot["id"], args.inbox)
            token = (await admin.get_agent_bot(account_id, bot["id"])).get("access_token")
        if not token:
            raise CommandError(f"Account {account_id} did not show the system bot's access token; check that "
                               "CHATWOOT_ADMIN_TOKEN is an administrator's of that account.")
        print(f"CHATWOOT_BOT_TOKEN={token}")
        _note(UNSIGNED_ADVICE)
        return 0

    return _run(work)


async def _connect(admin: ChatwootClient, account_id: int, bot_id: int, inbox_ids: list[int]) -> None:
    if not inbox_ids:
        return
    inboxes = {inbox["id"]: inbox for inbox in await admin.list_inboxes(account_id)}
    missing = [inbox_id for inbox_id in inbox_ids if inbox_id not in inboxes]
    if missing:
        known = ", ".join(f"{i} ({inbox.get('name', '?')})" for i, inbox in sorted(inboxes.items())) or "none"
        raise CommandError(f"Inbox {missing[0]} is not in account {account_id}; its inboxes are: {known}.")
    for inbox_id in dict.fromkeys(inbox_ids):
        await admin.set_inbox_agent_bot(account_id, inbox_id, bot_id)
    names = ", ".join(f"{i} ({inboxes[i].get('name', '?')})" for i in dict.fromkeys(inbox_ids))
    _note(f"Connected to inbox {names} in account {account_id}.")


# bots --system ------------------------------------------------------------------------------------------


def run_list_system(args: argparse.Namespace) -> int:
    async def work(platform: ChatwootClient) -> int:
        bots = await platform.list_platform_bots()
        if not bots:
            _note("This platform app has made no agent bots; create one with `botkit provision --system`.")
            return 0
        print(f"{'ID':>6}  {'NAME':<24}  {'ACCOUNT':<7}  OUTGOING URL")
        for bot in bots:
            account = "-" if bot.get("account_id") is None else str(bot["account_id"])
            print(f"{bot['id']:>6}  {str(bot.get('name', ''))[:24]:<24}  {account:<7}  {bot.get('outgoing_url') or ''}")
        return 0

    return _run(work)


def run_show_system(args: argparse.Namespace) -> int:
    account_id = _account(args)

    async def work(platform: ChatwootClient) -> int:
        bot = await platform.get_platform_bot(args.bot_id)
        for key, value in bot.items():
            print(f"{key}: {value}")
        if _has_admin_token():
            async with _admin_client() as admin:
                print(f"inboxes: {await connected_inboxes(admin, account_id, args.bot_id)}")
        else:
            print("inboxes: not visible with a platform token (set CHATWOOT_ADMIN_TOKEN to see an account's)")
        return 0

    return _run(work)


def run_update_system(args: argparse.Namespace) -> int:
    fields = update_fields(args)
    if "bot_config" in fields:
        raise CommandError(NO_BOT_CONFIG)

    async def work(platform: ChatwootClient) -> int:
        bot = await platform.update_platform_bot(args.bot_id, **fields)
        _note(f"System bot {_describe(bot)} updated: {', '.join(sorted(fields))}.")
        return 0

    return _run(work)


def run_delete_system(args: argparse.Namespace) -> int:
    async def work(platform: ChatwootClient) -> int:
        await platform.delete_platform_bot(args.bot_id)
        _note(f"System bot {args.bot_id} deleted; every inbox it served has no bot now.")
        return 0

    return _run(work)
