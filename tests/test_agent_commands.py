"""The agent command parser and who may command: only an agent's private note."""

from __future__ import annotations

import pytest

from botkit import events
from botkit.agent_commands import Command, help_text, is_agent_note, parse
from botkit.testing import factories


@pytest.mark.parametrize(("text", "expected"), [
    ("/send", Command("send")),
    ("/send 2", Command("send", "2")),
    ("  /SEND 2  ", Command("send", "2")),
    ("/mode suggest\nthanks", Command("mode", "suggest")),
    ("/pause", Command("pause")),
    ("/bot", Command("bot")),
    ("/frobnicate now", Command("frobnicate", "now", known=False)),
])
def test_parse_reads_the_first_line(text: str, expected: Command) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize("text", ["", None, "send it", "/", "/ send", "please /send", "!send"])
def test_text_without_the_prefix_is_an_ordinary_note(text: str | None) -> None:
    assert parse(text) is None


def test_the_prefix_is_configurable() -> None:
    assert parse("!send 3", prefix="!") == Command("send", "3")
    assert parse("/send", prefix="!") is None
    assert "!send [n]" in help_text("!")


def test_send_numbers() -> None:
    assert Command("send", "2").number == 2
    assert Command("send", "").number is None
    assert Command("send", "0").number is None
    assert Command("send", "two").number is None


def test_help_names_the_unknown_command_and_lists_the_known_ones() -> None:
    text = help_text("/", unknown="frobnicate")
    assert text.startswith("Unknown command /frobnicate.")
    for name in ("/send", "/pause", "/resume", "/bot", "/summary", "/mode", "/help"):
        assert name in text


def test_only_an_agents_private_note_may_command() -> None:
    assert is_agent_note(events.parse(factories.private_note("/send")))
    assert not is_agent_note(events.parse(factories.contact_message("/send")))
    assert not is_agent_note(events.parse(factories.agent_reply("/send")))  # public: the contact sees it
    bot_note = factories.private_note("/send")
    bot_note["sender"] = {"id": 1, "name": "botkit", "type": "agent_bot"}
    assert not is_agent_note(events.parse(bot_note))
    captain = factories.private_note("/send")
    captain["sender"] = {"id": 3, "name": "Captain", "type": "captain_assistant"}
    assert not is_agent_note(events.parse(captain))
