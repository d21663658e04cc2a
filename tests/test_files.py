"""Files the bot sends: multipart `attachments[]` over real sockets to the fake Chatwoot, cut to each channel's
limits (botkit/files.py), retried without doubling."""

from __future__ import annotations

import logging

import httpx
import pytest

from botkit import Bot, Context, File
from botkit.files import plan
from botkit.rich import InputSelect, Option
from botkit.testing import factories
from botkit.testing.harness import BotServer

PDF = File("invoice.pdf", b"%PDF-1.4 fake invoice\n" * 40, "application/pdf")
JPG = File("parcel.jpg", b"\xff\xd8\xff\xe0" + b"j" * 2000, "image/jpeg")
PNG = File("map.png", b"\x89PNG\r\n\x1a\n" + b"p" * 500, "image/png")
MESSAGES = "/api/v1/accounts/1/conversations/128/messages"


def file_bot(*files: File, text: str | None = "Here you are.", menu: bool = False, fail_once: bool = False) -> Bot:
    bot = Bot("files", typing_after=None)
    failed: list[bool] = []

    @bot.fallback
    async def send(ctx: Context) -> None:
        message = InputSelect("Anything else?", [Option("Yes", "yes"), Option("No", "no")]) if menu else text
        await ctx.reply(message, files=list(files))
        if fail_once and not failed:
            failed.append(True)
            raise RuntimeError("a later step failed")

    return bot


async def sent(bot: Bot, channel: str) -> tuple[list, BotServer]:
    async with BotServer(bot) as server:
        server.fake.add_conversation(conversation_id=128, status="pending")
        await server.deliver(factories.contact_message("my invoice please", channel=channel))
        await server.settle()
        return server.fake.requests_to("POST", MESSAGES), server


async def test_a_file_arrives_as_multipart_with_its_name_and_type_and_is_served_back():
    async with BotServer(file_bot(PDF, JPG)) as server:
        server.fake.add_conversation(conversation_id=128, status="pending")
        await server.deliver(factories.contact_message("my invoice please"))
        await server.settle()
        [request] = server.fake.requests_to("POST", MESSAGES)
        assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
        assert request.json == {"content": "Here you are.", "message_type": "outgoing", "private": "false",
                                "content_type": "text"}
        assert [(f.field, f.name, f.content_type, f.data) for f in request.files] == [
            ("attachments[]", "invoice.pdf", "application/pdf", PDF.data),
            ("attachments[]", "parcel.jpg", "image/jpeg", JPG.data)]
        [message] = server.fake.messages(128)
        assert message["private"] is False and message["content"] == "Here you are."
        kinds = [(a["file_type"], a["extension"], a["file_size"]) for a in message["attachments"]]
        assert kinds == [("file", "pdf", len(PDF.data)), ("image", "jpg", len(JPG.data))]
        async with httpx.AsyncClient() as client:
            served = await client.get(message["attachments"][0]["data_url"])
        assert served.status_code == 200 and served.content == PDF.data
        assert served.headers["content-type"] == "application/pdf"


async def test_whatsapp_gets_one_file_per_message_with_the_text_on_the_first():
    requests, _ = await sent(file_bot(PDF, JPG, PNG), "Channel::Whatsapp")
    assert [(r.json.get("content"), [f.name for f in r.files]) for r in requests] == [
        ("Here you are.", ["invoice.pdf"]), (None, ["parcel.jpg"]), (None, ["map.png"])]


async def test_a_whatsapp_menu_with_a_file_goes_after_it_so_its_buttons_are_kept():
    requests, server = await sent(file_bot(JPG, menu=True), "Channel::Whatsapp")
    assert [f.name for f in requests[0].files] == ["parcel.jpg"] and requests[0].json.get("content") is None
    assert requests[1].files == [] and requests[1].json["content_type"] == "input_select"
    assert [i["title"] for i in requests[1].json["content_attributes"]["items"]] == ["Yes", "No"]


