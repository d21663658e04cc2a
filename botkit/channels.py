"""Channels: how each Chatwoot inbox type shows the bot's messages, and `render`, which fits a message to it.

Chatwoot posts a bot's message to the provider as it is, checking no provider limit: an `input_select` of
four long titles is accepted with a 200, refused by WhatsApp, and comes back later as a failed message
(`app/services/whatsapp/providers/base_service.rb`, `app/models/concerns/content_attribute_validator.rb`).
So botkit renders each message for the conversation's channel before it posts it: the richest form the
provider accepts, else numbered text the contact can answer by typing a number or a title, with one warning
naming the limit that was passed. Text is never empty where a channel silently drops empty messages
(`app/models/channel/telegram.rb#send_message_on_telegram`, `app/services/facebook/send_on_facebook_service.rb`).

How a channel shows an `input_select` (`app/jobs/send_reply_job.rb` picks the sender):

| channel (`conversation.channel`) | menu | the contact's answer comes back as |
|---|---|---|
| Channel::WebWidget | buttons | `message_updated` of the bot's message, `submitted_values` |
| Channel::Api | passed on: the API client renders it | whatever the client posts |
| Channel::Whatsapp (Cloud, 360dialog) | <=3: reply buttons, else a list | a new message, the title (+ `in_reply_to`) |
| Channel::Telegram | inline keyboard, `callback_data` = value | a new message, the value |
| Channel::FacebookPage | quick replies, payload = title | a new message, the title |
| Channel::Line | a flex bubble of message buttons | a new message, the value |
| Channel::TwilioSms (SMS, WhatsApp), Sms (Bandwidth), Email, Instagram, Tiktok | text only | typed text |

An Instagram account connected through a Facebook page has a `Channel::FacebookPage` inbox, but its
conversations (`additional_attributes.type` = `instagram_direct_message`,
`app/builders/messages/instagram/messenger/message_builder.rb`) are sent by Instagram's sender, which posts
`content` alone (`app/jobs/send_reply_job.rb#send_on_facebook_page`,
`app/services/instagram/base_send_service.rb#message_params`): `kind_of` reads them as Channel::Instagram.

Telegram's `callback_data` is at most 64 bytes and never shown to the contact, so an option whose value is
longer goes out with a short key in its place (`key_of`), and `botkit.menus` maps the tap back to the value.

`cards`, `form`, `article` and `input_email` are shown only by the widget (and passed on by the API channel);
elsewhere Chatwoot sends `content` alone, so `render` writes their content, titles and links into the text.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

from botkit.text import fold

log = logging.getLogger("botkit.channels")

# What the bot puts above a menu sent with no text, where the channel needs a body (WhatsApp, Telegram, LINE,
# Facebook drop or refuse a menu without one).
DEFAULT_PROMPT = "Please choose:"


@dataclass(frozen=True)
class Channel:
    """One kind of inbox and its provider's limits on a menu (`None`: no such limit, or no menu at all)."""

    key: str  # short name: whatsapp, telegram, ...
    kind: str  # Chatwoot's class name, as in `conversation.channel`
    title: str
    menu: str | None  # how an input_select is shown: buttons, list, keyboard, quick_replies, flex, passed; None: text
    rich: bool = False  # cards, form, article, input_email shown (or passed on) as they are
    answer: str = "typed"  # how a pick comes back: submitted (widget), title, value, typed
    max_items: int | None = None
    max_title: int | None = None  # characters of an option's title
    max_value_bytes: int | None = None  # UTF-8 bytes of an option's value
    max_body: int | None = None  # characters of the text above a menu
    needs_body: bool = False  # a menu without text is refused or silently dropped
    distinct_titles: bool = False  # the answer is the title: two equal titles cannot be told apart
    needs_values: bool = False  # the answer is the value, which the provider needs non-empty
    hidden_values: bool = False  # the contact never sees the value: an over-long one can go as a short key
    reply_window_hours: int | None = None  # hours after the contact's last message the bot may reply
    limits: str = ""  # where the limits come from


