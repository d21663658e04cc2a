"""What the contact sends besides words, over real sockets: an image reaches the fake model as an image part
(by URL, or inlined), a voice note as its transcript (for every handler), each kind within its cap."""

from __future__ import annotations

import base64
import contextlib
import logging

import pytest

from botkit import Bot
from botkit.adapters.openai import OpenAIHandler
from botkit.testing import factories
from botkit.testing.fake_openai import FakeOpenAI
from botkit.testing.harness import BotServer
from bots.support_router import make_bot

KEY = "sk-test-0123456789abcdef"
PHOTO = b"\xff\xd8\xff\xe0" + b"damaged parcel" * 100
VOICE = b"OggS" + b"\x00voice" * 300

pytestmark = pytest.mark.usefixtures("no_openai_env")


@contextlib.asynccontextmanager
async def running(bot_factory=None, *, images="url", **settings):
    model = FakeOpenAI(api_key=KEY)
    async with model.serve():
        handler = OpenAIHandler(api_key=KEY, base_url=model.base_url, env_file=None, images=images)
        bot = bot_factory() if bot_factory else Bot("assistant", [handler], typing_after=None)
        settings.setdefault("openai_api_key", KEY)
        async with BotServer(bot, teams="billing=3,technical=4", **settings) as server:
            server.fake.add_conversation(conversation_id=128, status="pending")
            yield server, model


def photo(server, size=None):
    url = server.fake.add_file("parcel.jpg", PHOTO, "image/jpeg")
    return factories.image(url, file_size=size if size is not None else len(PHOTO))


def voice(server, size=None):
    url = server.fake.add_file("voice-note.ogg", VOICE, "audio/ogg")
    return factories.audio(url, file_size=size if size is not None else len(VOICE))


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_an_image_reaches_the_model_as_an_image_part_by_its_url(api):
    model = FakeOpenAI(api_key=KEY)
    async with model.serve():
        bot = Bot("assistant", [OpenAIHandler(api_key=KEY, base_url=model.base_url, env_file=None, api=api)],
                  typing_after=None)
        async with BotServer(bot) as server:
            server.fake.add_conversation(conversation_id=128, status="pending")
            attachment = photo(server)
            model.reply("I'm sorry about the parcel.")
            await server.deliver(factories.contact_message("it arrived like this", attachments=[attachment]))
            await server.settle()
    [request] = model.requests
    assert request.images == [attachment["data_url"]]
    user = request.conversation[-1]
    text = user["content"][0]
    assert text.get("text") == "it arrived like this"
    assert text["type"] == ("input_text" if api == "responses" else "text")


