"""The Chatwoot actions (botkit.runtime.ChatwootActions): every implementation offers every call the bot layer
makes, and a dry run (no CHATWOOT_BASE_URL: botkit.dryrun.ConsoleChatwoot) takes a retried event, which looks
before acting (botkit/turn.py), like any other."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import uuid

import httpx
import pytest

from botkit import Bot
from botkit.app import build_app
from botkit.chatwoot import ChatwootClient
from botkit.config import load_settings
from botkit.dryrun import ConsoleChatwoot
from botkit.runtime import ChatwootActions
from botkit.security import signed_headers
from botkit.testing import factories
from botkit.testing.server import serve_app
from tests.support.fails_once import FailsOnce

IMPLEMENTATIONS = [ChatwootClient, ConsoleChatwoot]


def protocol_calls() -> dict[str, inspect.Signature]:
    """The methods ChatwootActions names, with their signatures."""
    return {name: inspect.signature(member) for name, member in vars(ChatwootActions).items()
            if inspect.isfunction(member) and not name.startswith("_")}


def test_the_protocol_names_the_calls_the_bot_layer_makes():
    # botkit/turn.py looks at the conversation (GET) and reads Chatwoot's version
    assert {"get_conversation", "version", "send_message", "toggle_status"} <= set(protocol_calls())


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS, ids=lambda cls: cls.__name__)
def test_each_implementation_offers_every_call_of_the_protocol(implementation):
    for name, wanted in protocol_calls().items():
        member = getattr(implementation, name, None)
        assert inspect.iscoroutinefunction(member), f"{implementation.__name__} has no async {name}"
        offered = inspect.signature(member).parameters
        for parameter in wanted.parameters.values():
            assert parameter.name in offered, f"{implementation.__name__}.{name} takes no {parameter.name}"
            assert offered[parameter.name].kind == parameter.kind, f"{implementation.__name__}.{name}({parameter})"
    assert isinstance(implementation.dry_run, bool) and hasattr(implementation, "busy")



async def test_a_dry_run_takes_a_retried_event(capsys, caplog, monkeypatch):
    looked: list[tuple[int, int]] = []
    shown = ConsoleChatwoot.get_conversation

    async def look(self, account_id: int, conversation_id: int, **options):
        looked.append((account_id, conversation_id))
        return await shown(self, account_id, conversation_id, **options)

    monkeypatch.setattr(ConsoleChatwoot, "get_conversation", look)
    settings = load_settings(chatwoot_base_url=None, chatwoot_bot_token=None, chatwoot_webhook_secret="s" * 32,
                             botkit_store="memory://", botkit_retry_backoff=0.01)
    handler = FailsOnce()
    app = build_app(settings, Bot("helper", [handler]))
    raw = json.dumps(factories.contact_message("where is my parcel?", conversation_id=128)).encode()
    headers = {**signed_headers("s" * 32, raw), "X-Chatwoot-Delivery": str(uuid.uuid4())}
    with caplog.at_level(logging.INFO, logger="botkit"):
        async with serve_app(app) as url, httpx.AsyncClient(base_url=url) as client:
            assert (await client.post("/webhook", content=raw, headers=headers)).json()["status"] == "accepted"
            for _ in range(1000):
                stats = await app.state.receiver.store.stats()
                if stats.waiting == 0 and stats.in_flight == 0 and app.state.worker.in_flight == 0:
                    break
                await asyncio.sleep(0.01)
    assert handler.attempts == 2 and looked == [(1, 128)]  # the retry looked before acting
    assert "[dry run] conversation 1/128: reply: Answer to: where is my parcel?" in capsys.readouterr().out
    # it looked before acting, and found the conversation the bot's (a dry run has nothing else to show)
    assert not [r.getMessage() for r in caplog.records if "look" in r.getMessage()]
