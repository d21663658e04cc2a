"""The logs of a full event: its identity on every line, no token, secret or signature at any level."""

from __future__ import annotations

import io
import json
import logging

import pytest

from botkit import Bot, Handler
from botkit.config import load_settings
from botkit.logs import Redactor, bind, secrets_of, setup_logging
from botkit.security import signed_headers
from botkit.testing import factories
from botkit.testing.harness import BotServer
from bots.support_router import make_bot

TEAMS = "billing=3,technical=4"


@pytest.fixture
def capture():
    """setup_logging into a buffer, as `botkit serve` does; restored afterwards."""
    logger = logging.getLogger("botkit")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    buffer = io.StringIO()

    def start(level: str, fmt: str, secrets=()) -> io.StringIO:
        setup_logging(level, fmt, secrets=secrets, stream=buffer)
        return buffer

    yield start
    logger.handlers[:], logger.level, logger.propagate = saved


async def post(server: BotServer, body: dict, delivery_id: str) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    headers = {**signed_headers(server.fake.bot_secret, raw), "X-Chatwoot-Delivery": delivery_id}
    response = await server.client.post("/webhook", content=raw, headers=headers)
    assert response.json() == {"status": "accepted"}
    return raw, headers


def forbidden(server: BotServer, headers: dict[str, str]) -> list[str]:
    return [server.fake.bot_token, server.fake.bot_secret, headers["X-Chatwoot-Signature"],
            headers["X-Chatwoot-Signature"].removeprefix("sha256=")]


@pytest.mark.parametrize("fmt", ["json", "text"])
async def test_every_line_of_an_event_carries_its_identity_and_no_secret(capture, fmt):
    async with BotServer(make_bot(), teams=TEAMS) as server:
        server.fake.add_team(1, 3, "billing")
        server.fake.add_conversation(conversation_id=128, status="pending")
        server.fake.rate_limit_next("POST", "*/toggle_status")  # a retry: a warning line too
        settings = load_settings(env_file=None, chatwoot_bot_token=server.fake.bot_token,
                                 chatwoot_webhook_secret=server.fake.bot_secret)
        buffer = capture("DEBUG", fmt, secrets_of(settings))
        _, headers = await post(server, factories.contact_message("I have a billing question"), "delivery-7f3a")
        await server.settle()
        text = buffer.getvalue()
    lines = text.splitlines()
    assert len(lines) >= 6, text  # queued, handling, handler, 4 API calls (one retried), done
    for secret in forbidden(server, headers):
        assert secret not in text
    if fmt == "text":
        assert all("delivery_id=delivery-7f3a" in line for line in lines), text
        return
    entries = [json.loads(line) for line in lines]
    assert all(e["delivery_id"] == "delivery-7f3a" for e in entries), text
    assert all(e["lane"] == "default/1:128" and e["event"] == "message_created" for e in entries), text
    by_logger = {e["logger"] for e in entries}
    assert {"botkit.receiver", "botkit.worker", "botkit.bot", "botkit.chatwoot"} <= by_logger
    handler_lines = [e for e in entries if e["logger"] in ("botkit.bot", "botkit.chatwoot")]
    assert handler_lines and all(e["handler"] == "keywords" for e in handler_lines), text
    assert any(e["level"] == "warning" and "retrying" in e["message"] for e in entries)


async def test_message_contents_stay_out_of_info_lines(capture):
    async with BotServer(make_bot(), teams=TEAMS) as server:
        server.fake.add_conversation(conversation_id=128, status="pending")
        server.fake.rate_limit_next("POST", "*/messages")
        buffer = capture("INFO", "json")
        await post(server, factories.contact_message("my card number is 4111 1111"), "d-info")
        await server.settle()
    entries = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert entries and all(e["delivery_id"] == "d-info" for e in entries)
    assert "4111" not in buffer.getvalue() and "How can I help" not in buffer.getvalue()


class Careless(Handler):
    """A user's handler that logs what it must not: the redaction filter is the safety net."""

    def __init__(self, token: str) -> None:
        self.token = token

    async def handle(self, ctx) -> bool:
        logging.getLogger("botkit.plugins.careless").warning("calling with token %s", self.token)
        raise RuntimeError(f"auth failed for api_access_token={self.token}")


async def test_the_redaction_filter_masks_secrets_in_messages_and_tracebacks(capture):
    async with BotServer(Bot("careless", []), botkit_max_attempts=1) as server:
        server.bot.handlers.append(Careless(server.fake.bot_token))
        server.fake.add_conversation(conversation_id=128, status="pending")
        settings = load_settings(env_file=None, chatwoot_bot_token=server.fake.bot_token,
                                 chatwoot_webhook_secret=server.fake.bot_secret)
        buffer = capture("DEBUG", "text", secrets_of(settings))
        await post(server, factories.contact_message("hello"), "d-careless")
        await server.settle()
    text = buffer.getvalue()
    assert "calling with token [redacted]" in text
    assert "api_access_token=[redacted]" in text  # in the error line and in the traceback
    assert "Traceback" in text
    assert server.fake.bot_token not in text


def test_redactor_masks_fields_arguments_and_signatures():
    redactor = Redactor(["s3cr3t-token", "abc"])  # too short to mask safely: ignored
    record = logging.LogRecord("botkit.x", logging.INFO, __file__, 1, "token=%s sig=%s", ("s3cr3t-token",
                               "sha256=" + "ab" * 32), None)
    record.lane = "default/s3cr3t-token"
    assert redactor.filter(record)
    assert record.getMessage() == "token=[redacted] sig=sha256=[redacted]"
    assert record.lane == "default/[redacted]"
    assert redactor.redact("abc") == "abc"


def test_bound_fields_reach_records_in_both_formats(capture):
    buffer = capture("INFO", "json")
    with bind(delivery_id="d-1", lane="default/1:2", event="message_created"), bind(handler="openai"):
        logging.getLogger("botkit.test").info("inside")
    logging.getLogger("botkit.test").info("outside")
    inside, outside = (json.loads(line) for line in buffer.getvalue().splitlines())
    assert (inside["delivery_id"], inside["lane"], inside["handler"]) == ("d-1", "default/1:2", "openai")
    assert "delivery_id" not in outside and "handler" not in outside
