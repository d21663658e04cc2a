"""OpenAIHandler end to end: the real AsyncOpenAI against FakeOpenAI, the whole bot through BotServer.

Every test runs over loopback sockets: a signed delivery -> botkit serve -> worker -> handler -> the real openai
client -> FakeOpenAI, then the real ChatwootClient -> FakeChatwoot. Main flows run on both APIs.
"""

from __future__ import annotations

import contextlib
import json
import logging

import pytest

from botkit import Bot
from botkit.adapters.openai import OpenAIHandler, Tool, trim
from botkit.app import DEFAULT_BOT_NAME, build_app, preflight
from botkit.config import ConfigError, load_settings
from botkit.context import Context
from botkit.store import lane_for
from botkit.testing import factories
from botkit.testing.fake_openai import FakeOpenAI
from botkit.testing.harness import BotServer

KEY = "sk-test-0123456789abcdef"
PATH = "/api/v1/accounts/1/conversations/128"
APIS = ["chat", "responses"]


pytestmark = pytest.mark.usefixtures("no_openai_env")


@contextlib.asynccontextmanager
async def running(fake: FakeOpenAI | None = None, *, teams: str | None = "billing=3", bot_options=None, **options):
    """FakeOpenAI and a bot made of one OpenAIHandler, served; yields (server, fake)."""
    fake = fake or FakeOpenAI(api_key=KEY)
    async with fake.serve():
        options = {"api_key": KEY, "base_url": fake.base_url, "env_file": None, **options}
        bot = Bot("assistant", [OpenAIHandler(**options)], **(bot_options or {"typing_after": None}))
        async with BotServer(bot, teams=teams) as server:
            server.fake.add_team(1, 3, "billing")
            server.fake.add_conversation(conversation_id=128, status="pending")
            yield server, fake


def chatwoot_calls(fake):
    """What the bot asked of Chatwoot for conversation 128, typing aside: (method, path suffix, body)."""
    return [(r.method, r.path.removeprefix(PATH), r.json) for r in fake.requests
            if r.path.startswith(PATH) and not r.path.endswith("/toggle_typing_status")]


def said(fake):
    """The public messages the contact received."""
    return [m["content"] for m in fake.messages(128) if m["message_type"] == 1 and not m.get("private")]


def notes(fake):
    return [m["content"] for m in fake.messages(128) if m.get("private")]


async def tell(server, text):
    await server.deliver(factories.contact_message(text))
    await server.settle()


@pytest.mark.parametrize("api", APIS)
async def test_a_plain_answer_reaches_the_contact(api):
    async with running(api=api) as (server, fake):
        fake.reply("Hello Jane, how can I help?")
        await tell(server, "hi there")
        assert said(server.fake) == ["Hello Jane, how can I help?"]
        assert server.fake.conversation(128).status == "pending"  # the bot keeps the conversation
        [request] = fake.requests
        assert request.api == api
        assert request.headers["authorization"] == f"Bearer {KEY}"
        system, user = request.conversation
        assert system["role"] == "system" and "Acme Website" in system["content"]
        assert user == {"role": "user", "content": "hi there"}
        assert set(request.tool_names) == {"handoff_to_human", "assign_team", "add_labels", "resolve_conversation"}
        typing = [r.json["typing_status"] for r in server.fake.requests if r.path.endswith("/toggle_typing_status")]
        assert typing == ["on", "off"]


async def test_the_system_prompt_is_a_template_of_the_contact_and_the_inbox():
    prompt = "Help {contact_name} on {channel} ({inbox}); plan {attributes[plan]}; unknown '{attributes[nope]}'."
    async with running(system_prompt=prompt) as (server, fake):
        fake.reply("ok")
        await tell(server, "hi")
        system = fake.requests[0].conversation[0]["content"]
        assert system == "Help Jane Doe on WebWidget (Acme Website); plan pro; unknown ''."


@pytest.mark.parametrize("api", APIS)
async def test_the_transcript_grows_across_turns_and_is_trimmed_to_its_budget(api):
    async with running(api=api, history_turns=4) as (server, fake):
        for number in range(1, 5):
            fake.reply(f"answer {number}")
        for number in range(1, 5):
            await tell(server, f"question {number}")
        sent = [[m["content"] for m in r.conversation[1:]] for r in fake.requests]
        assert sent[0] == ["question 1"]
        assert sent[1] == ["question 1", "answer 1", "question 2"]
        assert sent[2] == ["question 1", "answer 1", "question 2", "answer 2", "question 3"]
        assert sent[3] == ["question 2", "answer 2", "question 3", "answer 3", "question 4"]  # 4 kept + the new one
        state = await server.store.get_state(lane_for(DEFAULT_BOT_NAME, "1:128"))
        assert [m["content"] for m in state["openai"]["transcript"]] == [
            "question 3", "answer 3", "question 4", "answer 4"]
        assert state["openai"]["calls"] == 4 and state["openai"]["tokens"] == 4 * 30


