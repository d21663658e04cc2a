"""Every kind of hand-off leaves exactly one summary note before the conversation opens (real sockets)."""

from __future__ import annotations

import logging

import pytest

from botkit import Bot, Context, KeywordRouter, Rule
from botkit.adapters.knowledge import KnowledgeHandler
from botkit.adapters.openai import OpenAIHandler
from botkit.summary import HEADER
from botkit.testing.fake_openai import FakeOpenAI
from botkit.testing.flow import BotFlow


def one_summary_then_open(flow) -> str:
    """The step's actions hold exactly one note, the summary, and it comes before the hand-off; returns it."""
    kinds = [a.kind for a in flow.actions]
    notes = [a.value for a in flow.actions if a.kind == "note"]
    assert len(notes) == 1 and notes[0].startswith(HEADER), flow.history()
    assert kinds.index("note") < kinds.index("handoff") and kinds.count("handoff") == 1, flow.history()
    assert flow.status == "open"
    return notes[0]


async def test_a_handlers_handoff(bot_flow):
    bot = Bot("shop")

    @bot.on_message("refund")
    async def refund(ctx: Context) -> None:
        await ctx.reply("Let me get someone.")
        await ctx.handoff(note="Order 1234, paid twice.")

    @bot.fallback
    async def other(ctx: Context) -> None:
        await ctx.reply("Ask me about refunds.")

    flow = await bot_flow(bot)
    await flow.send("hi")
    await flow.send("I want a refund")
    summary = one_summary_then_open(flow)
    assert summary.splitlines() == [
        "Hand-off summary (Jane Doe; language: en)",
        "Why: the bot's handler handed the conversation over",
        "Note: Order 1234, paid twice.",
        "Wants: hi",
        "The bot answered: Ask me about refunds. | Let me get someone.",
        "Last message: I want a refund",
    ]


async def test_the_keyword_routers_handoff(bot_flow):
    flow = await bot_flow(Bot("kw", [KeywordRouter([Rule(keywords=["human"], reply="One moment.", handoff=True)])]))
    await flow.send("a human please")
    assert "Why: a keyword rule hands this over to a person" in one_summary_then_open(flow)


async def test_a_dead_letter_hands_off_with_one_summary(bot_flow):
    bot = Bot("broken")

    @bot.fallback
    async def fail(ctx: Context) -> None:
        raise RuntimeError("the shop's API is down")

    flow = await bot_flow(bot, botkit_max_attempts=2)
    await flow.send("where is my parcel?")
    summary = one_summary_then_open(flow)
    assert "Why: the bot failed on this conversation" in summary
    assert "Note: The bot could not handle this conversation (RuntimeError); it is yours now." in summary
    assert "Wants: where is my parcel?" in summary  # kept though the failed event never saved its state


async def test_a_closed_reply_window_hands_off_with_one_summary(bot_flow):
    flow = await bot_flow(Bot("win", [KeywordRouter([], fallback="Hello!")], when_cannot_reply="handoff"))
    await flow.send("hi", can_reply=False)
    assert "Why: the channel's reply window is closed" in one_summary_then_open(flow)


async def test_summary_off_keeps_the_handlers_own_note(bot_flow):
    bot = Bot("shop", summary="off")

    @bot.fallback
    async def handoff(ctx: Context) -> None:
        await ctx.handoff(note="Order 1234.")

    flow = await bot_flow(bot)
    await flow.send("refund")
    flow.expect_note("Order 1234.").expect_handoff().expect_no_action()


@pytest.fixture
async def model():
    fake = FakeOpenAI()
    async with fake.serve():
        yield fake


async def test_the_models_handoff_with_the_built_summary(bot_flow, model):
    model.call_tool("handoff_to_human", {"reason": "wants a refund"})
    bot = Bot("ai", [OpenAIHandler(api_key="test", base_url=model.base_url, max_retries=0)], summary="built")
    flow = await bot_flow(bot)
    await flow.send("I want my money back")
    summary = one_summary_then_open(flow)
    assert "Why: the model handed the conversation over" in summary and "Wants: I want my money back" in summary
    assert len(model.requests) == 1  # the model was asked to answer, not to summarise


