"""Menus the bot sent, remembered per conversation, and the contact's answers matched back to them.

Only the web widget answers a menu on the bot's own message (`message_updated` with `submitted_values`,
`app/controllers/api/v1/widget/messages_controller.rb`). Everywhere else the answer is a new incoming
message: the option's title on WhatsApp and Facebook (`app/services/whatsapp/incoming_message_service_helpers.rb`,
`lib/integrations/facebook/message_parser.rb`), with `content_attributes.in_reply_to` = the menu's id on
WhatsApp Cloud; the option's value on Telegram and LINE (`app/services/telegram/param_helpers.rb`,
`app/services/line/incoming_message_service.rb`), with no link back (on Telegram, the short key sent in
place of a value over 64 bytes, `botkit.channels.key_of`, is mapped back here to that value); a number or a
title the contact types, where the menu went out as numbered text. A bot token cannot read a conversation's
messages, so the bot remembers what it sent.

`Memory` keeps, in the conversation's stored state (under `KEY`, which handlers never see), the bot's recent
rich messages: id, when, how they were shown, their options and their numbered text. An answer matches an
option exactly after folding case and accents (the title, the value, or the number of a numbered menu); each
menu is answered once (but for a short key, which only its Telegram button sends, so each tap is an answer).
Text that matches no open menu is an ordinary message. Records older than the expiry (`BOTKIT_MENU_TTL`, a
day by default) are forgotten.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from botkit.channels import Rendered, fold_title

KEY = "_botkit"  # the bot's own memory inside a conversation's state
KEEP = 20  # records kept per conversation, newest last
_NUMBER = re.compile(r"^\s*#?(\d{1,3})\s*[.)]?\s*$")


@dataclass(frozen=True)
class Answer:
    """The contact's pick: `submitted` is `[{title, value}]` as the widget sends it (`[{name, value}]` for a
    form); `message_id` is the menu's message; `how` is submitted, title, value or number."""

    submitted: list[dict[str, Any]]
    message_id: int | None
    how: str


class Memory:
    """The bot's memory of one conversation: its recent rich messages and whether the channel refused a reply
    outside its messaging window. Built from and written back to the conversation's state dict."""

    def __init__(self, data: dict[str, Any] | None, *, now: float, ttl: float) -> None:
        data = data if isinstance(data, dict) else {}
        records = data.get("menus") if isinstance(data.get("menus"), list) else []
        self.now = now
        self.ttl = ttl
        self.menus: list[dict[str, Any]] = [r for r in records if isinstance(r, dict) and now - r.get("at", 0) < ttl]
        self.window_closed: bool = bool(data.get("window_closed"))

    @classmethod
    def take(cls, state: dict[str, Any], *, now: float, ttl: float) -> Memory:
        """The memory kept in `state`, removed from it (handlers see their own keys only)."""
        return cls(state.pop(KEY, None), now=now, ttl=ttl)

    def dump(self) -> dict[str, Any]:
        data: dict[str, Any] = {"menus": self.menus[-KEEP:]}
        if self.window_closed:
            data["window_closed"] = True
        return data

    # what the bot sent ------------------------------------------------------------------------------------
    def remember(self, message_id: int | None, rendered: Rendered) -> None:
        """Keep a rich message the bot sent (a retried event's reply is the same message: kept once)."""
        if message_id is None or rendered.payload.get("content_type") == "text" and not rendered.options:
            return
        if self.find(message_id) is not None:
            return
        self.menus.append({"id": message_id, "at": self.now, "form": rendered.form,
                           "options": rendered.options, "numbered": rendered.numbered,
                           "answered": False, "resent": False})
        del self.menus[:-KEEP]

    def find(self, message_id: Any) -> dict[str, Any] | None:
        for record in self.menus:
            if record.get("id") == message_id:
                return record
        return None

    # the contact's answers ------------------------------------------------------------------------------
    def submitted(self, message_id: int | None, values: list[dict[str, Any]]) -> Answer | None:
        """The widget's answer (`message_updated` of the bot's message): None when that message was answered
        already (the widget lets a contact submit again, and later updates repeat `submitted_values`)."""
        record = self.find(message_id)
        if record is not None and record.get("answered"):
            return None
        if record is None:  # a menu sent before botkit remembered menus, or by another tool: answered now
            record = {"id": message_id, "at": self.now, "form": "native", "options": [], "numbered": "",
                      "resent": False}
            self.menus.append(record)
        record["answered"] = True
        return Answer(values, message_id, "submitted")

    def typed(self, text: str, in_reply_to: Any = None) -> Answer | None:
        """Match a new incoming message to an open menu: the menu it replies to (`in_reply_to`), else the
        newest open menu with an option whose title or value equals the text, or (for a menu sent as numbered
        text) whose number it is. None: an ordinary message."""
        wanted = fold_title(text)
        if not wanted:
            return None
        if in_reply_to is not None and self.find(in_reply_to) is not None:
            candidates = [self.find(in_reply_to)]
        else:
            candidates = list(reversed(self.menus))
        number = _NUMBER.match(text)
        for record in candidates:
            if record is None or not record.get("options"):
                continue
            if record.get("answered"):
                # A key comes only from its button, and Telegram's keyboard stays: a second tap is the contact
                # asking again, answered with the value, not a key handlers could not read.
                keyed = [o for o in record["options"] if o.get("key") and fold_title(o["key"]) == wanted]
                if keyed:
                    return self._answer(record, keyed[0], "value")
                continue
            options = record["options"]
            # a number typed back picks that line of a numbered menu before any option whose value is a number
            if number and record.get("form") == "numbered" and 1 <= int(number.group(1)) <= len(options):
                return self._answer(record, options[int(number.group(1)) - 1], "number")
            for how in ("title", "value", "key"):
                for option in options:
                    if option.get(how) and fold_title(option[how]) == wanted:
                        return self._answer(record, option, "value" if how == "key" else how)
        return None

    def _answer(self, record: dict[str, Any], option: dict[str, Any], how: str) -> Answer:
        record["answered"] = True
        return Answer([{"title": option.get("title", ""), "value": option.get("value", "")}], record["id"], how)