WEB_WIDGET = Channel("web", "Channel::WebWidget", "web widget", "buttons", rich=True, answer="submitted")
API = Channel("api", "Channel::Api", "API inbox", "passed", rich=True, answer="submitted")
# WhatsApp Cloud and 360dialog: `create_payload_based_on_items` sends <=3 items as reply buttons, more as one
# list section. Meta: at most 3 buttons of 20 characters, at most 10 rows of 24, ids of 256/200 characters,
# a body of at most 1024 characters, unique titles.
WHATSAPP = Channel("whatsapp", "Channel::Whatsapp", "WhatsApp", "buttons", answer="title", max_items=10,
                   max_title=24, max_value_bytes=200, max_body=1024, needs_body=True, distinct_titles=True,
                   reply_window_hours=24, limits="Meta's interactive messages")
WHATSAPP_BUTTONS = 3
WHATSAPP_BUTTON_TITLE = 20
# Telegram: an inline keyboard, one button per row; callback_data is 1-64 bytes, text at most 4096. The tap
# comes back as a new message whose text is the callback_data (`app/services/telegram/param_helpers.rb`).
TELEGRAM = Channel("telegram", "Channel::Telegram", "Telegram", "keyboard", answer="value", max_value_bytes=64,
                   max_body=4096, needs_body=True, needs_values=True, hidden_values=True,
                   limits="Telegram's Bot API")
# Facebook Messenger: quick replies, payload = title; at most 13, of 20 characters; text of 2000.
FACEBOOK = Channel("facebook", "Channel::FacebookPage", "Facebook Messenger", "quick_replies", answer="title",
                   max_items=13, max_title=20, max_body=2000, needs_body=True, distinct_titles=True,
                   reply_window_hours=24, limits="Messenger's quick replies")
# LINE: a flex bubble, a button per item with a message action (label <= 20 characters, text = value,
# 1-300 characters); altText = content, 1-400 characters.
LINE = Channel("line", "Channel::Line", "LINE", "flex", answer="value", max_title=20, max_value_bytes=300,
               max_body=400, needs_body=True, needs_values=True, limits="LINE's message action")
TWILIO = Channel("twilio", "Channel::TwilioSms", "Twilio (SMS or WhatsApp)", None, reply_window_hours=None)
SMS = Channel("sms", "Channel::Sms", "SMS (Bandwidth)", None)
EMAIL = Channel("email", "Channel::Email", "e-mail", None)
INSTAGRAM = Channel("instagram", "Channel::Instagram", "Instagram", None, reply_window_hours=24)
TIKTOK = Channel("tiktok", "Channel::Tiktok", "TikTok", None, reply_window_hours=48)

CHANNELS: tuple[Channel, ...] = (WEB_WIDGET, API, WHATSAPP, TELEGRAM, FACEBOOK, LINE, TWILIO, SMS, EMAIL,
                                 INSTAGRAM, TIKTOK)
_BY_NAME = {name.casefold(): c for c in CHANNELS for name in (c.key, c.kind)}
_BY_NAME.update({"widget": WEB_WIDGET, "webwidget": WEB_WIDGET, "twiliosms": TWILIO, "bandwidth": SMS,
                 "messenger": FACEBOOK, "facebookpage": FACEBOOK, "whatsapp_cloud": WHATSAPP,
                 "360dialog": WHATSAPP})
# A channel botkit does not know yet is written to as text: text reaches every channel.
UNKNOWN = Channel("unknown", "", "an unknown channel", None)


INSTAGRAM_DIRECT = "instagram_direct_message"  # conversation.additional_attributes.type of an Instagram chat


def kind_of(conversation: Any) -> str | None:
    """The channel class that really carries `conversation`'s messages (an `events.Conversation`, or None):
    its `channel`, except Channel::Instagram for an Instagram chat on a Facebook page inbox."""
    if conversation is None:
        return None
    kind = conversation.channel
    if kind == FACEBOOK.kind and (conversation.additional_attributes or {}).get("type") == INSTAGRAM_DIRECT:
        return INSTAGRAM.kind
    return kind


