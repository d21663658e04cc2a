"""Real-shape Chatwoot deliveries for tests, built from the templates in `payloads/` (Chatwoot's own shape).

Every factory takes the ids that matter as keywords and any other top-level field as an override:

    contact_message("I need billing help", conversation_id=7)
    bot_echo("How can I help?")                 # the bot's own reply, as Chatwoot sends it back
    answer("track_order", message_id=9812)      # the contact picked an input_select option
    contact_message("oi", browser_language="pt-BR")               # a widget contact whose browser is Portuguese
    contact_message("", attachments=[image("http://127.0.0.1:3000/rails/active_storage/.../parcel.jpg")])
    message("hello", channel="whatsapp")        # a contact's message as it arrives from that channel
    tap(option, menu_id=9812, channel="telegram")  # the contact's pick, as that channel delivers it
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
             conversation_attributes: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    body = template(name)
    message_id = message_id if message_id is not None else next(_ids)
    body.update(id=message_id, content=content, message_type=message_type, private=private, sender=sender)
    channel = class_name(channel)
    _conversation(body, body["conversation"], account_id=account_id, conversation_id=conversation_id,
                  inbox_id=inbox_id, status=status, channel=channel, can_reply=can_reply,
                  assignee_type=assignee_type)
    if channel is not None and channel != "Channel::WebWidget":
        _channel_shape(body, channel, incoming=message_type == "incoming")
    body["inbox"]["id"] = inbox_id
    last = body["conversation"]["messages"][0]
    if not private:  # conversation.messages[] holds the last public message, with an integer type
        last.update(id=message_id, content=content, message_type=_TYPES[message_type])
    if conversation_attributes:  # e.g. {"type": "instagram_direct_message"}: Instagram through a Facebook page
        body["conversation"]["additional_attributes"].update(conversation_attributes)
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


def class_name(channel: str | None) -> str | None:
    """`whatsapp` -> `Channel::Whatsapp` (class names pass through)."""
    if channel is None or channel.startswith("Channel::"):
        return channel
    from botkit.channels import channel as find

    found = find(channel)
    if not found.kind:
        raise ValueError(f"no channel named {channel!r}; use one of botkit.channels.CHANNELS' keys")
    return found.kind


# How each channel's deliveries differ from the widget's (the message's and the contact's source ids, the
# conversation's additional attributes): ids are invented, the shapes follow each channel's incoming service.
_SHAPES: dict[str, dict[str, Any]] = {
    "Channel::Whatsapp": {"inbox": "WhatsApp", "contact": "15550100", "message": "wamid.HBgLMTU1NTAxMDAVAgASGBQz{n}",
                          "phone": "+15550100", "conversation": {}},
    "Channel::Telegram": {"inbox": "Telegram", "contact": "702514421", "message": "{n}", "phone": None,
                          "conversation": {"chat_id": 702514421}},
    "Channel::FacebookPage": {"inbox": "Messenger", "contact": "6782301045192837", "message": "m_{n}AbCdEf",
                              "phone": None, "conversation": {}},
    "Channel::Instagram": {"inbox": "Instagram", "contact": "17841400000000000",
                           "message": "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlE{n}", "phone": None, "conversation": {}},
    "Channel::Line": {"inbox": "LINE", "contact": "U4af4980629a1b2c3d4e5f60718293a4b", "message": "5047{n}",
                      "phone": None, "conversation": {}},
    "Channel::TwilioSms": {"inbox": "Twilio", "contact": "+15550100", "message": "SM{n}a1b2c3d4e5f6a7b8c9d0e1f2a3b4",
                           "phone": "+15550100", "conversation": {}},
    "Channel::Sms": {"inbox": "SMS", "contact": "+15550100", "message": "{n}-bw", "phone": "+15550100",
                     "conversation": {}},
    "Channel::Email": {"inbox": "Support mail", "contact": "jane@example.com",
                       "message": "<CAF{n}@mail.example.com>", "phone": None,
                       "conversation": {"mail_subject": "Re: my order", "source": "email", "in_reply_to": None}},
    "Channel::Tiktok": {"inbox": "TikTok", "contact": "tt-0001", "message": "tt-msg-{n}", "phone": None,
                        "conversation": {}},
    "Channel::Api": {"inbox": "App", "contact": "app-user-0001", "message": None, "phone": None, "conversation": {}},
}


def _channel_shape(body: dict[str, Any], channel: str, *, incoming: bool) -> None:
    shape = _SHAPES.get(channel)
    if shape is None:
        return
    conversation = body["conversation"]
    conversation["additional_attributes"] = dict(shape["conversation"])
    conversation["contact_inbox"]["source_id"] = shape["contact"]
    body["inbox"]["name"] = shape["inbox"]
    for contact in (body.get("sender"), conversation["meta"].get("sender")):
        if isinstance(contact, dict) and contact.get("type") in (None, "contact") and shape["phone"]:
            contact["phone_number"] = shape["phone"]
    if incoming and shape["message"]:
        body["source_id"] = shape["message"].format(n=body["id"])
    last = conversation["messages"][0]
    last["source_id"] = body.get("source_id")
    last["conversation"]["contact_inbox"]["source_id"] = shape["contact"]
    if channel == "Channel::Email" and incoming:
        _email(body)


def _email(body: dict[str, Any]) -> None:
    """An e-mail: `content` is the reply with its quoted thread, `content_attributes.email` the whole mail
    (app/presenters/mail_presenter.rb#serialized_data), repeated in `conversation.messages[0]`."""
    text = body.get("content") or ""
    html = "<div>" + text.replace("\n", "<br>") + "</div>"
    email = {"bcc": None, "cc": None, "content_type": "multipart/alternative", "date": "2026-06-17T10:15:42+00:00",
             "from": ["jane@example.com"], "headers": {}, "html_content": {"full": html, "reply": html, "quoted": ""},
             "in_reply_to": None, "message_id": body["source_id"].strip("<>"), "multipart": True,
             "number_of_attachments": 0, "references": [], "subject": "Re: my order",
             "text_content": {"full": text, "reply": text, "quoted": ""}, "to": ["support@acme.example"],
             "auto_reply": False}
    body["content_type"] = "incoming_email"
    body["content_attributes"] = {"email": email, "cc_email": None, "bcc_email": None}
    last = body["conversation"]["messages"][0]
    last.update(content_type="incoming_email", content_attributes=copy.deepcopy(body["content_attributes"]),
                processed_message_content=text)


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


def message(content: str, *, channel: str | None = None, **ids: Any) -> dict[str, Any]:
    """The contact wrote `content` on `channel` (a short name such as whatsapp, telegram, email, or a
    `Channel::...` class name): the delivery as Chatwoot builds it for that channel's inbox."""
    return contact_message(content, channel=channel, **ids)


def tap(option: dict[str, str], *, menu_id: int, channel: str | None, number: int | None = None,
        options: list[dict[str, str]] | None = None, **ids: Any) -> dict[str, Any]:
    """The contact picked `option` ({title, value}) of the bot's menu `menu_id`, delivered as `channel` does:
    the widget and the API channel update the bot's message (`submitted_values`); WhatsApp sends the title
    as a new message with `in_reply_to`, Facebook the title, Telegram and LINE the value; on text-only
    channels the contact types `number` (or the title when no number is given)."""
    from botkit.channels import channel as find

    kind = find(channel)
    if kind.answer == "submitted":
        return answer(option["value"], message_id=menu_id, options=options or [option], channel=channel, **ids)
    if kind.answer == "title":
        body = message(option["title"], channel=channel, **ids)
        if kind.key == "whatsapp":
            body["content_attributes"] = {"in_reply_to_external_id": f"wamid.menu{menu_id}", "in_reply_to": menu_id}
        return body
    if kind.answer == "value":
        body = message(option["value"], channel=channel, **ids)
        if kind.key == "telegram":
            body["source_id"] = f"49103582{menu_id}"  # callback_query.id
        return body
    return message(str(number) if number is not None else option["title"], channel=channel, **ids)


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


def email_collected(email: str, *, message_id: int | None = None, **ids: Any) -> dict[str, Any]:
    """The contact gave `email` in Chatwoot's own e-mail-collect template message (`input_email`,
    sender null): message_updated with `submitted_email` (app/services/message_templates/template/email_collect.rb)."""
    body = _message("message_updated", "Get notified by email", message_type="template", sender=None,
                    message_id=message_id, **ids)
    body.update(content_type="input_email", content_attributes={"submitted_email": email})
    return body


def csat_survey(*, channel: str | None = None, **ids: Any) -> dict[str, Any]:
    """Chatwoot's CSAT survey: a `template` `input_csat` message, or on WhatsApp an `outgoing` one with no
    sender, sent through an approved template (app/services/csat_survey_service.rb)."""
    kind = "outgoing" if class_name(channel) in ("Channel::Whatsapp", "Channel::TwilioSms") else "template"
    content = "Please rate the conversation https://chat.example.com/survey/responses/5f1e9a7c"
    ids.setdefault("status", "resolved")
    body = _message("message_created", content, message_type=kind, sender=None, channel=channel, **ids)
    body.update(content_type="input_csat", content_attributes={"display_type": "emoji"})
    if kind == "outgoing":
        body["source_id"] = "wamid.csat0001"
    return body


def csat_answer(rating: int, feedback: str = "", *, message_id: int | None = None, **ids: Any) -> dict[str, Any]:
    """The contact rated the conversation: message_updated of the CSAT template whose `submitted_values` is an
    object, not a list (app/controllers/public/api/v1/csat_survey_controller.rb)."""
    ids.setdefault("status", "resolved")
    body = _message("message_updated", "Please rate the conversation", message_type="template", sender=None,
                    message_id=message_id, **ids)
    body.update(content_type="input_csat", content_attributes={
        "display_type": "emoji",
        "submitted_values": {"csat_survey_response": {"rating": rating, "feedback_message": feedback}}})
    return body


def delivery_failed(message_id: int, error: str, *, content: str = "", content_type: str = "text",
                    content_attributes: dict[str, Any] | None = None, **ids: Any) -> dict[str, Any]:
    """The channel refused the bot's message `message_id`: message_updated of it with
    `content_attributes.external_error` and no top-level status (app/services/messages/status_update_service.rb)."""
    body = _message("message_updated", content, message_type="outgoing",
                    sender={"id": 1, "name": "botkit", "type": "agent_bot"}, message_id=message_id, **ids)
    body["content_type"] = content_type
    body["content_attributes"] = {**(content_attributes or {}), "external_error": error}
    body["conversation"]["messages"][0]["status"] = "failed"
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
                       changed_attributes: list[dict[str, Any]] | None = None,
                       conversation_attributes: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    """conversation_opened / _resolved / _status_changed / _updated for the given status."""
    name = event if event in ("conversation_opened", "conversation_resolved", "conversation_status_changed",
                              "conversation_updated") else "conversation_updated"
    body = template(name)
    body["event"] = event
    _conversation(body, body, account_id=account_id, conversation_id=conversation_id, inbox_id=inbox_id,
                  status=status, channel=channel, can_reply=True, assignee_type=assignee_type)
    body["updated_at"] = body["updated_at"] + next(_ids) / 1e6  # each change is its own event
    if conversation_attributes:
        body["additional_attributes"] = {**(body.get("additional_attributes") or {}), **conversation_attributes}
    if changed_attributes is not None:
        body["changed_attributes"] = changed_attributes
    body.update(overrides)
    return body