async def test_resolving_the_conversation_forgets_the_transcript():
    async with running() as (server, fake):
        fake.reply("first answer")
        fake.reply("fresh answer")
        await tell(server, "first question")
        await server.deliver(factories.conversation_event("conversation_resolved", status="resolved"))
        await tell(server, "new question")
        assert [m["content"] for m in fake.requests[1].conversation[1:]] == ["new question"]


def test_trim_keeps_the_newest_messages_within_the_character_budget():
    transcript = [{"role": "user", "content": "a" * 60}, {"role": "assistant", "content": "b" * 60},
                  {"role": "user", "content": "c" * 30}]
    trim(transcript, turns=10, chars=100)
    assert [m["content"][0] for m in transcript] == ["b", "c"]
    huge = [{"role": "user", "content": "x" * 500}]
    trim(huge, turns=10, chars=100)
    assert huge == [{"role": "user", "content": "x" * 100}]


@pytest.mark.parametrize("api", APIS)
async def test_a_handoff_tool_call_hands_the_conversation_to_the_team(api):
    async with running(api=api) as (server, fake):
        fake.call_tool("handoff_to_human", {"reason": "wants a refund", "team": "billing"})
        await tell(server, "I want my money back")
        assert chatwoot_calls(server.fake) == [
            ("POST", "/messages", {"content": "I'm handing you over to a member of our team.",
                                   "message_type": "outgoing", "private": False, "content_type": "text"}),
            ("POST", "/messages", {"content": notes(server.fake)[0], "message_type": "outgoing", "private": True,
                                   "content_type": "text"}),
            ("POST", "/assignments", {"team_id": 3}),
            ("POST", "/toggle_status", {"status": "open"}),
        ]
        assert notes(server.fake)[0].startswith("Hand-off summary") and \
            "Note: The assistant handed this conversation over: wants a refund" in notes(server.fake)[0]
        assert server.fake.conversation(128).status == "open"
        assert len(fake.requests) == 1  # a hand-off ends the turn: no second model call


async def test_text_beside_a_handoff_is_said_instead_of_the_handoff_message_and_unknown_teams_are_noted():
    async with running() as (server, fake):
        fake.call_tool("handoff_to_human", {"reason": "legal question", "team": "legal"}, text="One moment please.")
        await tell(server, "can I sue you")
        assert said(server.fake) == ["One moment please."]
        assert "team 'legal', which the bot does not know" in notes(server.fake)[0]
        assert server.fake.requests_to("POST", f"{PATH}/assignments") == []
        assert server.fake.conversation(128).status == "open"


@pytest.mark.parametrize("api", APIS)
async def test_tool_results_go_back_to_the_model(api):
    async with running(api=api) as (server, fake):
        fake.call_tools([("add_labels", {"labels": ["vip"]}), ("assign_team", {"team": "billing"})])
        fake.reply("Done, billing will follow up.")
        await tell(server, "label me")
        assert said(server.fake) == ["Done, billing will follow up."]
        conversation = server.fake.conversation(128)
        assert conversation.labels == ["vip"] and conversation.team_id == 3 and conversation.status == "pending"
        followup = fake.requests[1].conversation
        if api == "chat":
            assert [m["role"] for m in followup] == ["system", "user", "assistant", "tool", "tool"]
            assert [m["content"] for m in followup[3:]] == ["labels added", "assigned to billing"]
        else:
            assert [m.get("type", "message") for m in followup[1:]] == [
                "message", "function_call", "function_call", "function_call_output", "function_call_output"]
            assert [m["output"] for m in followup[4:]] == ["labels added", "assigned to billing"]


async def test_a_user_tool_is_described_from_its_signature_and_gets_the_context():
    seen = {}

    async def order_status(ctx: Context, order_id: int, verbose: bool = False) -> dict:
        """Look up an order's delivery status.

        Args:
            order_id: The number on the contact's receipt.
        """
        seen["conversation"] = ctx.conversation_id
        return {"order": order_id, "status": "shipped"}

    async with running(tools=[order_status]) as (server, fake):
        fake.call_tool("order_status", {"order_id": "1234"})
        fake.reply("It has shipped.")
        await tell(server, "where is order 1234?")
        assert said(server.fake) == ["It has shipped."]
        assert seen == {"conversation": 128}
        spec = next(t["function"] for t in fake.requests[0].json["tools"] if t["function"]["name"] == "order_status")
        assert spec["description"] == "Look up an order's delivery status."
        assert spec["parameters"]["required"] == ["order_id"]
        assert spec["parameters"]["properties"]["order_id"] == {
            "type": "integer", "description": "The number on the contact's receipt."}
        assert json.loads(fake.requests[1].conversation[-1]["content"]) == {"order": 1234, "status": "shipped"}