async def test_the_models_handoff_with_the_models_summary(bot_flow, model, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    monkeypatch.setenv("OPENAI_BASE_URL", model.base_url)
    monkeypatch.setenv("OPENAI_MAX_RETRIES", "0")
    model.call_tool("handoff_to_human", {"reason": "wants a refund"})
    model.reply("Wants a refund of order 1234; the bot did not answer it.")
    flow = await bot_flow(Bot("ai", [OpenAIHandler()]))  # BOTKIT_SUMMARY=auto with a key: the model writes it
    await flow.send("I want my money back")
    summary = one_summary_then_open(flow)
    assert summary == ("Hand-off summary (Jane Doe; language: en)\nWhy: the model handed the conversation over\n"
                       "Note: The assistant handed this conversation over: wants a refund\n"
                       "Wants a refund of order 1234; the bot did not answer it.")
    asked = model.requests[1].json["messages"]
    assert "contact: I want my money back" in asked[-1]["content"]


async def test_a_failing_summary_model_gives_way_to_the_built_summary(bot_flow, model, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    monkeypatch.setenv("OPENAI_BASE_URL", model.base_url)
    monkeypatch.setenv("OPENAI_MAX_RETRIES", "0")
    model.fail(500)
    bot = Bot("kw", [KeywordRouter([Rule(keywords=["human"], reply="One moment.", handoff=True)])], summary="model")
    flow = await bot_flow(bot)
    await flow.send("a human please")
    assert "Wants: a human please" in one_summary_then_open(flow)


@pytest.fixture
async def elsewhere(monkeypatch):
    """Where the OPENAI_* settings point (unset, OPENAI_BASE_URL is OpenAI's public API): a second fake."""
    fake = FakeOpenAI()
    async with fake.serve():
        monkeypatch.setenv("OPENAI_API_KEY", "test")
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        monkeypatch.setenv("OPENAI_MAX_RETRIES", "0")
        yield fake


async def test_the_summary_is_written_by_the_bots_own_model_not_the_one_the_openai_settings_name(
        bot_flow, model, elsewhere, caplog):
    caplog.set_level(logging.INFO, logger="botkit.agents")
    model.call_tool("handoff_to_human", {"reason": "wants a refund"})
    model.reply("Wants a refund of order 1234.")
    bot = Bot("ai", [OpenAIHandler(base_url=model.base_url, model="local-model", max_retries=0)])
    flow = await bot_flow(bot)  # BOTKIT_SUMMARY=auto
    await flow.send("I want my money back")
    summary = one_summary_then_open(flow)
    assert summary.endswith("\nWants a refund of order 1234.")
    assert elsewhere.requests == []
    assert [r.json["model"] for r in model.requests] == ["local-model", "local-model"]  # the answer, the summary
    assert any(f"written by the bot's OpenAI handler (model local-model at {model.base_url}" in r.getMessage()
               for r in caplog.records)


async def test_a_knowledge_handlers_model_writes_the_summary_too(bot_flow, model, elsewhere):
    model.reply("Wants a person.")
    handler = KnowledgeHandler(model=OpenAIHandler(base_url=model.base_url, model="kb-model"))
    bot = Bot("kb", [KeywordRouter([Rule(keywords=["human"], reply="One moment.", handoff=True)]), handler])
    flow = await bot_flow(bot)
    await flow.send("a human please")
    assert one_summary_then_open(flow).endswith("\nWants a person.")
    assert [r.json["model"] for r in model.requests] == ["kb-model"] and elsewhere.requests == []


async def test_without_an_openai_handler_the_openai_settings_name_the_model_and_start_up_says_so(
        bot_flow, model, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="botkit.agents")
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    monkeypatch.setenv("OPENAI_BASE_URL", model.base_url)
    monkeypatch.setenv("OPENAI_MODEL", "summary-model")
    model.reply("Wants a person.")
    flow = await bot_flow(Bot("kw", [KeywordRouter([Rule(keywords=["human"], reply="One moment.", handoff=True)])]))
    await flow.send("a human please")
    assert one_summary_then_open(flow).endswith("\nWants a person.")
    assert [r.json["model"] for r in model.requests] == ["summary-model"]
    said = [r.getMessage() for r in caplog.records if r.name == "botkit.agents"]
    assert any(f"written by model summary-model at {model.base_url}" in line and "OPENAI_* settings" in line
               and "no OpenAI handler" in line for line in said), said


async def test_the_summary_and_the_commands_speak_the_agents_language(bot_flow):
    flow = await bot_flow(Bot("kw", [KeywordRouter([Rule(keywords=["humano"], reply="Un momento.", handoff=True)])]),
                          botkit_language="es")
    await flow.agent_note("/nada")
    flow.expect_note(lambda text: text.startswith("Comando desconocido /nada. Comandos:\n/send [n]: enviar"))
    await flow.send("quiero un humano")
    flow.expect_reply("Un momento.").expect_summary("Por qué: una regla de palabras clave", "Quiere: quiero un humano")
    assert flow.actions[1].value.startswith("Resumen de traspaso (Jane Doe; idioma: en)")


@pytest.mark.parametrize("channel", ["whatsapp", "telegram", "web", "sms"])
async def test_the_summary_shows_the_menu_pick_the_contact_saw_not_its_value(channel):
    """A tap comes back as the title (WhatsApp), the value (Telegram), `submitted_values` (the widget) or a
    typed number (a numbered menu); the agent reads the title the contact picked on every channel."""
    from botkit.rich import InputSelect, Option

    bot = Bot("shop")

    @bot.on_answer("human")
    async def to_human(ctx: Context) -> None:
        await ctx.handoff()

    @bot.fallback
    async def menu(ctx: Context) -> None:
        await ctx.reply(InputSelect("What would you like to do?",
                                    [Option("Track my order", "track"), Option("Talk to a human", "human")]))

    async with BotFlow.start(bot, channel=channel) as flow:
        await flow.send("Where is my parcel?")
        await flow.choose("Talk to a human")
        summary = one_summary_then_open(flow)
    assert "Wants: Where is my parcel?" in summary
    assert "Last message: Talk to a human" in summary.splitlines(), summary
