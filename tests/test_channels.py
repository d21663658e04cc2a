"""botkit.channels: each channel's menu within its provider's limits, numbered text past them, rich types as
text with their links, never an empty body where a channel drops or refuses one. Pure functions: no sockets."""

from __future__ import annotations

import logging

import pytest

from botkit import channels
from botkit.channels import channel, render
from botkit.rich import Article, ArticleItem, Card, CardAction, Cards, Form, FormField, InputEmail, InputSelect, Option


def menu(count: int, *, title: str = "Option", value: str = "v", content: str | None = "Pick one") -> InputSelect:
    return InputSelect(content, [Option(f"{title} {n}", f"{value}{n}") for n in range(1, count + 1)])


def test_channel_names_and_class_names():
    assert channel("Channel::Whatsapp") is channels.WHATSAPP
    assert channel("whatsapp") is channels.WHATSAPP
    assert channel("Channel::FacebookPage") is channels.FACEBOOK
    assert channel("Channel::TwilioSms") is channels.TWILIO
    assert channel("Channel::Sms") is channels.SMS
    assert channel(None) is channels.WEB_WIDGET
    assert channel("Channel::Voice") is channels.UNKNOWN
    assert {c.kind for c in channels.CHANNELS} >= {
        "Channel::WebWidget", "Channel::Api", "Channel::Whatsapp", "Channel::Telegram", "Channel::FacebookPage",
        "Channel::Line", "Channel::TwilioSms", "Channel::Sms", "Channel::Email", "Channel::Instagram",
        "Channel::Tiktok"}


def test_an_instagram_chat_on_a_facebook_page_inbox_is_instagram():
    from botkit.events import Conversation

    instagram = Conversation(channel="Channel::FacebookPage",
                             additional_attributes={"type": "instagram_direct_message"})
    messenger = Conversation(channel="Channel::FacebookPage", additional_attributes={})
    assert channels.kind_of(instagram) == "Channel::Instagram"
    assert channels.kind_of(messenger) == "Channel::FacebookPage"
    assert channels.kind_of(Conversation(channel="Channel::Telegram")) == "Channel::Telegram"
    assert channels.kind_of(None) is None
    assert render(menu(2), channels.kind_of(instagram)).form == "numbered"  # Instagram's sender posts text only
    assert render(menu(2), channels.kind_of(messenger)).form == "quick_replies"


@pytest.mark.parametrize("name, form", [
    ("web", "native"), ("api", "passed"), ("whatsapp", "buttons"), ("telegram", "keyboard"),
    ("facebook", "quick_replies"), ("line", "flex"), ("twilio", "numbered"), ("sms", "numbered"),
    ("email", "numbered"), ("instagram", "numbered"), ("tiktok", "numbered"), ("Channel::Voice", "numbered"),
])
def test_a_small_menu_in_each_channels_best_form(name, form):
    rendered = render(menu(2), name)
    assert rendered.form == form
    assert rendered.options == [{"title": "Option 1", "value": "v1"}, {"title": "Option 2", "value": "v2"}]
    if form == "numbered":
        assert rendered.payload == {"content": "Pick one\n1. Option 1\n2. Option 2", "content_type": "text",
                                    "content_attributes": None}
    else:
        assert rendered.payload["content_type"] == "input_select"
        assert rendered.payload["content_attributes"]["items"] == rendered.options


# WhatsApp --------------------------------------------------------------------------------------------------

def test_whatsapp_three_buttons_then_a_list_of_ten():
    assert render(menu(3), "whatsapp").form == "buttons"
    assert render(menu(4), "whatsapp").form == "list"
    assert render(menu(10), "whatsapp").form == "list"


def test_whatsapp_eleven_rows_go_out_as_numbered_text_with_one_warning(caplog):
    with caplog.at_level(logging.WARNING, "botkit.channels"):
        rendered = render(menu(11), "whatsapp")
    assert rendered.form == "numbered"
    assert rendered.payload["content_type"] == "text"
    assert rendered.payload["content"].splitlines()[-1] == "11. Option 11"
    assert "at most 10 options" in rendered.limit
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "at most 10 options" in warnings[0].getMessage()


def test_whatsapp_button_titles_over_20_characters():
    long_titles = InputSelect("Pick", [Option("Track my order please now", "a"), Option("Talk to a human", "b")])
    rendered = render(long_titles, "whatsapp")
    assert rendered.form == "numbered" and "at most 20 characters" in rendered.limit
    exactly_20 = InputSelect("Pick", [Option("x" * 20, "a"), Option("y", "b")])
    assert render(exactly_20, "whatsapp").form == "buttons"


def test_whatsapp_four_buttons_of_26_to_34_characters_as_the_issue_found():
    titles = ["I want to track my order!", "I would like to get a refund", "Please talk to a human now",
              "Change my delivery address now"]
    rendered = render(InputSelect("How can I help?", [Option(t, str(n)) for n, t in enumerate(titles)]), "whatsapp")
    assert rendered.form == "numbered" and "at most 24 characters" in rendered.limit


def test_whatsapp_list_rows_of_24_characters_fit():
    rows = InputSelect("Pick", [Option("r" * 24 if n == 0 else f"row {n}", str(n)) for n in range(5)])
    assert render(rows, "whatsapp").form == "list"


def test_whatsapp_menu_without_text_gets_a_body():
    rendered = render(menu(2, content=None), "whatsapp")
    assert rendered.form == "buttons"
    assert rendered.payload["content"] == channels.DEFAULT_PROMPT
    assert render(menu(2, content="   "), "telegram").payload["content"] == channels.DEFAULT_PROMPT


