"""Typed models of what Chatwoot delivers to an agent bot.

Chatwoot sends a *flat* payload (`webhook_data` in `app/models/message.rb` and `app/models/conversation.rb`):
a message event carries the message's own fields at the top level beside `conversation`, `sender`, `inbox`,
`account` and `event`. Chatwoot's public guide shows a nested shape (`{"event", "message": {...}, ...}`)
that no version sends, but users copy it into their tests, so `normalize` turns it into the flat one. Every
field is optional and unknown keys are kept in `raw`: Chatwoot adds fields over time and old self-hosted
releases lack some.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar

import orjson
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from botkit.errors import GiveUp

MESSAGE_EVENTS = frozenset({"message_created", "message_updated"})
CONVERSATION_EVENTS = frozenset(
    {
        "conversation_opened",
        "conversation_resolved",
        "conversation_status_changed",
        "conversation_updated",
        "conversation_created",  # never sent to bots, but the public guide lists it
    }
)
KNOWN_EVENTS = MESSAGE_EVENTS | CONVERSATION_EVENTS | {"webwidget_triggered"}


class MessageType(StrEnum):
    incoming = "incoming"
    outgoing = "outgoing"
    activity = "activity"
    template = "template"


_MESSAGE_TYPE_NUMBERS = {0: "incoming", 1: "outgoing", 2: "activity", 3: "template"}


def _message_type(value: Any) -> Any:
    """Top level: a string; inside conversation.messages[] and in the REST API: an integer."""
    if isinstance(value, int) and not isinstance(value, bool):
        return _MESSAGE_TYPE_NUMBERS.get(value, value)
    return value


def _timestamp(value: Any) -> datetime | None:
    """ISO-8601 strings at the top level, epoch seconds (int or float) inside `conversation`."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def _or_empty_dict(value: Any) -> Any:
    return value if isinstance(value, dict) else {}


def _or_empty_list(value: Any) -> Any:
    return value if isinstance(value, list) else []


# Lenient field types: Chatwoot sends null, or another shape on older releases, where a dict is expected.
Timestamp = Annotated[datetime | None, BeforeValidator(_timestamp)]
AnyMessageType = Annotated[MessageType | int | None, BeforeValidator(_message_type)]
Attributes = Annotated[dict[str, Any], BeforeValidator(_or_empty_dict)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Account(_Model):
    id: int | None = None
    name: str | None = None


class Inbox(_Model):
    id: int | None = None
    name: str | None = None


class Team(_Model):
    id: int | None = None
    name: str | None = None


class Contact(_Model):
    id: int | None = None
    name: str | None = None
    email: str | None = None
    phone_number: str | None = None
    identifier: str | None = None
    thumbnail: str | None = None
    custom_attributes: Attributes = Field(default_factory=dict)
    additional_attributes: Attributes = Field(default_factory=dict)


class Sender(Contact):
    """Who wrote a message. Chatwoot sends a contact with no `type` key; users, bots and Captain have one."""

    type: str | None = None

    @property
    def kind(self) -> str:
        """contact, user, agent_bot or captain_assistant."""
        return self.type or "contact"


class ContactInbox(_Model):
    id: int | None = None
    contact_id: int | None = None
    inbox_id: int | None = None
    source_id: str | None = None


class ConversationMeta(_Model):
    sender: Contact | None = None
    assignee: dict[str, Any] | None = None
    assignee_type: str | None = None  # "User", "AgentBot" or None
    team: Team | None = None


class Attachment(_Model):
    id: int | None = None
    file_type: str | None = None
    data_url: str | None = None
    thumb_url: str | None = None
    file_size: int | None = None
    extension: str | None = None


class MessageSummary(_Model):
    """An element of `conversation.messages[]`: integer message_type, epoch created_at."""

    id: int | None = None
    content: str | None = None
    message_type: AnyMessageType = None
    content_type: str | None = None
    private: bool = False
    created_at: Timestamp = None
    sender_type: str | None = None
    sender_id: int | None = None


class Conversation(_Model):
    id: int | None = None  # the display id: the one every API path takes
    inbox_id: int | None = None
    account_id: int | None = None
    status: str | None = None  # open, resolved, pending, snoozed
    channel: str | None = None  # e.g. Channel::WebWidget, Channel::Whatsapp
    can_reply: bool = True
    priority: str | None = None
    labels: Annotated[list[str], BeforeValidator(_or_empty_list)] = Field(default_factory=list)
    custom_attributes: Attributes = Field(default_factory=dict)
    additional_attributes: Attributes = Field(default_factory=dict)
    contact_inbox: ContactInbox | None = None
    meta: Annotated[ConversationMeta, BeforeValidator(_or_empty_dict)] = Field(default_factory=ConversationMeta)
    messages: Annotated[list[MessageSummary], BeforeValidator(_or_empty_list)] = Field(default_factory=list)
    snoozed_until: Timestamp = None
    created_at: Timestamp = None
    updated_at: Timestamp = None

    @property
    def contact(self) -> Contact | None:
        return self.meta.sender

    @property
    def team(self) -> Team | None:
        return self.meta.team

    @property
    def is_human_assigned(self) -> bool:
        return self.meta.assignee_type == "User"


class Message(_Model):
    id: int | None = None
    content: str | None = None
    content_type: Annotated[str, BeforeValidator(lambda v: v or "text")] = "text"
    content_attributes: Attributes = Field(default_factory=dict)
    message_type: AnyMessageType = None
    private: bool = False
    created_at: Timestamp = None
    source_id: str | None = None
    attachments: Annotated[list[Attachment], BeforeValidator(_or_empty_list)] = Field(default_factory=list)
    additional_attributes: Attributes = Field(default_factory=dict)

    @property
    def submitted_values(self) -> list[dict[str, Any]]:
        """The contact's answer to an input_select ({title, value}) or a form ({name, value})."""
        values = self.content_attributes.get("submitted_values")
        return [v for v in values if isinstance(v, dict)] if isinstance(values, list) else []

    @property
    def submitted_email(self) -> str | None:
        value = self.content_attributes.get("submitted_email")
        return value if isinstance(value, str) else None


class Event(_Model):
    """One delivery. `name` is Chatwoot's event name; `raw` is the (flattened) payload as received."""

    name: str
    account: Account = Field(default_factory=Account)
    inbox: Inbox | None = None
    conversation: Conversation | None = None
    delivery_id: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)

    kinds: ClassVar[frozenset[str]] = frozenset()

    @property
    def account_id(self) -> int | None:
        return self.account.id

    @property
    def conversation_id(self) -> int | None:
        return self.conversation.id if self.conversation else None

    @property
    def contact(self) -> Contact | None:
        return self.conversation.contact if self.conversation else None


