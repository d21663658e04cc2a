"""The hand-off summary: the transcript the bot keeps, the built summary, and the model's over a real socket."""

from __future__ import annotations

from typing import Any

import openai

from botkit.summary import KEEP, HandoffFacts, ModelSummarizer, built_summary, remember, transcript_of
from botkit.testing.fake_openai import FakeOpenAI


def test_the_transcript_keeps_the_last_lines_cut_short() -> None:
    state: dict[str, Any] = {}
    for number in range(KEEP + 5):
        remember(state, "contact", f"message {number}")
    remember(state, "bot", "x" * 2000)
    remember(state, "bot", "   ")  # nothing said: nothing kept
    lines = transcript_of(state)
    assert len(lines) == KEEP
    assert lines[0] == ("contact", "message 6")
    assert lines[-1][0] == "bot" and len(lines[-1][1]) == 500


def test_a_malformed_transcript_is_read_as_far_as_it_goes() -> None:
    assert transcript_of({"transcript": "oops"}) == []
    assert transcript_of({"transcript": [["contact", "hi"], ["bot"], 3]}) == [("contact", "hi")]


def test_the_built_summary_says_what_the_contact_wants_what_the_bot_answered_language_and_why() -> None:
    facts = HandoffFacts(reason="the contact asked for a person", contact_name="Jane Doe", language="pt-BR",
                         transcript=[("contact", "My parcel never arrived"), ("bot", "Can you give me the order?"),
                                     ("contact", "I want to talk to a human")], detail="Order 1234")
    text = built_summary(facts)
    assert text.splitlines() == [
        "Hand-off summary (Jane Doe; language: pt-BR)",
        "Why: the contact asked for a person",
        "Note: Order 1234",
        "Wants: My parcel never arrived",
        "The bot answered: Can you give me the order?",
        "Last message: I want to talk to a human",
    ]


def test_the_built_summary_with_nothing_kept() -> None:
    text = built_summary(HandoffFacts(reason="the bot failed", transcript=[]))
    assert "language: unknown" in text and "The bot answered: nothing yet" in text


async def test_the_model_writes_the_summary_from_the_transcript() -> None:
    fake = FakeOpenAI()
    fake.reply("Wants a refund for order 1234; the bot asked for the order number.")
    async with fake.serve():
        client = openai.AsyncOpenAI(base_url=fake.base_url, api_key="test", max_retries=0)
        summarizer = ModelSummarizer(client, "gpt-4o-mini", timeout=5)
        facts = HandoffFacts(reason="the model called handoff_to_human", language="en",
                             transcript=[("contact", "I want a refund"), ("bot", "Which order?")])
        text = await summarizer.write(facts)
        await summarizer.close()
    assert text == ("Hand-off summary (the contact; language: en)\nWhy: the model called handoff_to_human\n"
                    "Wants a refund for order 1234; the bot asked for the order number.")
    sent = fake.requests[0].json["messages"][-1]["content"]
    assert "contact: I want a refund\nbot: Which order?" in sent
    assert "the model called handoff_to_human" in sent


async def test_a_failing_model_gives_way_to_the_built_summary() -> None:
    fake = FakeOpenAI()
    fake.fail(500)
    async with fake.serve():
        client = openai.AsyncOpenAI(base_url=fake.base_url, api_key="test", max_retries=0)
        summarizer = ModelSummarizer(client, "gpt-4o-mini", timeout=5)
        assert await summarizer.write(HandoffFacts(reason="x", transcript=[])) is None
        await summarizer.close()
    assert len(fake.requests) == 1