def test_a_sync_tool_without_context():
    def add(a: int, b: int = 2) -> int:
        """Add two numbers."""
        return a + b

    tool = Tool.from_function(add)
    assert tool.parameters["required"] == ["a"] and tool.description == "Add two numbers."


async def test_bad_tool_arguments_go_back_to_the_model_to_correct():
    async with running() as (server, fake):
        fake.call_tool("assign_team", {})
        fake.call_tool("no_such_tool", {})
        fake.reply("Sorry about that.")
        await tell(server, "hello")
        assert fake.requests[1].conversation[-1]["content"].startswith("error: bad arguments for assign_team")
        assert fake.requests[2].conversation[-1]["content"] == "error: there is no tool named no_such_tool"
        assert said(server.fake) == ["Sorry about that."]


FAILURES = [
    pytest.param(lambda fake: fake.fail(429, times=3, retry_after_ms=1), {}, 3,
                 "the model provider rate-limited the bot (HTTP 429) after 3 attempts", id="429"),
    pytest.param(lambda fake: fake.fail(500, times=3, retry_after_ms=1), {}, 3,
                 "the model server failed (HTTP 500) after 3 attempts", id="500"),
    pytest.param(lambda fake: fake.reply("too late", delay=30, times=2), {"timeout": 0.3, "max_retries": 1}, 2,
                 "the model did not answer within 0.3 s after 2 attempts", id="timeout"),
]


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize(("script", "options", "attempts", "reason"), FAILURES)
async def test_a_failing_model_is_retried_once_by_the_sdk_then_the_conversation_is_handed_off(
        api, script, options, attempts, reason):
    async with running(api=api, **options) as (server, fake):
        script(fake)
        await tell(server, "hello?")
        assert [r.retry_count for r in fake.requests] == list(range(attempts))  # one layer: the SDK's
        assert said(server.fake) == ["Sorry, I can't answer right now. A member of our team will get back to you "
                                     "shortly."]
        [summary] = notes(server.fake)
        assert f"Note: The assistant could not answer: {reason}. The conversation is yours now." in summary
        assert server.fake.conversation(128).status == "open"
        stats = await server.store.stats()
        assert stats.dead_letters == 0  # handled, not raised: the worker did not retry and apologise twice


async def test_a_model_server_that_refuses_connections_is_not_reported_as_a_timeout():
    # Under the SDK's aiohttp client a refused connection arrives as APITimeoutError (its cause an
    # httpx.ConnectTimeout); the note said "did not answer within 20 s" of a server that was down.
    from tests.conftest import free_port

    options = {"api_key": KEY, "base_url": f"http://127.0.0.1:{free_port()}/v1", "env_file": None, "max_retries": 0}
    bot = Bot("assistant", [OpenAIHandler(**options)], typing_after=None)
    async with BotServer(bot, teams="billing=3") as server:
        server.fake.add_conversation(conversation_id=128, status="pending")
        await tell(server, "hello?")
        [summary] = notes(server.fake)
    assert "The assistant could not answer: the model server could not be reached." in summary, summary.splitlines()[2]


async def test_a_model_that_recovers_within_the_sdk_retries_answers_normally():
    async with running() as (server, fake):
        fake.fail(429, retry_after_ms=1)
        fake.reply("Here I am.")
        await tell(server, "hello?")
        assert [r.retry_count for r in fake.requests] == [0, 1]
        assert said(server.fake) == ["Here I am."] and notes(server.fake) == []


@pytest.mark.parametrize("api", APIS)
async def test_an_auth_error_is_told_apart_from_a_rate_limit(api, caplog):
    caplog.set_level(logging.INFO)
    async with running(FakeOpenAI(api_key="sk-the-right-key"), api=api) as (server, fake):
        await tell(server, "hello?")
        assert len(fake.requests) == 1  # 401 is not worth retrying
        [note] = notes(server.fake)
        assert "refused the API key (HTTP 401): check OPENAI_API_KEY" in note and "rate" not in note
        assert server.fake.conversation(128).status == "open"
    failures = [r for r in caplog.records if hasattr(r, "failure")]
    assert [(r.levelname, r.failure) for r in failures] == [("ERROR", "auth")]
    assert all(KEY not in r.getMessage() and "hello?" not in r.getMessage() for r in caplog.records)


