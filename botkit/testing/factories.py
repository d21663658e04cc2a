"""Real-shape Chatwoot deliveries for tests, built from the templates in `payloads/` (Chatwoot's own shape).

Every factory takes the ids that matter as keywords and any other top-level field as an override:

    contact_message("I need billing help", conversation_id=7)
    bot_echo("How can I help?")                 # the bot's own reply, as Chatwoot sends it back
    answer("track_order", message_id=9812)      # the contact picked an input_select option
    contact_message("oi", browser_language="pt-BR")               # a widget contact whose browser is Portuguese
    contact_message("", attachments=[image("http://127.0.0.1:3000/rails/active_storage/.../parcel.jpg")])
"""

from __future__ import annotations

import copy
import itertools
import json
from functools import cache
from pathlib import Path
from typing import Any

PAYLOADS = Path(__file__).parent / "payloads"
_ids = itertools.count(100_000)


@cache
def _template(name: str) -> str:
    return (PAYLOADS / f"{name}.json").read_text()


def template(name: str) -> dict[str, Any]:
    """A fresh copy of one of Chatwoot's real-shape payloads, e.g. template("message_created")."""
    return json.loads(_template(name))


def _conversation(body: dict[str, Any], conversation: dict[str, Any], *, account_id: int, conversation_id: int,
                  inbox_id: int, status: str, channel: str | None, can_reply: bool,
                  assignee_type: str | None) -> None:
    conversation["id"] = conversation_id
    conversation["inbox_id"] = inbox_id
    conversation["status"] = status
    conversation["can_reply"] = can_reply
    conversation["meta"]["assignee_type"] = assignee_type
    if channel is not None:
        conversation["channel"] = channel
    conversation["account"]["id"] = account_id
    for message in conversation.get("messages", []):
        message["conversation_id"] = conversation_id
        message["account_id"] = account_id
        message["inbox_id"] = inbox_id
    body["account"]["id"] = account_id


def _message(name: str, content: str | None, *, message_type: str, sender: dict[str, Any] | None,
             private: bool = False, message_id: int | None = None, account_id: int = 1,
             conversation_id: int = 128, inbox_id: int = 1, status: str = "pending", channel: str | None = None,
             can_reply: bool = True, assignee_type: str | None = None, browser_language: str | None = None,
             contact_attributes: dict[str, Any] | None = None, attachments: list[dict[str, Any]] | None = None,
             **overrides: Any) -> dict[str, Any]:
    body = template(name)
    message_id = message_id if message_id is not None else next(_ids)
    body.update(id=message_id, content=content, message_type=message_type, private=private, sender=sender)
    _conversation(body, body["conversation"], account_id=account_id, conversation_id=conversation_id,
                  inbox_id=inbox_id, status=status, channel=channel, can_reply=can_reply,
                  assignee_type=assignee_type)
    body["inbox"]["id"] = inbox_id
    last = body["conversation"]["messages"][0]
    if not private:  # conversation.messages[] holds the last public message, with an integer type
        last.update(id=message_id, content=content, message_type=_TYPES[message_type])
    if browser_language is not None:  # the widget's Accept-Language (api/v1/widget/base_controller.rb)
        body["conversation"]["additional_attributes"]["browser_language"] = browser_language
    if contact_attributes is not None and sender is not None:  # the contact's custom attributes
        for who in (sender, body["conversation"]["meta"]["sender"]):
            who["custom_attributes"] = {**who.get("custom_attributes", {}), **contact_attributes}
    if attachments:
        for number, attachment in enumerate(attachments):
            attachment.setdefault("id", message_id * 10 + number)
            attachment.update(message_id=message_id, account_id=account_id)
        body["attachments"] = attachments
        if not private:
            last["attachments"] = copy.deepcopy(attachments)
    body.update(overrides)
    return body


_TYPES = {"incoming": 0, "outgoing": 1, "activity": 2, "template": 3}


def _contact() -> dict[str, Any]:
    return copy.deepcopy(template("message_created")["sender"])  # a contact has no `type` key


def contact_message(content: str, **ids: Any) -> dict[str, Any]:
    """The contact wrote `content` (message_created, incoming, public)."""
    return _message("message_created", content, message_type="incoming", sender=_contact(), **ids)


