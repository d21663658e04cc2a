"""KnowledgeHandler end to end over real sockets: `botkit kb add`, then signed deliveries through the served bot
(receiver -> SQLite store -> worker -> handler -> ChatwootClient -> FakeChatwoot), and with a model, the real
openai client against FakeOpenAI."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from botkit import Bot
from botkit.adapters.knowledge import KnowledgeHandler
from botkit.adapters.openai import OpenAIHandler
from botkit.cli import main
from botkit.config import ConfigError
from botkit.knowledge import Document, KnowledgeBase, SQLiteIndex
from botkit.plugins import load_handler
from botkit.testing import factories
from botkit.testing.fake_openai import FakeOpenAI
from botkit.testing.harness import BotServer
from tests.support.knowledge import FAQ, HTML, MARKDOWN, WordVectors, make_pdf

KEY = "sk-test-0123456789abcdef"
PAY = "https://shop.example.com/pay"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A SQLite store file whose knowledge base `botkit kb add` filled from a folder of every kind."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "password.md").write_text(MARKDOWN)
    (folder / "shipping.html").write_text(HTML)
    (folder / "refunds.pdf").write_bytes(make_pdf("Refund policy", ["Refunds reach your card within 14 days."]))
    (folder / "faq.csv").write_text(FAQ)
    url = f"sqlite:///{tmp_path / 'botkit.db'}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BOTKIT_STORE", url)
    for name in ("BOTKIT_KB_EMBEDDINGS", "BOTKIT_KB_WHEN_UNSURE", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    assert main(["kb", "add", str(folder)]) == 0
    return url


@contextlib.asynccontextmanager
async def serving(handlers, store: str = "memory://", **settings):
    async with BotServer(Bot("kb", handlers, typing_after=None), store=store, **settings) as server:
        for conversation_id in (128, 129):
            server.fake.add_conversation(conversation_id=conversation_id, status="pending")
        yield server


async def tell(server, text: str, conversation_id: int = 128, channel: str | None = None) -> None:
    await server.deliver(factories.contact_message(text, conversation_id=conversation_id, channel=channel))
    await server.settle()


def replies(server, conversation_id: int = 128) -> list[dict]:
    return [m for m in server.fake.messages(conversation_id) if m["message_type"] == 1 and not m.get("private")]


def notes(server, conversation_id: int = 128) -> list[str]:
    return [m["content"] for m in server.fake.messages(conversation_id) if m.get("private")]


async def test_an_answer_with_its_source_and_a_gap_handed_on(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    async with serving([KnowledgeHandler()], store) as server:
        await tell(server, "Can I pay with PayPal?", channel="Channel::WebWidget")
        [card] = replies(server)
        assert card["content_type"] == "article"
        [item] = card["content_attributes"]["items"]
        assert item["title"] == "Can I pay with PayPal?" and item["link"] == PAY
        assert card["content"].startswith("Yes, we accept PayPal")

        await tell(server, "do you accept paypal", conversation_id=129, channel="Channel::Whatsapp")
        [text] = replies(server, 129)
        assert text["content_type"] == "text"
        assert text["content"] == f"Yes, we accept PayPal, Visa and Mastercard.\n\nCan I pay with PayPal?: {PAY}"

        await tell(server, "What is the capital of France?")  # not in the documents: passed on, nobody answers
        assert len(replies(server)) == 1 and server.fake.conversation(128).status == "pending"
    capsys.readouterr()
    assert main(["kb", "gaps"]) == 0
    [gap] = capsys.readouterr().out.splitlines()
    assert gap.split("\t")[1:] == ["unanswered", gap.split("\t")[2], "1/128", "What is the capital of France?"]


async def test_a_question_the_documents_do_not_cover_is_handed_off_when_configured(store: str) -> None:
    async with serving([KnowledgeHandler()], store, botkit_kb_when_unsure="handoff") as server:
        await tell(server, "Do you sell garden gnomes?")
        assert server.fake.conversation(128).status == "open"
        assert [m["content"] for m in replies(server)] == [
            "I don't know the answer to that, so I'm passing you to a member of our team."]
        assert "no answer to this question" in notes(server)[0]


async def test_a_request_for_a_person_is_handed_off_and_recorded(store: str) -> None:
    async with serving([KnowledgeHandler(team="billing")], store, teams="billing=3") as server:
        server.fake.add_team(1, 3, "billing")
        await tell(server, "I want to speak to a real person please")
        conversation = server.fake.conversation(128)
        assert conversation.status == "open" and conversation.team_id == 3
        assert "routes this question to a person" in notes(server)[0]
    gaps = KnowledgeBase(SQLiteIndex(store.removeprefix("sqlite:///"))).index.gaps()
    assert [(g.question, g.reason) for g in gaps] == [("I want to speak to a real person please", "human")]


async def test_the_next_handler_gets_what_the_knowledge_base_passes_on(store: str) -> None:
    from botkit import KeywordRouter

    fallback = KeywordRouter([], fallback="Ask me about payments, shipping or passwords.")
    async with serving([KnowledgeHandler(), fallback], store) as server:
        await tell(server, "tell me a joke")
        assert [m["content"] for m in replies(server)] == ["Ask me about payments, shipping or passwords."]


# with a model ---------------------------------------------------------------------------------------------

def small_kb() -> KnowledgeBase:
    kb = KnowledgeBase(SQLiteIndex(":memory:"))
    kb.add([Document("pay", "Payment methods", "We accept PayPal, Visa and Mastercard.", link=PAY),
            Document("ship", "Shipping", "Parcels leave our warehouse within two days.")])
    return kb


@contextlib.asynccontextmanager
async def with_model(**handler_options):
    fake = FakeOpenAI(api_key=KEY)
    async with fake.serve():
        model = OpenAIHandler(api_key=KEY, base_url=fake.base_url, env_file=None)
        async with serving([KnowledgeHandler(knowledge=small_kb(), model=model, **handler_options)]) as server:
            yield server, fake


async def test_the_model_answers_from_the_passages_and_its_citations_become_sources() -> None:
    async with with_model() as (server, fake):
        fake.reply("Yes, PayPal works [1].")
        await tell(server, "which payment methods do you accept?")
        [request] = fake.requests
        system = request.conversation[0]["content"]
        assert "using only the numbered passages below" in system
        assert f"[1] Payment methods ({PAY})\nWe accept PayPal, Visa and Mastercard." in system
        assert request.conversation[-1] == {"role": "user", "content": "which payment methods do you accept?"}
        assert [m["content"] for m in replies(server)] == [f"Yes, PayPal works [1].\n\n[1] Payment methods: {PAY}"]


async def test_the_model_is_not_called_for_a_person_or_an_unanswered_question() -> None:
    async with with_model(when_unsure="handoff") as (server, fake):
        await tell(server, "I want to file a complaint")
        await tell(server, "what is the meaning of life", conversation_id=129)
        assert fake.requests == []
        assert server.fake.conversation(128).status == "open" and server.fake.conversation(129).status == "open"


# start-up -------------------------------------------------------------------------------------------------

async def test_an_index_built_with_another_model_stops_start_up_with_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "botkit.db"
    KnowledgeBase(SQLiteIndex(str(path)), WordVectors()).add([Document("a", "A", "alpha")])
    with pytest.raises(ConfigError, match="botkit kb reindex"):
        async with serving([KnowledgeHandler()], f"sqlite:///{path}"):
            pass


def test_the_handler_is_the_plugin_named_knowledge() -> None:
    assert isinstance(load_handler("knowledge"), KnowledgeHandler)


async def test_the_ready_knowledge_assistant_routes_keywords_answers_and_hands_off(store: str) -> None:
    from bots.knowledge_assistant import make_bot

    bot = make_bot(model=False)
    async with BotServer(bot, store=store, teams="billing=3,technical=4") as server:
        server.fake.add_team(1, 3, "billing")
        for conversation_id in (128, 129, 130):
            server.fake.add_conversation(conversation_id=conversation_id, status="pending")
        await tell(server, "I have a billing question")
        assert server.fake.conversation(128).team_id == 3
        await tell(server, "how long until my refund reaches my card", conversation_id=129)
        assert "Refunds reach your card within 14 days" in replies(server, 129)[0]["content"]
        await tell(server, "can you repair my bicycle", conversation_id=130)
        assert server.fake.conversation(130).status == "open"


async def test_a_handler_after_one_that_hands_off_every_unanswered_question_stops_start_up(store: str) -> None:
    from botkit import KeywordRouter

    with pytest.raises(ConfigError, match="comes after 'knowledge', which answers every message_created"):
        async with serving([KnowledgeHandler(when_unsure="handoff"), KeywordRouter([], fallback="Hi")], store):
            pass


async def test_a_question_the_knowledge_base_cannot_answer_is_an_outcome_gap(store: str) -> None:
    from botkit.figures import from_store

    async with serving([KnowledgeHandler()], store) as server:
        await tell(server, "Can I pay with PayPal?")
        await tell(server, "What is the capital of France?", conversation_id=129)
        await tell(server, "Do you sell garden gnomes?", conversation_id=129)
        report = await from_store(server.store, since=0, until=4e9)
        timelines = [r.data for r in await server.store.records("delivery")]
    assert report.total.kb_gaps == 2  # the two questions the documents do not cover; the answered one is not
    assert report.total.conversations == 1  # the answered conversation; the gaps were passed on
    kb_steps = [s for t in timelines for s in t["steps"] if s["kind"] == "kb"]
    assert [s["answered"] for s in kb_steps] == [True, False, False]