async def test_an_inlined_image_is_fetched_from_chatwoot_and_sent_as_a_data_url():
    async with running(images="inline") as (server, model):
        attachment = photo(server)
        model.reply("ok")
        await server.deliver(factories.contact_message("", attachments=[attachment]))
        await server.settle()
        fetched = [r for r in server.fake.requests if r.path.endswith("/parcel.jpg")]
        assert len(fetched) == 1 and "api_access_token" not in fetched[0].headers  # no token to a file URL
    [url] = model.requests[0].images
    assert url.startswith("data:image/jpeg;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == PHOTO


@pytest.mark.parametrize("images", ["url", "inline"])
async def test_an_image_over_the_cap_is_left_out_with_a_log_line(caplog, images):
    with caplog.at_level(logging.INFO, logger="botkit.media"):
        async with running(images=images, botkit_max_image_bytes=1000) as (server, model):
            model.reply("What did you send?")
            await server.deliver(factories.contact_message("", attachments=[photo(server)]))
            await server.settle()
    [request] = model.requests
    assert request.images == []
    assert request.conversation[-1]["content"] == "[the contact sent 1 attachment(s): image]"
    assert any("over the cap of 1000 (BOTKIT_MAX_IMAGE_BYTES)" in r.getMessage() for r in caplog.records)


async def test_an_inlined_image_that_lies_about_its_size_is_cut_off_at_the_cap(caplog):
    with caplog.at_level(logging.INFO, logger="botkit.media"):
        async with running(images="inline", botkit_max_image_bytes=1000) as (server, model):
            model.reply("ok")
            await server.deliver(factories.contact_message("look", attachments=[photo(server, size=10)]))
            await server.settle()
    assert model.requests[0].images == []
    assert any("download passed the cap" in r.getMessage() for r in caplog.records)


async def test_a_voice_note_reaches_the_model_as_its_transcript():
    model = FakeOpenAI(api_key=KEY)
    async with model.serve():
        bot = Bot("assistant", [OpenAIHandler(api_key=KEY, base_url=model.base_url, env_file=None)],
                  typing_after=None)
        async with BotServer(bot, openai_api_key=KEY, botkit_transcription_model="whisper-1",
                             botkit_transcription_base_url=model.base_url) as server:
            server.fake.add_conversation(conversation_id=128, status="pending")
            model.transcribe("My parcel hasn't arrived yet.")
            model.reply("Let me check.")
            await server.deliver(factories.contact_message(None, attachments=[voice(server)]))
            await server.settle()
            model.reply("Found it.")
            await server.deliver(factories.contact_message("any news?"))
            await server.settle()
    [transcription] = model.transcriptions
    assert (transcription.model, transcription.name, transcription.data) == ("whisper-1", "voice-note.ogg", VOICE)
    assert model.requests[0].conversation[-1] == {"role": "user", "content": "My parcel hasn't arrived yet."}
    # the conversation's memory holds the transcript, not the audio
    assert model.requests[1].conversation[1] == {"role": "user", "content": "My parcel hasn't arrived yet."}


async def test_every_handler_sees_the_transcript_the_keyword_router_too(bot_flow):
    model = FakeOpenAI(api_key=KEY)
    async with model.serve():
        flow = await bot_flow(make_bot(), teams="billing=3,technical=4", openai_api_key=KEY,
                              botkit_transcription_model="whisper-1", botkit_transcription_base_url=model.base_url,
                              botkit_summary="built")  # the key is for transcription: no model-written summary
        model.transcribe("I have a question about billing")
        url = flow.server.fake.add_file("v.ogg", VOICE, "audio/ogg")
        await flow.send("", attachments=[factories.audio(url)])
        flow.expect_reply("I'm transferring you to our billing team.").expect_summary("Wants: I have a question")
        flow.expect_team("billing").expect_handoff()


async def test_a_voice_note_over_the_cap_is_not_sent_for_transcription(caplog):
    model = FakeOpenAI(api_key=KEY)
    async with model.serve():
        bot = Bot("assistant", [OpenAIHandler(api_key=KEY, base_url=model.base_url, env_file=None)],
                  typing_after=None)
        with caplog.at_level(logging.INFO, logger="botkit.media"):
            async with BotServer(bot, openai_api_key=KEY, botkit_transcription_model="whisper-1",
                                 botkit_transcription_base_url=model.base_url, botkit_max_audio_bytes=100) as server:
                server.fake.add_conversation(conversation_id=128, status="pending")
                model.reply("Could you write it?")
                await server.deliver(factories.contact_message("", attachments=[voice(server)]))
                await server.settle()
    assert model.transcriptions == []
    assert model.requests[0].conversation[-1]["content"] == "[the contact sent 1 attachment(s): audio]"
    assert any("(audio)" in r.getMessage() and "BOTKIT_MAX_AUDIO_BYTES" in r.getMessage() for r in caplog.records)


async def test_a_failed_transcription_is_logged_and_the_handler_goes_on(caplog):
    model = FakeOpenAI(api_key=KEY)
    async with model.serve():
        bot = Bot("assistant", [OpenAIHandler(api_key=KEY, base_url=model.base_url, env_file=None)],
                  typing_after=None)
        with caplog.at_level(logging.INFO, logger="botkit.media"):
            async with BotServer(bot, openai_api_key=KEY, botkit_transcription_model="whisper-1",
                                 botkit_transcription_base_url=model.base_url) as server:
                server.fake.add_conversation(conversation_id=128, status="pending")
                model.reply("Could you write it?")  # no transcript scripted: the fake answers 400
                await server.deliver(factories.contact_message("", attachments=[voice(server)]))
                await server.settle()
    assert len(model.transcriptions) == 1
    assert model.requests[0].conversation[-1]["content"] == "[the contact sent 1 attachment(s): audio]"
    assert any("was not transcribed (BadRequestError)" in r.getMessage() for r in caplog.records)


async def test_a_pdf_the_contact_sends_is_read_for_the_model_and_not_kept_in_memory():
    from tests.support.knowledge import make_pdf

    pdf = make_pdf("Order 4417", ["Delivery address: 12 Rua Augusta, Lisbon", "Items: one blue kettle"])
    async with running() as (server, model):
        url = server.fake.add_file("order.pdf", pdf, "application/pdf")
        model.reply("I see order 4417.")
        model.reply("Anything else?")
        await server.deliver(factories.contact_message("here is my order", attachments=[
            {**factories.file(url, file_size=len(pdf)), "extension": "pdf"}]))
        await server.settle()
        await server.deliver(factories.contact_message("thanks"))
        await server.settle()
    sent = model.requests[0].conversation[-1]["content"]
    assert sent.startswith("here is my order\n\n[the contact's document ")
    assert "12 Rua Augusta, Lisbon" in sent and "one blue kettle" in sent
    assert model.requests[1].conversation[1] == {"role": "user", "content": "here is my order"}


@pytest.mark.parametrize(("name", "data", "settings", "logged"), [
    ("big.pdf", b"%PDF-1.4" + b"x" * 5000, {"botkit_max_document_bytes": 100}, "BOTKIT_MAX_DOCUMENT_BYTES"),
    ("sheet.xlsx", b"PK\x03\x04", {}, ".xlsx is not a kind of document botkit reads"),
    ("broken.pdf", b"not a pdf at all", {}, "it could not be read (DocumentError)"),
])
async def test_a_document_botkit_cannot_read_is_left_out_with_a_log_line(caplog, name, data, settings, logged):
    with caplog.at_level(logging.INFO, logger="botkit.media"):
        async with running(**settings) as (server, model):
            url = server.fake.add_file(name, data, "application/octet-stream")
            model.reply("ok")
            attachment = {**factories.file(url, file_size=len(data)), "extension": name.rsplit(".", 1)[1]}
            await server.deliver(factories.contact_message("see attached", attachments=[attachment]))
            await server.settle()
    assert model.requests[0].conversation[-1]["content"] == "see attached"
    assert any(logged in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]