class MessageEvent(Event):
    """message_created or message_updated."""

    message: Message
    sender: Sender | None = None  # None for system messages and Dialogflow replies

    kinds: ClassVar[frozenset[str]] = MESSAGE_EVENTS

    @property
    def contact(self) -> Contact | None:
        if self.sender is not None and self.sender.kind == "contact":
            return self.sender
        return super().contact

    @property
    def text(self) -> str:
        return self.message.content or ""


class ConversationEvent(Event):
    """conversation_opened, _resolved, _status_changed, _updated (and the guide's conversation_created)."""

    changed_attributes: list[dict[str, Any]] | None = None

    kinds: ClassVar[frozenset[str]] = CONVERSATION_EVENTS

    def changed(self, attribute: str) -> tuple[Any, Any] | None:
        """(previous_value, current_value) of an attribute this event changed, if any."""
        for change in self.changed_attributes or []:
            if isinstance(change, dict) and isinstance(change.get(attribute), dict):
                values = change[attribute]
                return values.get("previous_value"), values.get("current_value")
        return None


class WebwidgetTriggered(Event):
    """The contact opened the web widget. Sent to the inbox's bot only; there may be no conversation yet."""

    widget_contact: Contact | None = Field(None, alias="contact")
    source_id: str | None = None
    event_info: dict[str, Any] = Field(default_factory=dict)

    kinds: ClassVar[frozenset[str]] = frozenset({"webwidget_triggered"})

    @property
    def contact(self) -> Contact | None:
        return self.widget_contact


class UnknownEvent(Event):
    """An event this version of botkit does not know. Tolerated, never handled."""


class MalformedEvent(GiveUp, ValueError):
    """The body is not a Chatwoot event (retrying cannot make it one)."""


def normalize(payload: Any) -> dict[str, Any]:
    """Flatten the guide's nested shape into Chatwoot's real flat shape; check the bare minimum."""
    if not isinstance(payload, dict) or not isinstance(payload.get("event"), str) or not payload["event"]:
        raise MalformedEvent("a Chatwoot event is a JSON object with a string 'event'")
    message = payload.get("message")
    if isinstance(message, dict) and payload["event"] in MESSAGE_EVENTS:
        flat = {k: v for k, v in payload.items() if k != "message"}
        for key, value in message.items():
            flat.setdefault(key, value)
        return flat
    return payload


