"""What each channel's provider does with a message Chatwoot posts to it, for the fake Chatwoot.

Chatwoot accepts any message with a 200 and sends it afterwards (`app/jobs/send_reply_job.rb`); the provider
refuses what passes its limits, and Chatwoot marks the message failed with the provider's error in
`content_attributes.external_error` (`app/services/whatsapp/providers/base_service.rb#handle_error`,
`app/models/channel/telegram.rb#process_error`, `app/services/facebook/send_on_facebook_service.rb`,
`app/services/line/send_on_line_service.rb`, `app/services/twilio/send_on_twilio_service.rb`). Some empty
messages are never sent at all and fail nowhere (Telegram and Facebook skip empty text; WhatsApp only logs a
blank text). The limits here are the providers' own, written apart from `botkit.channels` on purpose: the
fake must catch what botkit gets wrong, not agree with it.
"""

from __future__ import annotations

from typing import Any

SENT = "sent"
DROPPED = "dropped"  # never sent and never failed: the contact sees nothing and nobody is told

WINDOW_ERRORS = {
    "Channel::Whatsapp": "Template not found or invalid template name",
    "Channel::FacebookPage": "10 - (#10) This message is sent outside of allowed window.",
    "Channel::Instagram": "10 - (#10) This message is sent outside of allowed window.",
    "Channel::TwilioSms": "63016 - Failed to send freeform message because you are outside the allowed window.",
    "Channel::Tiktok": "Message cannot be sent outside the 48-hour window",
}


def send(channel: str, message: dict[str, Any], *, can_reply: bool = True) -> tuple[str, str | None]:
    """(outcome, external_error): outcome is `sent`, `dropped` or `failed`."""
    if not can_reply and channel in WINDOW_ERRORS:
        return "failed", WINDOW_ERRORS[channel]
    content = message.get("content") or ""
    items = (message.get("content_attributes") or {}).get("items") or []
    menu = message.get("content_type") == "input_select"
    check = _CHECKS.get(channel)
    if check is None:
        return SENT, None
    return check(content, items if menu else None)


def _whatsapp(content: str, items: list[dict[str, Any]] | None) -> tuple[str, str | None]:
    if items is None:
        if not content.strip():
            return DROPPED, None  # "a blank text is only logged, and the message stays sent"
        if len(content) > 4096:
            return "failed", "(#100) Param text['body'] must be at most 4096 characters long."
        return SENT, None
    invalid = "(#131009) Parameter value is not valid"
    if not content.strip():
        return "failed", "(#131008) Required parameter is missing"
    if len(content) > 1024:
        return "failed", invalid
    titles = [str(i.get("title") or "") for i in items]
    if len(set(titles)) < len(titles):
        return "failed", invalid
    if len(items) <= 3:  # reply buttons
        if any(len(t) > 20 for t in titles) or any(len(str(i.get("value") or "")) > 256 for i in items):
            return "failed", invalid
        return SENT, None
    if len(items) > 10 or any(len(t) > 24 for t in titles) or any(len(str(i.get("value") or "")) > 200
                                                                   for i in items):
        return "failed", invalid
    return SENT, None


def _telegram(content: str, items: list[dict[str, Any]] | None) -> tuple[str, str | None]:
    if not content.strip():
        return DROPPED, None  # send_message_on_telegram sends only if outgoing_content.present?
    if items is not None and any(not 1 <= len(str(i.get("value") or "").encode()) <= 64 for i in items):
        return "failed", "400, Bad Request: BUTTON_DATA_INVALID"
    return SENT, None


def _facebook(content: str, items: list[dict[str, Any]] | None) -> tuple[str, str | None]:
    if not content.strip():
        return DROPPED, None  # the text part is sent only if message.content.present?
    if items is not None and (len(items) > 13 or any(len(str(i.get("title") or "")) > 20 for i in items)):
        return "failed", "100 - (#100) Invalid parameter"
    return SENT, None


def _line(content: str, items: list[dict[str, Any]] | None) -> tuple[str, str | None]:
    if items is None:
        return (DROPPED, None) if not content.strip() else (SENT, None)
    prefix = "The request body has 1 error(s), property: "
    if not 1 <= len(content) <= 400:
        return "failed", prefix + "messages[0].altText: Length must be between 1 and 400"
    for n, item in enumerate(items):
        if len(str(item.get("title") or "")) > 20:
            return "failed", prefix + f"messages[0].contents.body.contents[{n + 1}].action.label: size must be " \
                                      "between 0 and 20"
        if not 1 <= len(str(item.get("value") or "")) <= 300:
            return "failed", prefix + f"messages[0].contents.body.contents[{n + 1}].action.text: size must be " \
                                      "between 1 and 300"
    return SENT, None


def _text_only(content: str, items: list[dict[str, Any]] | None) -> tuple[str, str | None]:
    return (DROPPED, None) if not content.strip() else (SENT, None)


_CHECKS = {
    "Channel::Whatsapp": _whatsapp,
    "Channel::Telegram": _telegram,
    "Channel::FacebookPage": _facebook,
    "Channel::Line": _line,
    "Channel::Instagram": _text_only,
    "Channel::TwilioSms": _text_only,
    "Channel::Sms": _text_only,
    "Channel::Email": _text_only,
    "Channel::Tiktok": _text_only,
}