async def test_tiktok_gets_the_text_alone_then_each_image_and_nothing_it_refuses(caplog):
    big = File("big.png", b"p" * (3 * 1024 * 1024), "image/png")
    with caplog.at_level(logging.WARNING, logger="botkit.files"):
        requests, _ = await sent(file_bot(JPG, PDF, big, PNG), "Channel::Tiktok")
    assert [(r.json.get("content"), [f.name for f in r.files]) for r in requests] == [
        ("Here you are.", []), (None, ["parcel.jpg"]), (None, ["map.png"])]
    skipped = [r.getMessage() for r in caplog.records if "TikTok" in r.getMessage()]
    assert len(skipped) == 2 and "application/pdf" in skipped[0] and "image/png" in skipped[1]


async def test_more_than_fifteen_files_go_in_messages_of_fifteen():
    many = [File(f"page{n}.png", b"p%d" % n, "image/png") for n in range(20)]
    requests, server = await sent(file_bot(*many), "Channel::WebWidget")
    assert [len(r.files) for r in requests] == [15, 5]
    assert [r.status for r in requests] == [200, 200]


async def test_the_fake_refuses_sixteen_attachments_as_chatwoot_does():
    from botkit.chatwoot import ChatwootClient, ValidationFailed
    from botkit.testing.fake_chatwoot import FakeChatwoot

    fake = FakeChatwoot()
    fake.add_conversation(conversation_id=128, status="pending")
    async with fake.serve(), ChatwootClient(fake.url, fake.bot_token) as client:
        with pytest.raises(ValidationFailed):
            await client.send_message(1, 128, "x", attachments=[PNG] * 16)


async def test_a_multipart_create_is_retried_whole_after_a_429_and_never_doubled_by_an_event_retry():
    bot = file_bot(PDF, JPG, text="Invoice and photo.", fail_once=True)
    async with BotServer(bot) as server:
        server.fake.add_conversation(conversation_id=128, status="pending")
        server.fake.rate_limit_next("POST", MESSAGES, times=1)
        await server.deliver(factories.contact_message("again", channel="Channel::Whatsapp"))
        await server.settle()
        requests = server.fake.requests_to("POST", MESSAGES)
        # the 429'd first part is sent again whole; after the handler failed, the event's retry skips both parts
        assert [(r.status, [f.name for f in r.files]) for r in requests] == [
            (429, ["invoice.pdf"]), (200, ["invoice.pdf"]), (200, ["parcel.jpg"])]
        assert requests[1].body == requests[0].body.replace(
            requests[0].headers["content-type"].split("boundary=")[1].encode(),
            requests[1].headers["content-type"].split("boundary=")[1].encode())
        stored = server.fake.messages(128)
        assert [a["data_url"].rsplit("/", 1)[1] for m in stored for a in m["attachments"]] == \
            ["invoice.pdf", "parcel.jpg"]


async def test_a_file_from_a_path_takes_its_type_from_its_name(tmp_path):
    path = tmp_path / "terms.pdf"
    path.write_bytes(b"%PDF terms")
    bot = Bot("p", typing_after=None)

    @bot.fallback
    async def send(ctx: Context) -> None:
        await ctx.reply(files=[path])

    requests, _ = await sent(bot, "Channel::Email")
    [request] = requests
    assert [(f.name, f.content_type, f.data) for f in request.files] == [("terms.pdf", "application/pdf",
                                                                          b"%PDF terms")]
    assert "content" not in request.json


@pytest.mark.parametrize(("channel", "rich", "expected"), [
    ("Channel::Api", False, [("t", 2)]),
    ("Channel::Whatsapp", False, [("t", 1), (None, 1)]),
    ("Channel::Tiktok", False, [("t", 0), (None, 1), (None, 1)]),
    ("Channel::WebWidget", True, [(None, 2), ("t", 0)]),
    (None, False, [("t", 2)]),
])
def test_plan(channel, rich, expected):
    parts = plan(channel, "t", [JPG, PNG], rich=rich)
    assert [(p.text, len(p.files)) for p in parts] == expected
