"""Agents steer the bot from Chatwoot: a private note that starts with the bot's prefix is a command.

    /send        post the bot's suggestion to the contact (/send 2: the second of several)
    /pause       the bot stays silent in this conversation until /resume
    /resume      the bot may answer again in this conversation
    /bot         hand the conversation back to the bot (it becomes pending again)
    /summary     a private note summing up the conversation so far
    /mode suggest|answer   suggestions as private notes, or answers to the contact, in this conversation
    /help        the list of commands

Only what an agent writes counts: a private note (outgoing, `private: true`) whose sender is a user
(`sender.type == "user"`: app/models/message.rb#webhook_data, app/models/user.rb#webhook_data). The
contact's messages, the bot's own notes, Captain's and other bots' are never commands. `parse` only reads
the text; who may command is `is_agent_note`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botkit.i18n import N_
from botkit.summary import Translate, english

COMMANDS = {  # the help line of each, in the agents' language (botkit/i18n.py)
    "send": N_("{prefix}send [n]: post suggestion n (default 1) to the contact"),
    "pause": N_("{prefix}pause: the bot stays silent in this conversation"),
    "resume": N_("{prefix}resume: the bot answers again in this conversation"),
    "bot": N_("{prefix}bot: hand the conversation back to the bot"),
    "summary": N_("{prefix}summary: a note summing up the conversation"),
    "mode": N_("{prefix}mode suggest|answer: suggestions as notes, or answers to the contact"),
    "help": N_("{prefix}help: this list"),
}
UNKNOWN = N_("Unknown command {command}.")
LIST = N_("Commands:")
MODES = ("answer", "suggest")


@dataclass(frozen=True)
class Command:
    """A parsed command: `name` is one of COMMANDS, or what the agent typed when it is unknown."""

    name: str
    argument: str = ""
    known: bool = True

    @property
    def number(self) -> int | None:
        """`/send 2` -> 2; None when the argument is not a whole number of at least 1."""
        return int(self.argument) if self.argument.isdigit() and int(self.argument) >= 1 else None


def parse(text: str | None, prefix: str = "/") -> Command | None:
    """The command a note's text holds, or None when it does not start with `prefix` (then it is an
    ordinary note between agents). Names are case-insensitive; the rest of the first line is the argument."""
    if not text or not prefix:
        return None
    first = text.strip().splitlines()[0] if text.strip() else ""
    if not first.startswith(prefix) or len(first) == len(prefix):
        return None
    name, _, argument = first[len(prefix):].partition(" ")
    name = name.strip().lower()
    if not name:
        return None
    return Command(name, argument.strip(), known=name in COMMANDS)


def is_agent_note(event: Any) -> bool:
    """Is this delivery an agent's private note (the only messages that may command the bot)?"""
    message = getattr(event, "message", None)
    sender = getattr(event, "sender", None)
    return (getattr(event, "name", None) == "message_created" and message is not None and message.private
            and str(message.message_type) == "outgoing" and sender is not None and sender.kind == "user")


def help_text(prefix: str = "/", unknown: str | None = None, t: Translate = english) -> str:
    """The list of commands, written with the bot's prefix, through `t` (the agents' language); led by what
    was not understood, if anything."""
    lines = [t(line, prefix=prefix) for line in COMMANDS.values()]
    head = t(UNKNOWN, command=prefix + unknown) + " " if unknown else ""
    return head + t(LIST) + "\n" + "\n".join(lines)
