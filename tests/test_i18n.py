"""Languages: the catalogues are complete and in step with the code, the contact's language is read from what
Chatwoot sends, and each fixed string botkit sends reaches the contact (or the agents) in their language, over
real sockets."""

from __future__ import annotations

import gettext
import io
import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from botkit import Bot, Context, KeywordRouter, Rule, i18n
from botkit.adapters.openai import OpenAIHandler
from botkit.config import ConfigError, load_settings
from botkit.events import parse
from botkit.rich import InputSelect, Option
from botkit.testing import factories
from botkit.testing.fake_openai import FakeOpenAI
from botkit.testing.harness import BotServer
from bots.support_router import make_bot
from tests.conftest import ROOT

LANGUAGES = ["pt_BR", "es", "fr", "de"]
KEY = "sk-test-0123456789abcdef"

# What a contact in each language gets (the done-when of issue 19: fallback, hand-off, numbered-menu hint).
FALLBACK = {
    "en": "How can I help you today? You can ask about billing or technical issues.",
    "pt_BR": "Como posso ajudar você hoje? Você pode perguntar sobre cobrança ou problemas técnicos.",
    "es": "¿En qué puedo ayudarte hoy? Puedes preguntar por facturación o problemas técnicos.",
    "fr": "Comment puis-je vous aider aujourd'hui ? Vous pouvez poser une question sur la facturation ou un "
          "problème technique.",
    "de": "Wie kann ich Ihnen heute helfen? Sie können nach Abrechnung oder technischen Problemen fragen.",
}
HANDOFF = {
    "en": "Let me connect you with a human agent.",
    "pt_BR": "Vou conectar você com um atendente.",
    "es": "Te pongo en contacto con un agente.",
    "fr": "Je vous mets en relation avec un conseiller.",
    "de": "Ich verbinde Sie mit einem Mitarbeiter.",
}
HINT = {
    "en": "Reply with the number of your choice.",
    "pt_BR": "Responda com o número da sua escolha.",
    "es": "Responde con el número de tu elección.",
    "fr": "Répondez avec le numéro de votre choix.",
    "de": "Antworten Sie mit der Nummer Ihrer Wahl.",
}
MODEL_FALLBACK = {
    "en": "Sorry, I can't answer right now. A member of our team will get back to you shortly.",
    "pt_BR": "Desculpe, não consigo responder agora. Alguém da nossa equipe vai falar com você em breve.",
    "es": "Lo siento, ahora no puedo responder. Una persona de nuestro equipo te contestará en breve.",
    "fr": "Désolé, je ne peux pas répondre pour le moment. Un membre de notre équipe vous répondra sous peu.",
    "de": "Entschuldigung, ich kann gerade nicht antworten. Jemand aus unserem Team meldet sich in Kürze bei Ihnen.",
}
MODEL_HANDOFF = {
    "en": "I'm handing you over to a member of our team.",
    "pt_BR": "Vou passar você para alguém da nossa equipe.",
    "es": "Te paso con una persona de nuestro equipo.",
    "fr": "Je vous passe un membre de notre équipe.",
    "de": "Ich übergebe Sie an jemanden aus unserem Team.",
}
# How each language's browser says it (the widget's browser_language is the Accept-Language code).
BROWSER = {"en": "en", "pt_BR": "pt", "es": "es", "fr": "fr", "de": "de"}


def po(language: str) -> Path:
    return i18n.LOCALES_DIR / language / "LC_MESSAGES" / "botkit.po"


def catalog(language: str):
    with po(language).open("rb") as f:
        return read_po(f, locale=language)


# the catalogues ---------------------------------------------------------------------------------------------

