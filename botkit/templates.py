"""Chatwoot's own messages in a bot's conversation: greeting, out of office, e-mail collect and CSAT.

`MessageTemplates::HookExecutionService` (`app/services/message_templates/hook_execution_service.rb`) posts
them after the contact's messages, also in bot inboxes. Each is `message_type: "template"` with
`sender: null` (`app/services/message_templates/template/*.rb`), except the CSAT survey sent through an
approved WhatsApp template, which is an `outgoing` `input_csat` message with no sender
(`app/services/csat_survey_service.rb`). The contact's answers come back as `message_updated` of the template
message: `submitted_email` for e-mail collect (`app/controllers/api/v1/widget/messages_controller.rb#update`),
`submitted_values = {"csat_survey_response": {"rating": 1-5, "feedback_message": "..."}}`, an object, for
CSAT (`app/controllers/public/api/v1/csat_survey_controller.rb`).

None of this is the contact talking to the bot: the bot hands these events only to handlers that ask for
them (`Handler.templates = True`, or `bot.on_csat` / `bot.on_template`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botkit import events

KINDS = {"input_email": "email_collect", "input_csat": "csat"}


@dataclass(frozen=True)
class TemplateMessage:
    """One of Chatwoot's template messages, or the contact's answer to one.

    `kind`: csat, email_collect, or message (a greeting, an out-of-office reply, or the e-mail collect's
    text: they differ only by their configured text). `email` and `csat` carry the contact's answer."""

    kind: str
    email: str | None = None
    csat: dict[str, Any] | None = None

    @property
    def is_answer(self) -> bool:
        return self.email is not None or self.csat is not None


def template_of(event: events.Event) -> TemplateMessage | None:
    """The template message this event is or answers, else None."""
    if not isinstance(event, events.MessageEvent):
        return None
    message = event.message
    own = message.message_type == events.MessageType.template or (
        event.sender is None and message.message_type == events.MessageType.outgoing
        and message.content_type == "input_csat")
    if not own:
        return None
    kind = KINDS.get(message.content_type, "message")
    if event.name != "message_updated":
        return TemplateMessage(kind)
    attributes = message.content_attributes
    values = attributes.get("submitted_values")
    csat = values.get("csat_survey_response") if isinstance(values, dict) else None
    email = attributes.get("submitted_email")
    return TemplateMessage(kind, email if isinstance(email, str) else None, csat if isinstance(csat, dict) else None)
