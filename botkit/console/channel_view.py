"""What a contact on each channel sees of a bot's message, and how their answer comes back to the bot.

This is the playground's seam for the channel rules of `botkit.channels` (issue 16): the bot itself already
degrades what a channel cannot show (botkit/context.py sends numbered text there), and this module says how
the provider then shows what Chatwoot sends, and what a tap turns into. From Chatwoot v4.15.1:

- Web widget: every rich type natively; a pick comes back as `message_updated` with `submitted_values` on the
  bot's own message (`app/javascript/widget/components/AgentMessageBubble.vue#onOptionSelect`); a card's
  `postback` only posts to the host page, nothing reaches the server (`shared/components/CardButton.vue`).
- WhatsApp Cloud: an `input_select` of at most 3 items is reply buttons, more is a list behind the button
  "Choose an item" (`app/services/whatsapp/providers/base_service.rb#create_payload_based_on_items`); a tap is a
  new incoming message whose content is the item's **title**
  (`app/services/whatsapp/incoming_message_service_helpers.rb#message_content`).
- Telegram: an inline keyboard, one button per row (`app/models/channel/telegram.rb#reply_markup`); a tap is a
  new incoming message whose content is the item's **value** (`app/services/telegram/param_helpers.rb`).
- E-mail and SMS: the text of `content` only (`app/builders/messages/message_builder.rb`,
  `app/models/channel/sms.rb#send_message`); the contact answers by writing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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

    `as` is `text`, `buttons` (WhatsApp reply buttons, Telegram inline keyboard, widget input_select), `list`
    (WhatsApp's list behind a button), `cards`, `form`, `article` or `email_input` (the widget's own).
    """
    look = channel(type_).look
    content_type = message.get("content_type") or "text"
    attributes = message.get("content_attributes") or {}
    items = attributes.get("items") or []
    text = message.get("content") or ""
    if look == "widget":
        if content_type == "input_select":
            return {"as": "buttons", "text": text, "items": items,
                    "picked": [v.get("value") for v in attributes.get("submitted_values") or []]}
        if content_type in ("cards", "form", "article"):
            return {"as": content_type, "text": text, "items": items,
                    "submitted": attributes.get("submitted_values") or []}
        if content_type == "input_email":
            return {"as": "email_input", "text": text, "submitted": attributes.get("submitted_email")}
        return {"as": "text", "text": text}
    if content_type == "input_select" and look == "whatsapp":
        kind = "buttons" if len(items) <= 3 else "list"
        return {"as": kind, "text": text, "items": items, "button": WHATSAPP_LIST_BUTTON}
    if content_type == "input_select" and look == "telegram":
        return {"as": "buttons", "text": text, "items": items}
    return {"as": "text", "text": text}  # e-mail, SMS, and rich types outside the widget: the content only


def answer(type_: str, item: dict[str, Any]) -> tuple[str, str]:
    """What a contact's tap on `item` turns into: ("choose", value) for the widget's `message_updated`, or
    ("send", text) for a new incoming message with that text."""
    look = channel(type_).look
    if look == "widget":
        return "choose", str(item.get("value"))
    if look == "whatsapp":
        return "send", str(item.get("title"))
    return "send", str(item.get("value"))