def test_the_template_holds_exactly_the_strings_marked_in_the_code():
    """`make i18n` was run after the last change to a marked string: nothing marked is missing, nothing stale."""
    keywords = {"t": None, "t_agents": None, "N_": None}
    marked = {message for path in ("botkit", "bots")
              for _, _, message, _, *_ in extract_from_dir(ROOT / path, keywords=keywords)}
    with (i18n.LOCALES_DIR / "botkit.pot").open("rb") as f:
        template = {m.id for m in read_po(f) if m.id}
    assert marked == template
    assert len(template) >= 15


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_string_is_translated_with_the_same_fields(language):
    with (i18n.LOCALES_DIR / "botkit.pot").open("rb") as f:
        template = {m.id for m in read_po(f) if m.id}
    messages = {m.id: m.string for m in catalog(language) if m.id}
    assert set(messages) == template
    for msgid, text in messages.items():
        assert text and text != msgid, f"{language}: no translation for {msgid!r}"
        assert sorted(re.findall(r"{\w+}", text)) == sorted(re.findall(r"{\w+}", msgid)), msgid


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_shipped_mo_is_compiled_from_the_po(language):
    buffer = io.BytesIO()
    write_mo(buffer, catalog(language))
    buffer.seek(0)
    from_po = gettext.GNUTranslations(buffer)._catalog  # type: ignore[attr-defined]
    with po(language).with_suffix(".mo").open("rb") as f:
        shipped = gettext.GNUTranslations(f)._catalog  # type: ignore[attr-defined]
    assert shipped == from_po, "run `make i18n` to compile the .mo"


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_fixed_string_comes_out_of_the_catalogue_in_each_language(language):
    """Each msgid, through the loader botkit uses, gives that language's text (the .mo as shipped)."""
    translations = {m.id: m.string for m in catalog(language) if m.id}
    for msgid, text in translations.items():
        assert i18n.DEFAULT_CATALOGUE.gettext(language, msgid) == text
    assert i18n.DEFAULT_CATALOGUE.gettext(language, "A string nobody translated.") == "A string nobody translated."


# the contact's language -------------------------------------------------------------------------------------

def event(**overrides):
    return parse(factories.contact_message("hi", **overrides))


@pytest.mark.parametrize(("overrides", "expected"), [
    ({}, "en"),  # the template's widget contact: browser_language "en"
    ({"browser_language": "pt"}, "pt_BR"),  # the browser gem's code is the bare language
    ({"browser_language": "pt-BR"}, "pt_BR"),
    ({"browser_language": "pt-PT"}, "pt_BR"),  # the nearest catalogue of the same language
    ({"browser_language": "es-419"}, "es"),
    ({"browser_language": "de-AT"}, "de"),
    ({"browser_language": "ja"}, "en"),  # no Japanese catalogue: the bot's default
    ({"browser_language": "not a language"}, "en"),
    ({"browser_language": "es", "contact_attributes": {"language": "fr"}}, "fr"),  # set on the contact wins
])
def test_the_contacts_language_comes_from_what_chatwoot_sends(overrides, expected):
    assert i18n.DEFAULT_CATALOGUE.language_for(event(**overrides)) == expected


def test_a_telegram_contacts_language_code_is_used():
    body = factories.contact_message("hallo", channel="Channel::Telegram")
    body["sender"]["additional_attributes"] = {"username": "jd", "language_code": "de"}
    body["conversation"]["additional_attributes"].pop("browser_language", None)  # none outside the widget
    assert i18n.DEFAULT_CATALOGUE.language_for(parse(body)) == "de"


@pytest.mark.parametrize(("phone", "expected"), [
    ("+5511987654321", "pt_BR"), ("+34612345678", "es"), ("+525512345678", "es"), ("+33612345678", "fr"),
    ("+41791234567", "de"), ("+14155550123", "en"), ("+819012345678", "en"), ("not a number", "en")])
def test_a_whatsapp_contacts_language_comes_from_their_numbers_country(phone, expected):
    body = factories.contact_message("oi", channel="Channel::Whatsapp")
    body["conversation"]["additional_attributes"].pop("browser_language", None)
    body["sender"]["phone_number"] = phone
    assert i18n.DEFAULT_CATALOGUE.language_for(parse(body)) == expected


def test_a_number_says_nothing_on_a_channel_that_is_not_a_phone():
    body = factories.contact_message("hi", channel="Channel::Email")
    body["conversation"]["additional_attributes"].pop("browser_language", None)
    body["sender"]["phone_number"] = "+5511987654321"
    assert i18n.DEFAULT_CATALOGUE.language_for(parse(body)) == "en"


def test_with_nothing_said_the_default_language_is_used():
    body = factories.contact_message("hi", channel="Channel::Whatsapp")
    body["conversation"]["additional_attributes"].pop("browser_language", None)  # none outside the widget
    assert i18n.DEFAULT_CATALOGUE.language_for(parse(body), "es") == "es"


