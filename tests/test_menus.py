"""botkit.menus, botkit.liquid, botkit.templates and botkit.delivery as pure functions (no sockets); the same
behaviour end to end is in tests/test_every_channel.py."""

from __future__ import annotations

import liquid
import pytest

from botkit import events
from botkit.channels import render
from botkit.delivery import failure_of
from botkit.liquid import as_written
from botkit.menus import KEY, Memory
from botkit.rich import InputSelect, Option
from botkit.templates import template_of
from botkit.testing import factories

MENU = InputSelect("What would you like to do?",
                   [Option("Track my order", "track"), Option("Talk to a human", "human")])


def memory_with(channel: str, message_id: int = 10) -> Memory:
    memory = Memory(None, now=1000.0, ttl=3600)
    memory.remember(message_id, render(MENU, channel))
    return memory


def test_a_whatsapp_title_maps_back_to_its_value_once():
    memory = memory_with("whatsapp")
    answer = memory.typed("Talk to a human", in_reply_to=10)
    assert answer is not None and answer.submitted == [{"title": "Talk to a human", "value": "human"}]
    assert answer.how == "title" and answer.message_id == 10
    assert memory.typed("Talk to a human", in_reply_to=10) is None  # consumed


def test_a_telegram_value_case_and_accents_folded():
    memory = Memory(None, now=0, ttl=60)
    memory.remember(5, render(InputSelect("¿Qué?", [Option("Facturación", "Facturación"), Option("Otro", "otro")]),
                              "telegram"))
    answer = memory.typed("FACTURACION")
    assert answer is not None and answer.submitted[0]["value"] == "Facturación"


def test_a_telegram_tap_on_a_keyed_option_maps_back_to_its_long_value_on_each_tap():
    long = "order-status:" + "x" * 80
    memory = Memory(None, now=0, ttl=60)
    rendered = render(InputSelect("Pick", [Option("Where is it?", long), Option("Other", "other")]), "telegram")
    memory.remember(7, rendered)
    key = rendered.payload["content_attributes"]["items"][0]["value"]
    answer = memory.typed(key)  # Telegram sends the callback_data back as the message's text
    assert answer is not None and answer.submitted == [{"title": "Where is it?", "value": long}]
    assert answer.message_id == 7 and answer.how == "value"
    assert memory.typed("Where is it?") is None  # answered once: the title typed again is ordinary text
    again = memory.typed(key)  # Telegram's keyboard stays: a second tap asks again, with the value
    assert again is not None and again.submitted == [{"title": "Where is it?", "value": long}]
    assert memory_with("telegram").typed(key) is None  # a key of no remembered menu is ordinary text


def test_numbers_answer_only_a_menu_sent_as_numbered_text():
    assert memory_with("whatsapp").typed("2") is None
    answer = memory_with("sms").typed(" 2. ")
    assert answer is not None and answer.submitted[0]["value"] == "human" and answer.how == "number"
    assert memory_with("sms").typed("3") is None
    assert memory_with("email").typed("track my order").submitted[0]["value"] == "track"


def test_a_number_picks_the_line_of_a_numbered_menu_before_a_value_equal_to_it():
    memory = Memory(None, now=0, ttl=60)
    memory.remember(3, render(InputSelect("Pick", [Option(f"Store {n}", str(n)) for n in range(12)]), "whatsapp"))
    assert memory.typed("2").submitted == [{"title": "Store 1", "value": "1"}]


def test_text_matching_no_option_is_ordinary():
    memory = memory_with("whatsapp")
    assert memory.typed("I want to talk to a human about my order") is None
    assert memory.typed("") is None
    assert memory.menus[0]["answered"] is False


def test_in_reply_to_an_unknown_message_falls_back_to_open_menus():
    assert memory_with("whatsapp").typed("Track my order", in_reply_to=999) is not None


def test_the_widget_answer_is_consumed_once_even_without_a_remembered_menu():
    memory = Memory(None, now=0, ttl=60)
    assert memory.submitted(77, [{"title": "Yes", "value": "yes"}]) is not None
    assert memory.submitted(77, [{"title": "Yes", "value": "yes"}]) is None


def test_memory_round_trips_through_state_and_expires():
    memory = memory_with("sms")
    state = {"mine": 1, KEY: memory.dump()}
    again = Memory.take(state, now=1000.0 + 3599, ttl=3600)
    assert state == {"mine": 1}  # handlers never see the bot's own key
    assert again.typed("1") is not None
    expired = Memory(memory.dump(), now=1000.0 + 3600, ttl=3600)
    assert expired.menus == [] and expired.typed("1") is None


# Liquid ----------------------------------------------------------------------------------------------------

def chatwoot_renders(content: str, contact_email: str = "jane@example.com") -> str:
    """What Chatwoot saves (app/models/concerns/liquidable.rb), with the python-liquid engine."""
    import re

    protected = re.sub(r"`(.*?)`", r"{% raw %}`\1`{% endraw %}", content, flags=re.DOTALL)
    try:
        return liquid.Template(protected).render(contact={"email": contact_email})
    except liquid.exceptions.LiquidError:
        return content


@pytest.mark.parametrize("text", [
    "Write to {{contact.email}} and {% if true %}yes{% endif %}.",
    "A brace { alone, {{ and {% and }} and %}",
    "Code `{{x}}` stays and {{y}} too",
    "Unclosed `{{a}} and {%",
    "Nothing special here",
    "{% raw %}x{% endraw %} {{ '{' }}",
    "`{% endraw %}` {{contact.email}}",
])
def test_text_sent_as_written_renders_to_itself(text):
    assert chatwoot_renders(as_written(text)) == text


def test_without_protection_chatwoot_rewrites_a_models_answer():
    assert chatwoot_renders("Write to {{contact.email}}") == "Write to jane@example.com"


# Chatwoot's template messages and delivery failures ---------------------------------------------------------

def test_template_messages_and_their_answers_are_recognised():
    greeting = events.parse(factories.template_message("Hi! We reply in a few minutes."))
    assert template_of(greeting).kind == "message"
    collect = events.parse(factories.email_collected("billing.desk@example.net"))
    found = template_of(collect)
    assert found.kind == "email_collect" and found.email == "billing.desk@example.net" and found.is_answer
    csat = events.parse(factories.csat_answer(4, "Quick and kind"))
    assert template_of(csat).csat == {"rating": 4, "feedback_message": "Quick and kind"}
    whatsapp_csat = events.parse(factories.csat_survey(channel="whatsapp"))
    assert template_of(whatsapp_csat).kind == "csat"
    assert template_of(events.parse(factories.contact_message("hello"))) is None
    assert template_of(events.parse(factories.bot_echo("hello"))) is None


def test_a_delivery_failure_and_a_closed_window():
    failed = events.parse(factories.delivery_failed(55, "(#131009) Parameter value is not valid"))
    failure = failure_of(failed)
    assert failure.message_id == 55 and not failure.window_closed
    closed = failure_of(events.parse(factories.delivery_failed(56, "Template not found or invalid template name")))
    assert closed.window_closed
    assert failure_of(events.parse(factories.status_update(57))) is None