async def test_an_exhausted_quota_is_not_reported_as_a_rate_limit():
    async with running(max_retries=0) as (server, fake):
        fake.fail(429, code="insufficient_quota")
        await tell(server, "hello?")
        assert "quota is used up (HTTP 429 insufficient_quota)" in notes(server.fake)[0]


async def test_a_missing_api_key_stops_start_up_with_one_sentence():
    settings = load_settings(env_file=None, chatwoot_webhook_secret="secret", botkit_store="memory://")
    bot = Bot("assistant", [OpenAIHandler(env_file=None)])
    with pytest.raises(ConfigError) as error:
        await preflight(build_app(settings, bot))
    assert str(error.value).startswith("OPENAI_API_KEY must be set for the OpenAI handler")


async def test_the_key_can_come_from_botkit_settings_and_a_file(tmp_path, monkeypatch):
    (tmp_path / "key").write_text(KEY + "\n")
    monkeypatch.setenv("OPENAI_API_KEY_FILE", str(tmp_path / "key"))
    fake = FakeOpenAI(api_key=KEY)
    fake.reply("authorised")
    async with fake.serve():
        bot = Bot("assistant", [OpenAIHandler(base_url=fake.base_url, env_file=None)], typing_after=None)
        async with BotServer(bot) as server:
            server.fake.add_conversation(conversation_id=128, status="pending")
            await tell(server, "hi")
            assert said(server.fake) == ["authorised"]


async def test_the_call_cap_hands_off_without_calling_the_model():
    async with running(max_calls_per_conversation=2) as (server, fake):
        fake.reply("one")
        fake.reply("two")
        await tell(server, "first")
        await tell(server, "second")
        await tell(server, "third")
        assert len(fake.requests) == 2
        assert said(server.fake)[-1].startswith("Sorry, I can't answer right now.")
        [summary] = notes(server.fake)
        assert ("Note: The assistant could not answer: the conversation reached the bot's limit of 2 model calls. "
                "The conversation is yours now.") in summary
        assert server.fake.conversation(128).status == "open"


@pytest.mark.parametrize("api", APIS)
async def test_the_token_cap_hands_off(api):
    async with running(api=api, max_tokens_per_conversation=100) as (server, fake):
        fake.reply("a long answer", prompt_tokens=80, completion_tokens=40)
        await tell(server, "first")
        await tell(server, "second")
        assert len(fake.requests) == 1
        assert "limit of 100 model tokens" in notes(server.fake)[0]


async def test_a_model_that_keeps_calling_tools_is_stopped_after_its_rounds():
    async with running(max_tool_rounds=1) as (server, fake):
        fake.call_tool("add_labels", {"labels": ["a"]})
        fake.call_tool("add_labels", {"labels": ["b"]})
        await tell(server, "hi")
        assert len(fake.requests) == 2
        assert "kept calling tools for 2 rounds" in notes(server.fake)[0]
        assert server.fake.conversation(128).status == "open"


async def test_prompts_and_messages_stay_out_of_info_logs(caplog):
    caplog.set_level(logging.INFO)
    async with running(system_prompt="SECRET-PROMPT for {contact_name}") as (server, fake):
        fake.call_tool("add_labels", {"labels": ["x"]})
        fake.reply("PRIVATE-ANSWER")
        await tell(server, "PRIVATE-QUESTION")
        assert said(server.fake) == ["PRIVATE-ANSWER"]
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "the model answered" in text
    for secret in ("SECRET-PROMPT", "PRIVATE-ANSWER", "PRIVATE-QUESTION", KEY, "Jane"):
        assert secret not in text


@pytest.mark.parametrize("api", APIS)
async def test_a_retried_event_replays_the_models_answer_instead_of_asking_again(api):
    fake = FakeOpenAI(api_key=KEY)
    fake.call_tools([("add_labels", {"labels": ["vip"]})], text="Let me label that.")
    fake.reply("Labelled.")
    async with fake.serve():
        handler = OpenAIHandler(api_key=KEY, base_url=fake.base_url, env_file=None, api=api, typing=False)
        bot = Bot("assistant", [handler], typing_after=None)
        async with BotServer(bot, chatwoot_retry_deadline=0.1, botkit_max_attempts=6) as server:
            server.fake.add_conversation(conversation_id=128, status="pending")
            # reading the labels fails for a while: the client gives up, the worker retries the whole event
            server.fake.fail_next("GET", f"{PATH}/labels", status=503, times=3)
            await tell(server, "please label me")
            assert said(server.fake) == ["Let me label that.", "Labelled."]  # each said once
            assert server.fake.conversation(128).labels == ["vip"]
            assert len(fake.requests) == 2  # the first answer was replayed on the retry, not asked for again
            assert len(server.fake.requests_to("GET", f"{PATH}/labels")) > 1  # the event did run again