def channel(name: str | None) -> Channel:
    """The channel for a `conversation.channel` class name (`Channel::Whatsapp`) or a short name (`whatsapp`).

    None (a payload without the key, as in the public guide's example) is the web widget; a name botkit does
    not know gets text only."""
    if name is None:
        return WEB_WIDGET
    found = _BY_NAME.get(name.casefold()) or _BY_NAME.get(name.casefold().removeprefix("channel::"))
    return found or UNKNOWN


@dataclass
class Rendered:
    """What to post for one message on one channel.

    `payload` has `content`, `content_type` and `content_attributes` (None for text). `form` says how the
    contact sees it: text, numbered (a menu as numbered text), buttons, list, keyboard, quick_replies, flex,
    native (the widget), passed (the API channel). `options` are the menu's `{title, value}` items (for
    matching the answer), with `key` where the payload carries that short key instead of an over-long value;
    `limit` names the limit that made a menu numbered text, if one did."""

    payload: dict[str, Any]
    form: str
    options: list[dict[str, str]] = field(default_factory=list)
    limit: str | None = None
    numbered: str = ""  # the message as numbered text: what a failed rich message is sent again as

    @property
    def is_menu(self) -> bool:
        return bool(self.options)


def render(message: Any, on: Channel | str | None, *, hint: str | None = None,
           prompt: str = DEFAULT_PROMPT) -> Rendered:
    """Fit a message (text, or a `botkit.rich` message or its `to_payload()` dict) to a channel.

    Returns the best form the channel's provider accepts: for an `input_select`, its buttons, list, keyboard,
    quick replies or flex bubble within the provider's limits, else numbered text (logged once, naming the
    limit) ending with `hint` (how to answer); other rich types outside the widget become text keeping their
    titles and links. A menu with no text gets `prompt` where the channel needs a body. Pure: no I/O.
    An empty text stays empty (the caller refuses to send it)."""
    target = on if isinstance(on, Channel) else channel(on)
    payload = _payload(message)
    kind = payload["content_type"]
    if kind == "text":
        return Rendered(payload, "text")
    options = _options(payload) if kind == "input_select" else []
    if options and target.hidden_values and target.max_value_bytes is not None:
        options = [_keyed(o, target.max_value_bytes) for o in options]
    numbered = numbered_text(payload, hint=hint if options else None)
    if target.rich or (kind == "input_select" and target.menu == "passed"):
        form = "passed" if target.menu == "passed" else "native"
        return Rendered(payload, form, options, numbered=numbered)
    if kind != "input_select" or target.menu is None:
        return Rendered(_text(numbered), "numbered" if options else "text", options, numbered=numbered)
    limit = _passed_limit(options, payload.get("content") or "", target)
    if limit is not None:
        log.warning("the menu is sent as numbered text on %s: %s", target.title, limit)
        return Rendered(_text(numbered), "numbered", options, limit=limit, numbered=numbered)
    content = payload.get("content") or ""
    if not content.strip():
        content = prompt  # a menu needs a body here; the items stay as they are
    form = target.menu
    if target is WHATSAPP and len(options) > WHATSAPP_BUTTONS:
        form = "list"
    items = [{"title": o["title"], "value": o.get("key", o["value"])} for o in options]
    menu = {"content": content, "content_type": "input_select", "content_attributes": {"items": items}}
    return Rendered(menu, form, options, numbered=numbered)


def _payload(message: Any) -> dict[str, Any]:
    if isinstance(message, str):
        return {"content": message, "content_type": "text", "content_attributes": None}
    payload = dict(message if isinstance(message, dict) else message.to_payload())
    payload.setdefault("content_type", "text")
    payload.setdefault("content_attributes", None)
    return payload