def test_whatsapp_equal_titles_cannot_be_told_apart():
    same = InputSelect("Pick", [Option("Yes", "a"), Option("yes", "b")])
    assert render(same, "whatsapp").form == "numbered"
    assert render(same, "telegram").form == "keyboard"  # Telegram answers with the value


def test_whatsapp_body_over_1024_characters():
    assert render(menu(2, content="x" * 1025), "whatsapp").form == "numbered"
    assert render(menu(2, content="x" * 1024), "whatsapp").form == "buttons"


# Telegram, Facebook, LINE ------------------------------------------------------------------------------------

def test_telegram_callback_data_over_64_bytes_goes_as_a_short_key_and_keeps_the_keyboard():
    fits = render(menu(2, value="v" * 63), "telegram")  # "v"*63 + "1" = 64 bytes: sent as it is
    assert fits.form == "keyboard" and fits.payload["content_attributes"]["items"] == fits.options
    rendered = render(menu(2, value="é" * 32), "telegram")  # 64 bytes + the digit: 65
    assert rendered.form == "keyboard" and rendered.limit is None
    sent = rendered.payload["content_attributes"]["items"]
    assert [i["title"] for i in sent] == ["Option 1", "Option 2"]
    assert all(1 <= len(i["value"].encode()) <= 64 for i in sent)
    assert [i["value"] for i in sent] == [channels.key_of("é" * 32 + "1"), channels.key_of("é" * 32 + "2")]
    assert len(set(i["value"] for i in sent)) == 2
    assert rendered.options == [{"title": f"Option {n}", "value": "é" * 32 + str(n), "key": sent[n - 1]["value"]}
                                for n in (1, 2)]
    assert render(menu(2, value="é" * 32), "telegram").payload == rendered.payload  # a retry posts the same menu
    mixed = render(InputSelect("Pick", [Option("Short", "s"), Option("Long", "x" * 65)]), "telegram")
    assert [i["value"] for i in mixed.payload["content_attributes"]["items"]] == ["s", channels.key_of("x" * 65)]
    # LINE shows the value as the contact's own message: no key there, numbered text as before
    assert render(menu(2, value="v" * 300), "line").form == "numbered"


def test_telegram_and_line_need_a_value():
    empty = InputSelect("Pick", [Option("Yes", ""), Option("No", "no")])
    assert render(empty, "telegram").form == "numbered"
    assert render(empty, "line").form == "numbered"
    assert render(empty, "whatsapp").form == "buttons"  # WhatsApp answers with the title


def test_facebook_thirteen_quick_replies_of_twenty_characters():
    assert render(menu(13), "facebook").form == "quick_replies"
    assert "at most 13 options" in render(menu(14), "facebook").limit
    long_title = InputSelect("Pick", [Option("x" * 21, "a"), Option("b", "b")])
    assert "at most 20 characters" in render(long_title, "facebook").limit
    assert "2000 characters" in render(menu(2, content="x" * 2001), "facebook").limit


def test_line_labels_values_and_alt_text():
    assert render(menu(12), "line").form == "flex"
    assert "at most 20 characters" in render(InputSelect("P", [Option("x" * 21, "a")]), "line").limit
    assert "at most 300 bytes" in render(InputSelect("P", [Option("x", "v" * 301)]), "line").limit
    assert "at most 400 characters" in render(menu(2, content="x" * 401), "line").limit


def test_the_widget_and_api_take_any_menu():
    big = menu(30, title="A rather long option title that goes on")
    assert render(big, "web").form == "native"
    assert render(big, "api").form == "passed"


# Rich types outside the widget ------------------------------------------------------------------------------

CARDS = Cards("Our plans", [
    Card("Basic", "For one person", "https://example.com/basic.png",
         [CardAction("link", "Details", uri="https://example.com/basic"), CardAction("postback", "Buy", payload="b")]),
    Card("Team", actions=[CardAction("link", "Details", uri="https://example.com/team")]),
])


@pytest.mark.parametrize("name", ["whatsapp", "telegram", "facebook", "line", "sms", "email", "instagram"])
def test_cards_keep_their_content_and_links_as_text(name):
    rendered = render(CARDS, name)
    assert rendered.payload["content_type"] == "text"
    text = rendered.payload["content"]
    for expected in ("Our plans", "1. Basic: For one person", "Details: https://example.com/basic", "2. Team",
                     "https://example.com/team", "https://example.com/basic.png"):
        assert expected in text


def test_article_form_and_input_email_as_text():
    article = Article("Read these", [ArticleItem("Returns", "https://help.example.com/returns")])
    assert render(article, "whatsapp").payload["content"] == "Read these\n1. Returns https://help.example.com/returns"
    form = Form("Your details", [FormField("email", "Your e-mail", type="email")])
    assert render(form, "sms").payload["content"] == "Your details\n1. Your e-mail"
    assert render(InputEmail("Your e-mail, please?"), "telegram").payload == {
        "content": "Your e-mail, please?", "content_type": "text", "content_attributes": None}
    assert render(CARDS, "web").payload["content_type"] == "cards"
    assert render(CARDS, "api").payload["content_type"] == "cards"


def test_text_stays_text():
    assert render("Hello", "whatsapp").payload == {"content": "Hello", "content_type": "text",
                                                   "content_attributes": None}
    assert render("Hello", "whatsapp").form == "text"
