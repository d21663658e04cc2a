"""`botkit chat [BOT]`: talk to a bot in the terminal, with no Chatwoot.

The bot runs in this process for real (receiver, worker, Chatwoot client) against a fake Chatwoot on a
loopback port, through the testing kit's flow API. What you type is delivered as a contact's message;
the bot's replies print as chat lines and everything else it does (notes, team assignments, hand-offs,
labels, status changes) as distinct bracketed lines. An input_select's options are numbered: type the number
to pick one, which is sent back as Chatwoot does (`message_updated` with `submitted_values`).

Commands: /resolve (an agent resolves the conversation), /agent TEXT (an agent writes TEXT as a private
note, so `/agent /send 2` sends the bot's second suggestion, `/agent /pause` pauses it: botkit/agents.py),
/reset (a new conversation), /help, /quit. In suggest mode (BOTKIT_MODE=suggest) the bot's suggestions
print as `[suggestion]` lines.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TextIO

from botkit import channels
from botkit.channels import numbered_text
from botkit.config import ConfigError, load_settings

HELP = ("Type a message as the contact. A number picks an option of the bot's last menu. "
        "/resolve: an agent resolves the conversation; /agent TEXT: an agent's private note, e.g. /agent /send 1 "
        "or /agent /help; /reset: a new conversation; /quit: leave.")


def add_bot_arguments(parser: argparse.ArgumentParser) -> None:
    """The bot to try and its team ids, as `botkit chat` and `botkit playground` take them (`fresh_bot`)."""
    parser.add_argument("bot", nargs="?", help="module:attribute or module (default: BOTKIT_BOT); a module's "
                                               "make_bot() builds a fresh bot")
    parser.add_argument("--teams", help="team ids, billing=3,technical=4 (default: BOTKIT_TEAMS, else an id for "
                                        "each team the bot names)")


def add_commands(subparsers: Any) -> None:
    parser = subparsers.add_parser("chat", help="talk to a bot in the terminal, against a fake Chatwoot")
    add_bot_arguments(parser)
    parser.add_argument("--channel", default="web", help="the inbox's channel: web, api, whatsapp, telegram, facebook, "
                                                          "line, twilio, sms, email, instagram, tiktok (or a "
                                                          "Channel::... class name); menus show as it shows them")
    parser.set_defaults(func=run_chat)


def fresh_bot(spec: str) -> Any:
    """The bot `spec` names. `module` or `module:bot` uses the module's make_bot() when it has one."""
    module_name, _, attribute = spec.partition(":")
    attribute = attribute or "bot"
    if os.getcwd() not in sys.path:  # the bot is the user's module, in the current directory
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"the bot module {module_name!r} cannot be imported ({exc}).") from None
    factory = getattr(module, "make_bot", None)
    if attribute == "bot" and callable(factory):
        return factory()
    found = getattr(module, attribute, None)
    if found is None:
        raise ConfigError(f"the bot module {module_name!r} has no {attribute!r}.")
    return found() if callable(found) and not hasattr(found, "handle") else found


def run_chat(args: argparse.Namespace) -> int:
    settings = load_settings()
    if not args.channel.startswith("Channel::") and not channels.channel(args.channel).kind:
        raise ConfigError(f"--channel: no channel named {args.channel!r}; use one of "
                          f"{', '.join(c.key for c in channels.CHANNELS)} (or a Channel::... class name).")
    bot = fresh_bot(args.bot or settings.botkit_bot)
    logging.basicConfig(level=logging.WARNING, format="  [log] %(levelname)s %(name)s: %(message)s")
    asyncio.run(chat(bot, teams=args.teams or settings.botkit_teams, channel=args.channel,
                     read=stdin_reader(), out=sys.stdout))
    return 0


def stdin_reader() -> Callable[[], Awaitable[str | None]]:
    """Lines from stdin, read by a daemon thread (so a blocked read never holds up the exit); None at EOF."""
    queue: asyncio.Queue[str | None] | None = None

    def pump(loop: asyncio.AbstractEventLoop, target: asyncio.Queue[str | None]) -> None:
        while line := sys.stdin.readline():
            loop.call_soon_threadsafe(target.put_nowait, line)
        loop.call_soon_threadsafe(target.put_nowait, None)

    async def read() -> str | None:
        nonlocal queue
        if queue is None:
            queue = asyncio.Queue()
            threading.Thread(target=pump, args=(asyncio.get_running_loop(), queue), daemon=True).start()
        return await queue.get()

    return read


