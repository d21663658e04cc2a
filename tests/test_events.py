"""Every real-shape delivery parses with the types FACTS.md gives; so does the guide's nested shape."""

from datetime import datetime

import pytest

from botkit import events
from tests.conftest import PAYLOADS, load_payload

ALL = sorted(p.stem for p in PAYLOADS.glob("*.json"))


def test_fixtures_are_the_shared_payloads():
    assert set(ALL) == {
        "conversation_opened", "conversation_resolved", "conversation_status_changed", "conversation_updated",
        "message_created", "message_updated", "webwidget_triggered",
    }


@pytest.mark.parametrize("name", ALL)
def test_every_payload_parses_to_its_event_class(name):
    event = events.parse(load_payload(name), "delivery-1")
    assert event.name == name
    assert event.delivery_id == "delivery-1"
    assert event.account_id == 1
    assert event.conversation_id == 128  # the display id
    assert event.contact is not None and event.contact.name == "Jane Doe"
    expected = {"message_created": events.MessageEvent, "message_updated": events.MessageEvent,
                "webwidget_triggered": events.WebwidgetTriggered}.get(name, events.ConversationEvent)
    assert type(event) is expected


def test_message_created_fields():
    event = events.parse(load_payload("message_created"))
    assert event.message.id == 9811
    assert event.message.message_type is events.MessageType.incoming  # a string at the top level
    assert isinstance(event.message.created_at, datetime)  # an ISO string at the top level
    assert event.sender is not None and event.sender.type is None and event.sender.kind == "contact"
    assert event.text == "Hi, where is my order #1234?"
    assert event.inbox.id == 3
    conversation = event.conversation
    assert conversation.status == "pending" and conversation.channel == "Channel::WebWidget"
    assert conversation.contact_inbox.source_id == "3f2b7a0e-5c1d-4b8e-9a44-6d2f1c0e9b71"
    # inside conversation.messages[] message_type is an integer and created_at epoch seconds
    inner = conversation.messages[0]
    assert inner.message_type is events.MessageType.incoming
    assert inner.created_at == datetime.fromtimestamp(1781691342, events.UTC)
    assert conversation.updated_at.timestamp() == pytest.approx(1781691342.4411)  # a float epoch


def test_message_updated_carries_the_contacts_answer_on_the_bots_own_message():
    event = events.parse(load_payload("message_updated"))
    assert event.message.message_type is events.MessageType.outgoing
    assert event.sender.kind == "agent_bot"
    assert event.message.content_type == "input_select"
    assert event.message.submitted_values == [{"title": "Track my order", "value": "track_order"}]


@pytest.mark.parametrize("kind", [None, "user", "agent_bot", "captain_assistant"])
def test_sender_kinds(kind):
    body = load_payload("message_created")
    if kind is not None:
        body["sender"]["type"] = kind
    assert events.parse(body).sender.kind == (kind or "contact")


def test_null_sender_is_a_system_message():
    body = load_payload("message_created")
    body["sender"] = None
    body["message_type"] = "template"
    event = events.parse(body)
    assert event.sender is None and event.message.message_type is events.MessageType.template


def test_attachments_and_rich_content_attributes():
    body = load_payload("message_created")
    body["attachments"] = [{"id": 5, "file_type": "image", "data_url": "https://x.example/a.png", "extra": 1}]
    body["content_attributes"] = {"submitted_email": "jane@example.com"}
    event = events.parse(body)
    assert event.message.attachments[0].file_type == "image"
    assert event.message.submitted_email == "jane@example.com"


def test_conversation_updated_changed_attributes():
    event = events.parse(load_payload("conversation_updated"))
    assert event.changed("team_id") == (None, 2)
    assert event.changed("status") is None
    assert event.conversation.team.name == "support"
    assert events.parse(load_payload("conversation_status_changed")).changed_attributes is None


def test_webwidget_triggered():
    event = events.parse(load_payload("webwidget_triggered"))
    assert event.contact.id == 42
    assert event.source_id == "3f2b7a0e-5c1d-4b8e-9a44-6d2f1c0e9b71"
    assert event.event_info["widget_language"] == "en"


def test_the_guides_nested_shape_normalises_to_the_same_model():
    flat = load_payload("message_created")
    message = {k: flat[k] for k in ("id", "content", "content_type", "content_attributes", "private", "sender")}
    message["message_type"] = 0  # the guide shows an integer
    nested = {"event": "message_created", "message": message, "conversation": flat["conversation"],
              "account": flat["account"]}
    event = events.parse(nested)
    assert isinstance(event, events.MessageEvent)
    assert event.message.id == 9811 and event.message.message_type is events.MessageType.incoming
    assert event.text == flat["content"] and event.conversation_id == 128
    assert events.route(nested) == events.route(flat)  # the same dedupe identity


def test_the_guides_conversation_created_is_a_conversation_event():
    body = load_payload("conversation_opened")
    body["event"] = "conversation_created"
    assert isinstance(events.parse(body), events.ConversationEvent)
    assert events.route(body) is not None


def test_unknown_keys_and_unknown_events_are_tolerated():
    body = load_payload("message_created")
    body["sla_policy_id"] = 7
    body["conversation"]["applied_sla"] = {"id": 1}
    body["conversation"]["meta"] = None
    body["conversation"]["labels"] = None
    assert events.parse(body).conversation.labels == []
    unknown = {"event": "contact_updated", "id": 1}
    assert isinstance(events.parse(unknown), events.UnknownEvent)
    assert events.route(unknown) is None


@pytest.mark.parametrize("body", [[], "x", 3, None, {}, {"event": 3}, {"event": ""}])
def test_not_an_event(body):
    with pytest.raises(events.MalformedEvent):
        events.route(body)


def test_dedupe_keys():
    created = load_payload("message_created")
    updated = load_payload("message_updated")
    assert events.route(created).dedupe_key == "mc:1:9811"
    assert events.route(created).lane == "1:128"
    # A delivery-status update and the contact's answer are different changes of one message.
    status_only = load_payload("message_updated")
    del status_only["content_attributes"]["submitted_values"]
    assert events.route(updated).dedupe_key != events.route(status_only).dedupe_key
    # One status change fires several events: each keeps its own identity.
    keys = {events.route(load_payload(n)).dedupe_key for n in ("conversation_opened", "conversation_status_changed")}
    assert len(keys) == 2
