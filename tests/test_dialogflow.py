"""The Dialogflow bot end to end: signed delivery -> botkit serve -> DialogflowHandler -> the real
SessionsAsyncClient (ES v2 or CX v3) over a loopback gRPC channel -> FakeDialogflow, and the bot's actions
through the real ChatwootClient to the fake Chatwoot."""

from __future__ import annotations

import asyncio
import json
import os

import grpc
import pytest

from botkit.adapters.dialogflow import DialogflowHandler
from botkit.bot import Bot
from botkit.config import ConfigError
from botkit.rich import InputSelect, Option
from botkit.summary import HEADER
from botkit.testing import factories
from botkit.testing.fake_dialogflow import (
    FakeDialogflow,
    LiveAgentHandoff,
    Payload,
    dialogflow_payload,
    handoff,
    resolve,
)
from botkit.testing.flow import BotFlow
from botkit.testing.harness import BotServer
from bots.dialogflow_agent import make_bot
from tests.test_logs import capture  # noqa: F401 (a fixture)

os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

SOURCE_ID = "3f2b7a0e-5c1d-4b8e-9a44-6d2f1c0e9b71"  # conversation.contact_inbox.source_id in the payloads
PREFIX = "/api/v1/accounts/1/conversations/128"
MENU = InputSelect("What can I help you with?", [Option("Track my order", "track_order"),
                                                  Option("Talk to a person", "human")])


def chatwoot_calls(fake):
    """What the bot asked of Chatwoot, in order, as (path suffix, body); the cosmetic typing left out."""
    return [(r.path.removeprefix(PREFIX), r.json) for r in fake.requests
            if r.path.startswith(PREFIX) and not r.path.endswith("toggle_typing_status")]


async def until(condition, timeout=5.0):
    """settle() returns once the event is a dead letter, a moment before the worker's fallback hand-off."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "the condition never came true"
        await asyncio.sleep(0.01)


def text(content):
    return ("/messages", {"content": content, "message_type": "outgoing", "private": False, "content_type": "text"})


class _Summary:
    """Equal to the hand-off summary note's call (botkit/summary.py)."""

    def __eq__(self, call: object) -> bool:
        return (isinstance(call, tuple) and call[0] == "/messages" and call[1].get("private") is True
                and call[1]["content"].startswith(HEADER))


SUMMARY = _Summary()


@pytest.fixture
async def dialogflow():
    fake = FakeDialogflow()
    async with fake.serve():
        yield fake


@pytest.fixture(params=["es", "cx"])
async def server(request, dialogflow):
    """The whole bot against an ES agent and, the second time, a CX agent scripted the same way."""
    if request.param == "es":
        bot = make_bot(project_id="acme-support", client=dialogflow.es_client())
    else:
        bot = make_bot(project_id="acme-support", location="europe-west1", cx_agent_id="agent-7",
                       client=dialogflow.cx_client())
    async with BotServer(bot, teams="billing=3") as server:
        server.fake.add_team(1, 3, "billing")
        server.fake.add_conversation(conversation_id=128, status="pending")
        server.api = request.param
        yield server


async def test_text_fulfillment_becomes_replies_in_order(server, dialogflow):
    dialogflow.on("hi", "Hello! I'm the Acme bot.", "Ask me about your order.")
    await server.deliver(factories.contact_message("hi"))
    await server.settle()
    assert chatwoot_calls(server.fake) == [text("Hello! I'm the Acme bot."), text("Ask me about your order.")]
    query = dialogflow.requests[-1]
    assert (query.api, query.text, query.language_code) == (server.api, "hi", "en-US")


async def test_the_session_is_the_contact_inbox_source_id(server, dialogflow):
    await server.deliver(factories.contact_message("hi"))
    await server.settle()
    session = dialogflow.requests[-1].session
    if server.api == "es":
        assert session == f"projects/acme-support/agent/sessions/{SOURCE_ID}"
    else:
        assert session == f"projects/acme-support/locations/europe-west1/agents/agent-7/sessions/{SOURCE_ID}"