async def chat(bot: Any, *, teams: str | None, channel: str | None, read: Callable[[], Awaitable[str | None]],
               out: TextIO) -> None:
    from botkit.testing.flow import BotFlow

    def say(text: str) -> None:
        out.write(text + "\n")
        out.flush()

    async with BotFlow.start(bot, teams=teams, channel=channel) as flow:
        say(f"Chatting with the bot {getattr(bot, 'name', type(bot).__name__)!r} in conversation "
            f"{flow.conversation_id}; Chatwoot is a fake at {flow.fake.url}, nothing leaves this machine.")
        say(HELP)
        while True:
            out.write("you> ")
            out.flush()
            line = await read()
            if line is None:
                say("")
                return
            text = line.strip()
            if not text:
                continue
            if text in ("/quit", "/exit", "/q"):
                return
            if text == "/help":
                say(HELP)
                continue
            if text == "/reset":
                flow = flow.new_conversation()
                say(f"  [new conversation {flow.conversation_id}]")
                continue
            if text == "/resolve":
                await flow.resolve()
                say("  [status] resolved by an agent; the contact's next message makes it pending again")
                for shown in describe_step(flow, quiet=True):
                    say(shown)
                continue
            if text.startswith("/agent "):
                await flow.agent_note(text.removeprefix("/agent ").strip())
                for shown in describe_step(flow, quiet=True):
                    say(shown)
                continue
            if (choice := _picked(flow, text)) is not None:
                say(f"  (you picked {choice['title']!r})")
                await flow.choose(choice["value"])
            else:
                await flow.send(text)
            for shown in describe_step(flow):
                say(shown)


def _picked(flow: Any, text: str) -> dict[str, Any] | None:
    """The option a number taps in the bot's last menu of buttons, if the text is such a number. A menu sent
    as numbered text gets the number as the contact's message, as on a real phone."""
    found = flow.last_menu()
    if not text.isdigit() or found is None:
        return None
    menu, items, numbered = found
    if numbered or menu["content_attributes"].get("submitted_values"):
        return None
    number = int(text)
    return items[number - 1] if 1 <= number <= len(items) else None


def describe_step(flow: Any, *, quiet: bool = False) -> list[str]:
    """The chat lines for what the bot did in the last step (`quiet`: nothing when it did nothing)."""
    lines: list[str] = []
    for action in flow.actions:
        lines.extend(describe(action, flow.fake, flow.channel))
    for request in flow.requests:
        if request.status is not None and request.status >= 400:
            lines.append(f"  [error] {request.method} {request.path} answered {request.status}")
    if not lines and not quiet:
        if flow.status == "open":
            lines.append("  (the bot stays silent: the conversation is open, humans have it; /resolve or /reset)")
        else:
            lines.append("  (the bot did nothing)")
    return lines


# How the contact sees a menu, by `Channel.menu` (botkit.channels).
MENU_FORMS = {"buttons": "buttons", "list": "a list behind the button 'Choose an item'",
              "keyboard": "an inline keyboard", "quick_replies": "quick replies", "flex": "a card of buttons",
              "passed": "passed to your app, which renders it"}


def describe(action: Any, fake: Any, channel: str | None = None) -> list[str]:
    body = action.body
    kind = action.kind
    if kind == "reply":
        lines = _reply(body, channels.channel(channel))
        failed = _failure(action, fake)
        return lines + ([f"  [failed] the channel refused it: {failed}"] if failed else [])
    if kind == "note":
        text = str(action.value or "")
        if text.startswith("Suggestion "):  # suggest mode (botkit/agents.py): the agent sends it with /send
            head, _, body = text.partition("\n")
            return [f"  [suggestion] {head}"] + [f"      {line}" for line in body.splitlines()]
        return [f"  [note] {text}"]
    if kind == "team":
        team = fake.teams.get(action.value)
        return [f"  [team] assigned to {team.name} ({action.value})" if team else f"  [team] {action.value}"]
    if kind == "agent":
        return [f"  [agent] assigned to agent {action.value}"]
    if kind == "handoff":
        return ["  [hand-off] the conversation is open: humans take it from here"]
    if kind == "status":
        return [f"  [status] {action.value}"]
    if kind == "labels":
        return [f"  [labels] {', '.join(action.value) or '(none)'}"]
    if kind == "attributes":
        return [f"  [attributes] {action.value}"]
    if kind == "priority":
        return [f"  [priority] {action.value}"]
    return [f"  [{kind}] {action.value}"]


def _reply(body: dict[str, Any], where: channels.Channel) -> list[str]:
    """A reply as the contact sees it on `where`: text, numbered text, or a menu in the channel's form."""
    content_type = body.get("content_type") or "text"
    if content_type == "text":
        return [f"bot> {line}" for line in str(body.get("content") or "").splitlines() or [""]]
    text = numbered_text(body).splitlines()
    lines = [f"bot> {text[0]}" if text else "bot>"] + [f"      {line}" for line in text[1:]]
    if content_type != "input_select":
        return lines + [f"      ({content_type})"]
    form = where.menu or "buttons"
    if where is channels.WHATSAPP and len((body.get("content_attributes") or {}).get("items") or []) > 3:
        form = "list"
    return lines + [f"      ({where.title}: {MENU_FORMS.get(form, 'buttons')}; type a number to pick)"]


def _failure(action: Any, fake: Any) -> str | None:
    """The provider's error for a reply the channel refused (the fake marks the message failed)."""
    body = action.body
    path = action.request.path
    conversation_id = int(path.split("/conversations/")[1].split("/")[0])
    for message in reversed(fake.messages(conversation_id)):
        if message.get("content_type") == body.get("content_type") and message.get("status") == "failed" and (
                message.get("content") == body.get("content")):
            return str(message["content_attributes"].get("external_error"))
    return None
