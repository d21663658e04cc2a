"""Delivery failures: a message Chatwoot accepted that the channel's provider then refused.

Chatwoot answers 200 to the bot's message and sends it afterwards (`app/jobs/send_reply_job.rb`). When the
provider refuses it, Chatwoot marks it failed with `content_attributes.external_error` and delivers a
`message_updated` of the bot's own message; that payload has no top-level `status`
(`app/services/messages/status_update_service.rb`, `Message#webhook_data`). The error texts are the
provider's own (`app/services/whatsapp/providers/base_service.rb#handle_error`,
`app/services/facebook/send_on_facebook_service.rb#external_error`, `app/models/channel/telegram.rb#process_error`,
`app/services/twilio/delivery_status_service.rb`, ...).

A refusal outside the channel's messaging window means the bot cannot write to this contact until they
write again: WhatsApp Cloud with `can_reply` false marks the message failed with "Template not found or
invalid template name" and never reaches Meta (`app/services/whatsapp/send_on_whatsapp_service.rb`); Meta,
Messenger, Instagram and Twilio refuse with their own window errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from botkit import events

# Errors that mean "outside the messaging window" (Chatwoot's own text, then the providers' codes).
WINDOW_ERRORS = re.compile(
    r"Template not found or invalid template name"
    r"|\b131047\b|more than 24 hours"  # WhatsApp Cloud: re-engagement message
    r"|outside (?:of )?(?:the )?allowed window|\b2018278\b"  # Messenger / Instagram
    r"|\b63016\b",  # Twilio WhatsApp: freeform message outside the window
    re.IGNORECASE,
)


@dataclass(frozen=True)
class DeliveryFailure:
    """The provider refused the bot's message `message_id` with `error`; `window_closed` when the refusal
    says the messaging window is closed."""

    message_id: int | None
    error: str
    window_closed: bool


def failure_of(event: events.Event) -> DeliveryFailure | None:
    """The delivery failure this event reports, if it is a `message_updated` of an outgoing message that
    carries `content_attributes.external_error`."""
    if not isinstance(event, events.MessageEvent) or event.name != "message_updated":
        return None
    message = event.message
    error: Any = message.content_attributes.get("external_error")
    if not error or message.message_type != events.MessageType.outgoing or message.private:
        return None
    text = str(error)
    return DeliveryFailure(message.id, text, bool(WINDOW_ERRORS.search(text)))