def _text(content: str) -> dict[str, Any]:
    return {"content": content, "content_type": "text", "content_attributes": None}


def _options(payload: dict[str, Any]) -> list[dict[str, str]]:
    items = (payload.get("content_attributes") or {}).get("items") or []
    return [{"title": str(i.get("title") or ""), "value": str(i.get("value") or "")} for i in items
            if isinstance(i, dict)]


def key_of(value: str) -> str:
    """The short key sent in place of an option's value too long for the channel: `bk-` and 20 hex digits of
    the value's SHA-256 (23 bytes), the same for the same value, so a retried reply posts the same menu."""
    return "bk-" + hashlib.sha256(value.encode()).hexdigest()[:20]


def _keyed(option: dict[str, str], max_bytes: int) -> dict[str, str]:
    if len(option["value"].encode()) <= max_bytes:
        return option
    return {**option, "key": key_of(option["value"])}


def _passed_limit(options: list[dict[str, str]], content: str, target: Channel) -> str | None:
    """The first limit of `target` this menu passes, as a sentence naming it; None when it fits."""
    where = f" ({target.limits})" if target.limits else ""
    if target is WHATSAPP:
        if len(options) <= WHATSAPP_BUTTONS:
            longest = max(len(o["title"]) for o in options)
            if longest > WHATSAPP_BUTTON_TITLE:
                return (f"a reply button's title is at most {WHATSAPP_BUTTON_TITLE} characters, "
                        f"and one has {longest}{where}")
    if target.max_items is not None and len(options) > target.max_items:
        return f"at most {target.max_items} options, and the menu has {len(options)}{where}"
    if target.max_title is not None:
        longest = max(len(o["title"]) for o in options)
        if longest > target.max_title:
            return f"an option's title is at most {target.max_title} characters, and one has {longest}{where}"
    if target.max_value_bytes is not None:
        biggest = max(len(o.get("key", o["value"]).encode()) for o in options)
        if biggest > target.max_value_bytes:
            return f"an option's value is at most {target.max_value_bytes} bytes, and one has {biggest}{where}"
    if target.needs_values and any(not o["value"] for o in options):
        return f"every option needs a value{where}"
    if target.distinct_titles:
        titles = [fold_title(o["title"]) for o in options]
        if len(set(titles)) < len(titles):
            return f"the answer is the option's title, and two titles are the same{where}"
    if target.max_body is not None and len(content) > target.max_body:
        return f"the text above a menu is at most {target.max_body} characters, and it has {len(content)}{where}"
    return None


def fold_title(text: str) -> str:
    """Titles compared as a contact's answer is: case, accents and surrounding spaces ignored."""
    return fold(text).strip()


def numbered_text(payload: dict[str, Any], hint: str | None = None) -> str:
    """A rich message as plain text: its text, then one numbered line per item, links and descriptions kept,
    then `hint` (how to answer, in the contact's language) when given.

    input_select: `1. Track my order`; cards: the title, description and each action (`Open: https://...`);
    article: the title and its link; form: each field's label. The result is never empty for a valid rich
    message (each has at least one titled item)."""
    kind = payload.get("content_type") or "text"
    lines = [payload.get("content") or ""]
    items = (payload.get("content_attributes") or {}).get("items") or []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            continue
        title = str(item.get("title") or item.get("label") or item.get("name") or "")
        line = f"{number}. {title}"
        if item.get("description"):
            line += f": {item['description']}"
        if kind == "article" and item.get("link"):
            line += f" {item['link']}"
        lines.append(line)
        if kind == "cards":
            if item.get("media_url"):
                lines.append(f"   {item['media_url']}")
            for action in item.get("actions") or []:
                if isinstance(action, dict) and action.get("type") == "link" and action.get("uri"):
                    lines.append(f"   {action.get('text') or 'Link'}: {action['uri']}")
    if hint and len(lines) > 1:
        lines.append(hint)
    return "\n".join(line for line in lines if line)