def test_a_bad_language_setting_stops_start_up_with_one_sentence():
    with pytest.raises(ConfigError, match=r"^BOTKIT_LANGUAGE must be a language such as en, pt_BR"):
        load_settings(env_file=None, botkit_language="klingon-ish")
    with pytest.raises(ConfigError, match="language such as"):
        Bot("x", language="nope nope")
    assert load_settings(env_file=None, botkit_language="pt-BR").botkit_language == "pt_BR"


# each fixed string, end to end ----------------------------------------------------------------------------

def said(fake, conversation_id=128):
    return [m["content"] for m in fake.messages(conversation_id) if m["message_type"] == 1 and not m.get("private")]


def notes(fake, conversation_id=128):
    return [m["content"] for m in fake.messages(conversation_id) if m.get("private")]


@pytest.mark.parametrize("language", ["en", *LANGUAGES])
async def test_a_widget_contact_gets_the_fallback_and_the_hand_off_in_their_language(bot_flow, language):
    flow = await bot_flow(make_bot())
    await flow.send("hello?", browser_language=BROWSER[language])
    flow.expect_reply(FALLBACK[language]).expect_no_action()
    await flow.send("human", browser_language=BROWSER[language])
    flow.expect_reply(HANDOFF[language]).expect_summary().expect_handoff()


async def test_a_brazilian_whatsapp_number_gets_the_fallback_in_portuguese(bot_flow):
    flow = await bot_flow(make_bot())
    body = factories.contact_message("oi", channel="Channel::Whatsapp")
    body["conversation"]["additional_attributes"].pop("browser_language", None)
    body["sender"]["phone_number"] = "+5511987654321"
    await flow.deliver(body)
    flow.expect_reply(FALLBACK["pt_BR"])


def menu_bot(**options) -> Bot:
    bot = Bot("menu", **options)

    @bot.on_message("order", "pedido", "commande", "bestellung")
    async def menu(ctx: Context) -> None:
        await ctx.reply(InputSelect("?", [Option("A", "a"), Option("B", "b")]))

    return bot


@pytest.mark.parametrize("language", ["en", *LANGUAGES])
async def test_a_numbered_menu_ends_with_the_hint_in_the_contacts_language(bot_flow, language):
    flow = await bot_flow(menu_bot())
    await flow.send("order", channel="Channel::Sms", contact_attributes={"language": language})
    flow.expect_reply(f"?\n1. A\n2. B\n{HINT[language]}")


async def test_a_bot_with_its_own_language_speaks_it_to_everyone(bot_flow):
    flow = await bot_flow(menu_bot(language="pt-BR"))
    await flow.send("order", channel="Channel::Email", browser_language="de")
    flow.expect_reply(f"?\n1. A\n2. B\n{HINT['pt_BR']}")


@pytest.mark.parametrize("language", ["en", *LANGUAGES])
async def test_the_model_bots_fallback_and_hand_off_follow_the_contact(language):
    fake = FakeOpenAI(api_key=KEY)
    async with fake.serve():
        bot = Bot("assistant", [OpenAIHandler(api_key=KEY, base_url=fake.base_url, env_file=None, max_retries=0)],
                  typing_after=None)
        async with BotServer(bot) as server:
            for conversation_id in (128, 129):
                server.fake.add_conversation(conversation_id=conversation_id, status="pending")
            fake.fail(500)
            await server.deliver(factories.contact_message("hi", browser_language=BROWSER[language]))
            fake.call_tool("handoff_to_human", {"reason": "asked for a person"})
            await server.deliver(factories.contact_message("a person", conversation_id=129,
                                                           browser_language=BROWSER[language]))
            await server.settle()
            assert said(server.fake, 128) == [MODEL_FALLBACK[language]]
            assert said(server.fake, 129) == [MODEL_HANDOFF[language]]
            # notes are for the agents: the bot's default language (BOTKIT_LANGUAGE, English here)
            [summary] = notes(server.fake, 129)  # the hand-off summary, the handler's note in it
            assert "Note: The assistant handed this conversation over: asked for a person" in summary