async def test_rich_payload_then_the_contacts_choice_is_the_next_query(server, dialogflow):
    dialogflow.on("menu", dialogflow_payload(MENU.to_payload()))
    dialogflow.on("track_order", "Please give me your order number.")
    await server.deliver(factories.contact_message("menu"))
    await server.settle()
    sent = server.fake.messages(128)[-1]
    assert sent["content_type"] == "input_select"
    assert sent["content"] == "What can I help you with?"
    assert sent["content_attributes"]["items"] == [{"title": "Track my order", "value": "track_order"},
                                                   {"title": "Talk to a person", "value": "human"}]
    # the contact picks an option: Chatwoot sends message_updated for the bot's own message
    await server.deliver(factories.answer("track_order", message_id=sent["id"], options=MENU.items()))
    await server.settle()
    assert dialogflow.queries() == ["menu", "track_order"]
    assert server.fake.messages(128)[-1]["content"] == "Please give me your order number."


async def test_a_whatsapp_tap_is_the_options_value_as_on_the_widget(dialogflow):
    bot = make_bot(project_id="acme-support", client=dialogflow.es_client())
    dialogflow.on("menu", dialogflow_payload(MENU.to_payload()))
    dialogflow.on("track_order", "Please give me your order number.")
    async with BotFlow.start(bot, teams="billing=3", channel="whatsapp") as flow:
        await flow.send("menu")
        flow.expect_reply("What can I help you with?", options=["Track my order", "Talk to a person"])
        await flow.choose("Track my order")  # WhatsApp sends the title as a new message
        flow.expect_reply("Please give me your order number.")
    assert dialogflow.queries() == ["menu", "track_order"]


async def test_handoff_payload_opens_the_conversation(server, dialogflow):
    dialogflow.on("human please", "Connecting you to a person.", handoff())
    await server.deliver(factories.contact_message("human please"))
    await server.settle()
    assert chatwoot_calls(server.fake) == [text("Connecting you to a person."), SUMMARY,
                                           ("/toggle_status", {"status": "open"})]
    assert server.fake.conversation(128).status == "open"


async def test_handoff_with_a_team_assigns_it_first(server, dialogflow):
    dialogflow.on("invoice", handoff(team="billing"))
    await server.deliver(factories.contact_message("invoice"))
    await server.settle()
    assert chatwoot_calls(server.fake) == [SUMMARY, ("/assignments", {"team_id": 3}),
                                           ("/toggle_status", {"status": "open"})]


async def test_resolve_payload_resolves(server, dialogflow):
    dialogflow.on("thanks, bye", "Glad I could help!", resolve())
    await server.deliver(factories.contact_message("thanks, bye"))
    await server.settle()
    assert chatwoot_calls(server.fake) == [text("Glad I could help!"), ("/toggle_status", {"status": "resolved"})]
    assert server.fake.conversation(128).status == "resolved"


async def test_unavailable_is_retried_within_the_deadline(dialogflow):
    dialogflow.on("hi", "Hello!")
    dialogflow.fail_next(grpc.StatusCode.UNAVAILABLE, times=2)
    dialogflow.fail_next(grpc.StatusCode.RESOURCE_EXHAUSTED, times=1)
    bot = make_bot(project_id="acme-support", client=dialogflow.es_client())
    async with BotServer(bot, botkit_max_attempts=1) as server:  # only the handler's own retry can save it
        server.fake.add_conversation(conversation_id=128, status="pending")
        await server.deliver(factories.contact_message("hi"))
        await server.settle()
        assert dialogflow.queries() == ["hi"] * 4
        assert chatwoot_calls(server.fake) == [text("Hello!")]


async def test_unavailable_past_the_deadline_ends_in_the_dead_letter_hand_off(dialogflow):
    dialogflow.fail_next(grpc.StatusCode.UNAVAILABLE, times=1000)
    bot = make_bot(project_id="acme-support", client=dialogflow.es_client(), timeout=0.5)
    async with BotServer(bot, botkit_max_attempts=2) as server:
        server.fake.add_conversation(conversation_id=128, status="pending")
        await server.deliver(factories.contact_message("hi"))
        await server.settle()
        await until(lambda: server.fake.requests_to("POST", f"{PREFIX}/toggle_status"))
        calls = chatwoot_calls(server.fake)
        assert [path for path, _ in calls] == ["/messages", "/toggle_status"]
        assert calls[0][1]["private"] is True and "DialogflowUnavailable" in calls[0][1]["content"]
        assert 2 < len(dialogflow.requests) < 40  # retried, with backoff, and given up within each deadline