def parse(payload: Any, delivery_id: str | None = None) -> Event:
    """Build the typed event from a decoded JSON body (flat or nested)."""
    flat = normalize(payload)
    name = flat["event"]
    common: dict[str, Any] = {
        "name": name,
        "account": _or_empty_dict(flat.get("account")),
        "delivery_id": delivery_id,
        "raw": flat,
    }
    if isinstance(flat.get("inbox"), dict):
        common["inbox"] = flat["inbox"]
    if name in MESSAGE_EVENTS:
        conversation = _or_empty_dict(flat.get("conversation"))
        if not common["account"] and conversation.get("account_id"):
            common["account"] = {"id": conversation["account_id"]}
        sender = flat.get("sender")
        return MessageEvent(
            **common,
            conversation=conversation,
            message=flat,
            sender=sender if isinstance(sender, dict) else None,
        )
    if name in CONVERSATION_EVENTS:
        conversation = flat.get("conversation") if isinstance(flat.get("conversation"), dict) else flat
        if not common["account"] and conversation.get("account_id"):
            common["account"] = {"id": conversation["account_id"]}
        changed = flat.get("changed_attributes")
        return ConversationEvent(
            **common,
            conversation=conversation,
            changed_attributes=changed if isinstance(changed, list) else None,
        )
    if name == "webwidget_triggered":
        current = flat.get("current_conversation")
        return WebwidgetTriggered(
            **common,
            conversation=current if isinstance(current, dict) else None,
            contact=_or_empty_dict(flat.get("contact")) or None,
            source_id=flat.get("source_id") if isinstance(flat.get("source_id"), str) else None,
            event_info=_or_empty_dict(flat.get("event_info")),
        )
    return UnknownEvent(**common)


def loads(body: bytes | str) -> Any:
    """Decode a delivery's JSON (orjson: about a third of json.loads' time on a typical delivery)."""
    return orjson.loads(body)


def parse_json(body: bytes | str, delivery_id: str | None = None) -> Event:
    """The typed event of a raw body. Raises MalformedEvent (a GiveUp) for one that is not JSON or whose fields
    do not fit (e.g. a message id that is not a number: the receiver's `route` looks at a few keys only)."""
    try:
        payload = loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedEvent("the body is not JSON") from exc
    try:
        return parse(payload, delivery_id)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise MalformedEvent(f"the body is not a Chatwoot event: {where}: {first['msg']}") from exc


class Routing(BaseModel):
    """What the receiver needs to know of a delivery before it is made durable."""

    model_config = ConfigDict(frozen=True)

    event: str
    lane: str  # events of one lane are handled one at a time, in arrival order
    dedupe_key: str  # the same Chatwoot event under another delivery id has the same key


def _digest(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def route(payload: Any) -> Routing | None:
    """Classify a decoded body. None for an event botkit does not know (acked, then ignored).

    Raises MalformedEvent for a body that is not a Chatwoot event. This is on the ack path, so it looks at
    a handful of keys only; the full typed parse happens in the worker.
    """
    flat = normalize(payload)
    name = flat["event"]
    if name not in KNOWN_EVENTS:
        return None
    account = _or_empty_dict(flat.get("account")).get("id")
    if name in MESSAGE_EVENTS:
        conversation = _or_empty_dict(flat.get("conversation"))
        account = account if account is not None else conversation.get("account_id")
        lane = f"{account}:{conversation.get('id')}"
        if name == "message_created":
            key = f"mc:{account}:{flat.get('id')}" if flat.get("id") is not None else None
        else:
            # A message changes many times (delivery status, the contact's answer): what changed is part
            # of the key, so a contact's submitted_values is not swallowed as a duplicate of a status update.
            changed = (flat.get("content"), flat.get("content_attributes"), flat.get("content_type"))
            key = f"mu:{account}:{flat.get('id')}:{_digest(*changed)}" if flat.get("id") is not None else None
        return Routing(event=name, lane=lane, dedupe_key=key or f"b:{_digest(flat)}")
    if name in CONVERSATION_EVENTS:
        conversation = flat.get("conversation") if isinstance(flat.get("conversation"), dict) else flat
        account = account if account is not None else conversation.get("account_id")
        lane = f"{account}:{conversation.get('id')}"
        stamp = conversation.get("updated_at")
        changed = flat.get("changed_attributes")
        key = f"c:{account}:{conversation.get('id')}:{name}:{stamp}:{_digest(changed)}"
        return Routing(event=name, lane=lane, dedupe_key=key)
    current = _or_empty_dict(flat.get("current_conversation"))
    contact = _or_empty_dict(flat.get("contact"))
    lane = f"{account}:{current['id']}" if current.get("id") is not None else f"{account}:contact:{contact.get('id')}"
    return Routing(event=name, lane=lane, dedupe_key=f"w:{account}:{_digest(flat)}")