@pytest.mark.parametrize("language", ["en", *LANGUAGES])
async def test_the_dead_letter_note_is_in_the_agents_language(language):
    bot = Bot("broken")

    @bot.fallback
    async def fail(ctx: Context) -> None:
        raise RuntimeError("boom")

    async with BotServer(bot, botkit_language=language, botkit_max_attempts=1) as server:
        server.fake.add_conversation(conversation_id=128, status="pending")
        await server.deliver(factories.contact_message("hi", browser_language="en"))
        await server.settle()
        [note] = notes(server.fake)
    expected = {"en": "The bot could not handle this conversation (RuntimeError); it is yours now.",
                "pt_BR": "O bot não conseguiu atender esta conversa (RuntimeError); agora ela é sua.",
                "es": "El bot no pudo atender esta conversación (RuntimeError); ahora es tuya.",
                "fr": "Le bot n'a pas pu traiter cette conversation (RuntimeError) ; elle est maintenant à vous.",
                "de": "Der Bot konnte diese Unterhaltung nicht bearbeiten (RuntimeError); sie gehört jetzt Ihnen."}
    # the hand-off summary, all of it in the agents' language, the dead letter's note in it
    title = {"en": "Hand-off summary (Jane Doe; language: en)",
             "pt_BR": "Resumo da transferência (Jane Doe; idioma: en)",
             "es": "Resumen de traspaso (Jane Doe; idioma: en)",
             "fr": "Résumé de transfert (Jane Doe ; langue : en)",
             "de": "Übergabe-Zusammenfassung (Jane Doe; Sprache: en)"}
    assert note.splitlines()[0] == title[language]
    assert expected[language] in note.splitlines()[2]


# a bot's own strings and rules --------------------------------------------------------------------------

def write_catalogue(root: Path, language: str, messages: dict[str, str]) -> None:
    from babel.messages.catalog import Catalog

    book = Catalog(locale=language)
    for msgid, text in messages.items():
        book.add(msgid, text)
    target = root / language / "LC_MESSAGES"
    target.mkdir(parents=True)
    with (target / "messages.mo").open("wb") as f:
        write_mo(f, book)


async def test_a_bots_own_catalogue_translates_its_strings_and_a_missing_one_falls_back_to_english(
        bot_flow, tmp_path):
    write_catalogue(tmp_path, "es", {"Your order has shipped.": "Tu pedido ya salió.",
                                     "Let me connect you with a human agent.": "Un momento, te paso con alguien."})
    write_catalogue(tmp_path, "fr", {"Something else": "Autre chose"})  # no translation of the shipped message
    bot = Bot("shop", locales=str(tmp_path))

    @bot.on_message("order", "pedido", "commande")
    async def shipped(ctx: Context) -> None:
        await ctx.reply(ctx.t("Your order has shipped."))

    bot.handlers.append(KeywordRouter([Rule(keywords=["human", "humain"],
                                            reply="Let me connect you with a human agent.", handoff=True)]))
    flow = await bot_flow(bot)
    await flow.send("pedido", browser_language="es")
    flow.expect_reply("Tu pedido ya salió.")
    await flow.send("commande", browser_language="fr")
    flow.expect_reply("Your order has shipped.")  # French has no translation of it: English
    await flow.send("human", browser_language="es")
    flow.expect_reply("Un momento, te paso con alguien.")  # the bot re-worded botkit's string
    other = flow.new_conversation()
    await other.send("humain", browser_language="fr")
    other.expect_reply(HANDOFF["fr"])  # the bot's catalogue lacks it, botkit's has it


async def test_keyword_rules_written_per_language(bot_flow):
    rules = [Rule(language="pt", keywords=["boleto"], reply="Segue o seu boleto."),
             Rule(language="es", keywords=["boleto"], reply="Aquí tienes tu billete."),
             Rule(keywords=["boleto"], reply="Here is your ticket.")]
    flow = await bot_flow(Bot("tickets", [KeywordRouter(rules)]))
    for browser, expected in [("pt-BR", "Segue o seu boleto."), ("es-MX", "Aquí tienes tu billete."),
                              ("de", "Here is your ticket.")]:
        await flow.send("meu boleto", browser_language=browser)
        flow.expect_reply(expected)


def test_a_rule_in_no_known_language_is_refused():
    with pytest.raises(ValueError, match="not a language"):
        Rule(language="xx-not", keywords=["a"])


def test_the_default_rules_understand_each_language():
    router = KeywordRouter.from_settings()
    for text in ("quero falar com um atendente", "necesito un agente", "je veux un conseiller",
                 "ich möchte einen Mitarbeiter"):
        assert router.rules[2].matches(text), text
    for text in ("minha fatura", "mi factura", "ma facturation", "meine Rechnung"):
        assert router.rules[0].matches(text), text