async def test_permission_denied_hands_off_at_once_with_a_note(server, dialogflow):
    dialogflow.fail_next(grpc.StatusCode.PERMISSION_DENIED, details="IAM permission 'dialogflow.sessions.detectIntent'")
    await server.deliver(factories.contact_message("hi"))
    await server.settle()
    assert len(dialogflow.requests) == 1  # no retry, neither ours nor the worker's
    calls = chatwoot_calls(server.fake)
    assert [path for path, _ in calls] == ["/messages", "/toggle_status"]
    note = calls[0][1]
    assert note["private"] is True and "PERMISSION_DENIED" in note["content"]
    assert calls[1][1] == {"status": "open"}


async def test_the_bot_ignores_what_chatwoots_integration_ignores(server, dialogflow):
    await server.deliver(factories.bot_echo("Hello!"))
    await server.deliver(factories.private_note("VIP customer"))
    await server.deliver(factories.status_update(9812))
    await server.deliver(factories.contact_message("hello?", status="open"))
    await server.settle()
    assert dialogflow.requests == [] and server.fake.requests == []


async def test_live_agent_handoff_of_cx_hands_off(dialogflow):
    dialogflow.on("agent", "One moment.", LiveAgentHandoff())
    bot = make_bot(project_id="acme-support", cx_agent_id="agent-7", client=dialogflow.cx_client())
    async with BotServer(bot) as server:
        server.fake.add_conversation(conversation_id=128, status="pending")
        await server.deliver(factories.contact_message("agent"))
        await server.settle()
        assert chatwoot_calls(server.fake) == [text("One moment."), SUMMARY, ("/toggle_status", {"status": "open"})]


async def test_fallback_n_times_in_a_row_hands_off(dialogflow):
    dialogflow.on("hi", "Hello!")
    bot = make_bot(project_id="acme-support", client=dialogflow.es_client(), fallback_handoff_after=2,
                   fallback_message="Let me find someone who can help.")
    async with BotServer(bot) as server:
        server.fake.add_conversation(conversation_id=128, status="pending")
        for query in ("blorp", "hi", "blorp", "zzz"):  # a match in between starts the count afresh
            await server.deliver(factories.contact_message(query))
            await server.settle()
        contents = [body.get("content") for _, body in chatwoot_calls(server.fake)]
        assert contents[:4] == ["Sorry, could you say that another way?", "Hello!",
                                "Sorry, could you say that another way?", "Let me find someone who can help."]
        assert contents[4].startswith(HEADER) and contents[5] is None and len(contents) == 6
        assert "Note: The Dialogflow agent did not understand the contact 2 times in a row." in contents[4]
        assert server.fake.conversation(128).status == "open"


async def test_language_from_the_contact(dialogflow):
    bot = make_bot(project_id="acme-support", client=dialogflow.es_client(), language_from_contact=True,
                   language_code="en-GB")
    async with BotServer(bot) as server:
        server.fake.add_conversation(conversation_id=128, status="pending")
        body = factories.contact_message("hola")
        body["sender"]["additional_attributes"]["language_code"] = "es"
        await server.deliver(body)
        await server.deliver(factories.contact_message("hello"))
        await server.settle()
    assert [(q.text, q.language_code) for q in dialogflow.requests] == [("hola", "es"), ("hello", "en-GB")]


# start-up -------------------------------------------------------------------------------------------------
@pytest.fixture
def no_google(monkeypatch, tmp_path):
    """No credentials anywhere, and google-auth never probes the metadata server."""
    monkeypatch.setenv("NO_GCE_CHECK", "true")
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:9")
    monkeypatch.setenv("GCE_METADATA_IP", "127.0.0.1:9")
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))  # no gcloud user credentials either
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env


@pytest.mark.parametrize("env, fragment", [
    ({}, "GOOGLE_APPLICATION_CREDENTIALS"),
    ({"GOOGLE_APPLICATION_CREDENTIALS": "/nowhere/key.json"}, "/nowhere/key.json was not found"),
    ({"DIALOGFLOW_CREDENTIALS_JSON": "{not json"}, "DIALOGFLOW_CREDENTIALS_JSON is not valid JSON"),
    ({"DIALOGFLOW_CREDENTIALS_JSON": '{"type": "service_account", "private_key": "s3cr3t"}'},
     "DIALOGFLOW_CREDENTIALS_JSON is not a service-account key"),
], ids=["nothing", "missing file", "broken json", "not a key"])
async def test_missing_or_broken_credentials_stop_startup(no_google, monkeypatch, env, fragment):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    handler = DialogflowHandler(project_id="acme-support")
    with pytest.raises(ConfigError) as error:
        await handler.startup(Bot())
    message = str(error.value)
    assert fragment in message
    assert "s3cr3t" not in message and message.count(". ") == 0 and message.endswith(".")


