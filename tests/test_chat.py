"""`botkit chat` driven through a pseudo-terminal, as a person uses it."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pexpect
import pytest

from botkit.commands.chat import chat, fresh_bot
from botkit.config import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def spawn(tmp_path: Path, *args: str, **env: str) -> pexpect.spawn:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("BOTKIT_", "CHATWOOT_"))}
    environment.update(PYTHONPATH=str(ROOT), NO_COLOR="1", **env)
    child = pexpect.spawn(sys.executable, ["-m", "botkit.cli", "chat", *args], cwd=str(tmp_path), env=environment,
                          encoding="utf-8", timeout=30)
    child.expect("you> ")
    return child


def say(child: pexpect.spawn, text: str) -> str:
    """Type a line; return what the chat printed before the next prompt."""
    child.sendline(text)
    child.expect("you> ")
    return child.before.replace("\r\n", "\n")


def test_the_default_bot_answers_and_hands_off_to_the_billing_team(tmp_path):
    child = spawn(tmp_path)  # BOT defaults to BOTKIT_BOT's default, the support router
    try:
        shown = say(child, "I have a billing question")
        assert "bot> I'm transferring you to our billing team." in shown
        assert "[team] assigned to billing" in shown
        assert "[hand-off] the conversation is open" in shown
        assert "the bot stays silent" in say(child, "hello?")
        assert "[status] resolved by an agent" in say(child, "/resolve")
        assert "bot> How can I help you today?" in say(child, "hi again")
        assert "[new conversation 129]" in say(child, "/reset")
        child.sendline("/quit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


def test_a_menu_option_picked_by_number_reaches_the_handler(tmp_path):
    child = spawn(tmp_path, "tests.support.menu_bot", BOTKIT_TEAMS="billing=3")
    try:
        shown = say(child, "hello")
        assert "bot> What can I help with?" in shown
        assert "1. Track my order" in shown and "2. Get a refund" in shown
        shown = say(child, "2")
        assert "(you picked 'Get a refund')" in shown
        assert "[note] Hand-off summary" in shown and "Note: The contact asked for a refund." in shown
        assert "[team] assigned to billing (3)" in shown
        assert "[hand-off]" in shown
        assert "[new conversation" in say(child, "/reset")
        assert "bot> What can I help with?" in say(child, "menu")
        shown = say(child, "9")  # no such option: sent as the contact's text, the bot shows its menu again
        assert "you picked" not in shown and "bot> What can I help with?" in shown
        shown = say(child, "1")
        assert "bot> Your order is on its way." in shown and "[labels] orders" in shown
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


def test_fresh_bot_prefers_make_bot_and_says_what_is_wrong():
    from tests.support import menu_bot

    made = fresh_bot("tests.support.menu_bot")
    assert made is not menu_bot.bot and made.name == "menu"
    assert fresh_bot("tests.support.menu_bot:MENU") is menu_bot.MENU
    with pytest.raises(ConfigError, match="cannot be imported"):
        fresh_bot("no_such_module_here:bot")
    with pytest.raises(ConfigError, match="has no 'nothing'"):
        fresh_bot("tests.support.menu_bot:nothing")


async def test_chat_in_process_with_a_scripted_reader():
    from tests.support.menu_bot import make_bot

    lines = iter(["note\n", "done\n", "/help\n", "/quit\n"])

    async def read():
        return next(lines, None)

    out = io.StringIO()
    await chat(make_bot(), teams="billing=3", channel=None, read=read, out=out)
    text = out.getvalue()
    assert "  [note] The contact wants a note." in text
    assert "bot> Glad I could help.\n  [status] resolved" in text
    assert text.count("A number picks an option") == 2  # the banner and /help


def test_suggestions_show_and_an_agent_sends_one(tmp_path):
    child = spawn(tmp_path, BOTKIT_MODE="suggest")
    try:
        shown = say(child, "hello")
        assert "[suggestion] Suggestion 1 (/send 1 to send it):" in shown
        assert "      How can I help you today?" in shown and "bot>" not in shown
        shown = say(child, "/agent /send 1")
        assert "bot> How can I help you today?" in shown
        assert "Unknown command /nope" in say(child, "/agent /nope")
        assert "[note] The bot is paused" in say(child, "/agent /pause")
        child.sendline("/quit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


@pytest.mark.parametrize("channel, shown_as", [
    ("whatsapp", "(WhatsApp: buttons; type a number to pick)"),
    ("telegram", "(Telegram: an inline keyboard; type a number to pick)"),
    ("sms", None),
])
async def test_chat_on_a_channel_shows_the_menu_as_that_channel_does(channel, shown_as):
    from tests.support.menu_bot import make_bot

    lines = iter(["hello\n", "2\n", "/quit\n"])

    async def read():
        return next(lines, None)

    out = io.StringIO()
    await chat(make_bot(), teams="billing=3", channel=channel, read=read, out=out)
    text = out.getvalue()
    assert "bot> What can I help with?\n      1. Track my order\n      2. Get a refund" in text or (
        "bot> What can I help with?\nbot> 1. Track my order\nbot> 2. Get a refund" in text)
    if shown_as is None:  # numbered text: the contact types the number, and the bot maps it back
        assert "type a number to pick" not in text and "you picked" not in text
    else:
        assert shown_as in text and "(you picked 'Get a refund')" in text
    assert "[note] Hand-off summary" in text and "Note: The contact asked for a refund." in text
    assert "[hand-off]" in text


def test_an_unknown_channel_is_one_sentence_listing_the_known_ones(capsys):
    # `botkit chat --channel pigeon` stopped with the test kit's ValueError traceback.
    from botkit.cli import main

    assert main(["chat", "bots.support_router:bot", "--channel", "pigeon"]) == 2
    assert capsys.readouterr().err == (
        "botkit: --channel: no channel named 'pigeon'; use one of web, api, whatsapp, telegram, facebook, line, "
        "twilio, sms, email, instagram, tiktok (or a Channel::... class name).\n")


def test_the_playground_on_a_port_that_cannot_be_is_one_sentence(capsys):
    # `botkit playground --port 99999` stopped with an OverflowError traceback from bind().
    from botkit.cli import main

    assert main(["playground", "bots.showcase", "--port", "99999"]) == 2
    assert capsys.readouterr().err.endswith("botkit: cannot listen on 127.0.0.1:99999; pick another --port.\n")
