"""What a contact on each channel sees of a bot's message, and how their answer comes back to the bot.

The channel rules are botkit.channels' (its table says how each provider shows a menu and how a pick comes
back); the bot has already rendered each message for the conversation's channel (botkit/context.py). This
module only says how the page draws what Chatwoot then holds: the widget's own rich messages, WhatsApp's reply
buttons (at most `channels.WHATSAPP_BUTTONS`) or its list behind "Choose an item"
(`app/services/whatsapp/providers/base_service.rb`), Telegram's inline keyboard, and text elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botkit import channels


@dataclass(frozen=True)
class Channel:
    type: str  # Chatwoot's channel type, as in a delivery's conversation.channel
    label: str
    look: str  # the page's style for it: widget, whatsapp, telegram, email, sms


CHANNELS = [
    Channel("Channel::WebWidget", "Web widget", "widget"),
    Channel("Channel::Whatsapp", "WhatsApp", "whatsapp"),
    Channel("Channel::Telegram", "Telegram", "telegram"),
    Channel("Channel::Email", "E-mail", "email"),
    Channel("Channel::Sms", "SMS", "sms"),
]
BY_TYPE = {channel.type: channel for channel in CHANNELS}
WHATSAPP_LIST_BUTTON = "Choose an item"  # Chatwoot's I18n conversations.messages.whatsapp.list_button_label


def channel(type_: str) -> Channel:
    """The channel of that type; ValueError names the known ones."""
    try:
        return BY_TYPE[type_]
    except KeyError:
        raise ValueError(f"unknown channel {type_!r}; the playground knows "
                         f"{', '.join(c.type for c in CHANNELS)}") from None


def show(type_: str, message: dict[str, Any]) -> dict[str, Any]:
    """How the contact sees one message the bot sent (as Chatwoot stored it): `{"as": ..., ...}`.

    `as` is `text`, `buttons` (widget buttons, WhatsApp reply buttons, Telegram's keyboard, ...), `list`
    (WhatsApp's list behind a button), `cards`, `form`, `article` or `email_input` (the widget's own).
    """
    channel(type_)  # one of the page's channels
    rules = channels.channel(type_)
    content_type = message.get("content_type") or "text"
    attributes = message.get("content_attributes") or {}
    items = attributes.get("items") or []
    text = message.get("content") or ""
    if content_type == "input_select" and rules.menu is not None:
        if rules.key == "whatsapp" and len(items) > channels.WHATSAPP_BUTTONS:
            return {"as": "list", "text": text, "items": items, "button": WHATSAPP_LIST_BUTTON}
        return {"as": "buttons", "text": text, "items": items,
                "picked": [v.get("value") for v in attributes.get("submitted_values") or []]}
    if rules.rich and content_type in ("cards", "form", "article"):
        return {"as": content_type, "text": text, "items": items, "submitted": attributes.get("submitted_values") or []}
    if rules.rich and content_type == "input_email":
        return {"as": "email_input", "text": text, "submitted": attributes.get("submitted_email")}
    return {"as": "text", "text": text}  # text-only channels, and rich types outside the widget: the content


def answer(type_: str, item: dict[str, Any]) -> tuple[str, str]:
    """What a contact's tap on `item` turns into: ("choose", value) for the widget's `message_updated`, or
    ("send", text) for a new incoming message with that text (the title or the value, as the channel sends)."""
    how = channels.channel(type_).answer
    if how == "submitted":
        return "choose", str(item.get("value"))
    return "send", str(item.get("value") if how == "value" else item.get("title"))