async def test_a_missing_project_stops_startup(no_google, dialogflow):
    with pytest.raises(ConfigError, match="DIALOGFLOW_PROJECT_ID"):
        await DialogflowHandler(client=dialogflow.es_client()).startup(Bot())


async def test_only_input_select_answers_are_queries_as_in_chatwoot(server, dialogflow):
    form = factories.answer("jane@example.com", message_id=9900)
    form["content_type"] = "form"  # Chatwoot's integration sends only input_select answers to Dialogflow
    form["content_attributes"]["submitted_values"] = [{"name": "email", "value": "jane@example.com"}]
    await server.deliver(form)
    await server.deliver(factories.answer("track_order", message_id=9901))
    await server.settle()
    assert dialogflow.queries() == ["track_order"]


def test_botkit_serve_stops_with_one_sentence_without_credentials(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "PYTHONPATH": str(root),
           "NO_GCE_CHECK": "true", "GCE_METADATA_HOST": "127.0.0.1:9", "GCE_METADATA_IP": "127.0.0.1:9",
           "GRPC_VERBOSITY": "ERROR", "BOTKIT_BOT": "bots.dialogflow_agent:bot", "DIALOGFLOW_PROJECT_ID": "p",
           "BOTKIT_STORE": "memory://", "BOTKIT_ALLOW_UNSIGNED": "true", "BOTKIT_PORT": "0"}
    done = subprocess.run([sys.executable, "-m", "botkit.cli", "serve"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "Dialogflow credentials could not be loaded" in done.stderr
    assert "GOOGLE_APPLICATION_CREDENTIALS" in done.stderr


def test_regional_endpoints_and_session_paths_follow_chatwoots_integration():
    from botkit.adapters.dialogflow import _CX, _ES, _endpoint, load_dialogflow_settings

    regional = load_dialogflow_settings(location="europe-west1")
    assert _endpoint(load_dialogflow_settings()) == "dialogflow.googleapis.com"
    assert _endpoint(regional) == "europe-west1-dialogflow.googleapis.com"
    assert _ES(regional, "p").request("s1", "hi", "de").session == "projects/p/locations/europe-west1/agent/sessions/s1"
    full = load_dialogflow_settings(cx_agent_id="projects/q/locations/us-central1/agents/a9")
    assert _CX(full, None).request("s1", "hi", "de").session == "projects/q/locations/us-central1/agents/a9/sessions/s1"
    with pytest.raises(ConfigError, match="DIALOGFLOW_TIMEOUT"):
        load_dialogflow_settings(timeout=-1)


async def test_a_transport_can_be_injected(dialogflow):
    from google.cloud.dialogflow_v2.services.sessions.transports import SessionsGrpcAsyncIOTransport

    dialogflow.on("hi", "Hello!")
    bot = make_bot(project_id="acme-support", transport=SessionsGrpcAsyncIOTransport(channel=dialogflow.channel()))
    async with BotServer(bot) as server:
        server.fake.add_conversation(conversation_id=128, status="pending")
        await server.deliver(factories.contact_message("hi"))
        await server.settle()
        assert chatwoot_calls(server.fake) == [text("Hello!")]


async def test_the_handlers_log_lines_carry_the_events_identity(server, dialogflow, capture):  # noqa: F811
    """The worker binds delivery_id, lane and event for every line of an event (botkit/logs.py): the handler
    passes nothing of its own (it reached into Context's private _log_extra before)."""
    dialogflow.on("dance", Payload({"action": "dance"}))
    buffer = capture("INFO", "json")
    await server.deliver(factories.contact_message("dance", conversation_id=128))
    await server.settle()
    [line] = [json.loads(line) for line in buffer.getvalue().splitlines() if "unknown action" in line]
    assert (line["logger"], line["level"], line["event"], line["handler"]) == (
        "botkit.dialogflow", "warning", "message_created", "dialogflow")
    assert line["lane"].endswith(":128") and line["delivery_id"]