def attachment(file_type: str, data_url: str, *, extension: str | None = None, file_size: int = 0,
               width: int | None = None, height: int | None = None) -> dict[str, Any]:
    """One element of a message's `attachments`, as `app/models/attachment.rb#push_event_data` builds it:
    `{id, message_id, file_type, account_id, extension, data_url, thumb_url, file_size, width, height}`
    (`id`, `message_id` and `account_id` are filled in by the message factory). `file_type` is image, audio,
    video or file; `thumb_url` is empty for what Active Storage cannot preview."""
    return {"file_type": file_type, "extension": extension, "data_url": data_url,
            "thumb_url": data_url if file_type == "image" else "", "file_size": file_size,
            "width": width, "height": height}


def image(data_url: str, *, file_size: int = 48_213, width: int = 1280, height: int = 960) -> dict[str, Any]:
    """A photo the contact sent (WhatsApp, the widget, ...)."""
    return attachment("image", data_url, file_size=file_size, width=width, height=height)


def audio(data_url: str, *, file_size: int = 9_870) -> dict[str, Any]:
    """A voice note (WhatsApp sends audio/ogg; Chatwoot's `file_type` is audio)."""
    return attachment("audio", data_url, file_size=file_size)


def file(data_url: str, *, file_size: int = 120_400) -> dict[str, Any]:
    """A document (a PDF, a spreadsheet, ...): `file_type` file."""
    return attachment("file", data_url, file_size=file_size)


def bot_echo(content: str, **ids: Any) -> dict[str, Any]:
    """The bot's own reply, which Chatwoot delivers back to the bot."""
    sender = {"id": 1, "name": "botkit", "avatar_url": "", "type": "agent_bot"}
    return _message("message_created", content, message_type="outgoing", sender=sender, **ids)


def agent_reply(content: str, **ids: Any) -> dict[str, Any]:
    sender = {"id": 7, "name": "Alex Agent", "email": "alex@example.com", "type": "user"}
    return _message("message_created", content, message_type="outgoing", sender=sender, **ids)


def private_note(content: str, *, sender: dict[str, Any] | None = None, **ids: Any) -> dict[str, Any]:
    """An agent's private note (outgoing, private, the sender a user): agents' commands come this way."""
    sender = sender or {"id": 7, "name": "Alex Agent", "email": "alex@example.com", "type": "user"}
    return _message("message_created", content, message_type="outgoing", sender=sender, private=True, **ids)


def template_message(content: str, **ids: Any) -> dict[str, Any]:
    return _message("message_created", content, message_type="template", sender=None, **ids)


def answer(*values: str, message_id: int, options: list[dict[str, str]] | None = None, content: str = "",
           **ids: Any) -> dict[str, Any]:
    """The contact picked `values` in the bot's input_select: message_updated on the bot's own message."""
    items = options or [{"title": v, "value": v} for v in values]
    chosen = [i for i in items if i["value"] in values] or [{"title": v, "value": v} for v in values]
    body = _message("message_updated", content, message_type="outgoing",
                    sender={"id": 1, "name": "botkit", "type": "agent_bot"}, message_id=message_id, **ids)
    body.update(content_type="input_select", content_attributes={"items": items, "submitted_values": chosen})
    return body


def status_update(message_id: int, content: str = "", **ids: Any) -> dict[str, Any]:
    """A delivery-status change of the bot's own message: message_updated with no answer in it."""
    body = _message("message_updated", content, message_type="outgoing",
                    sender={"id": 1, "name": "botkit", "type": "agent_bot"}, message_id=message_id, **ids)
    body["content_attributes"] = {}
    body["content_type"] = "text"
    return body


def conversation_event(event: str, *, status: str, account_id: int = 1, conversation_id: int = 128,
                       inbox_id: int = 1, channel: str | None = None, assignee_type: str | None = None,
                       changed_attributes: list[dict[str, Any]] | None = None, **overrides: Any) -> dict[str, Any]:
    """conversation_opened / _resolved / _status_changed / _updated for the given status."""
    name = event if event in ("conversation_opened", "conversation_resolved", "conversation_status_changed",
                              "conversation_updated") else "conversation_updated"
    body = template(name)
    body["event"] = event
    _conversation(body, body, account_id=account_id, conversation_id=conversation_id, inbox_id=inbox_id,
                  status=status, channel=channel, can_reply=True, assignee_type=assignee_type)
    body["updated_at"] = body["updated_at"] + next(_ids) / 1e6  # each change is its own event
    if changed_attributes is not None:
        body["changed_attributes"] = changed_attributes
    body.update(overrides)
    return body
