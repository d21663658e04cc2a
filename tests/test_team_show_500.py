"""Chatwoot up to 4.15.1 answers a bot's GET of a conversation with a team with 500
(`app/views/api/v1/conversations/partials/_team.json.jbuilder` calls `Current.user.teams`; fixed in #15612).

The fake reproduces it (`team_show_fails`), and botkit's looks (before a stale action, after an unclear create)
take that 500 as "cannot look" at once instead of retrying it until the retry deadline: the stale turn acts on
its delivery alone, the unclear create is handed off as before; `ctx.set_attributes` merges onto the attributes
the event carried. Over real sockets: the real server and client.
"""

from __future__ import annotations

import httpx
import pytest

from botkit import Bot
from botkit.chatwoot import ChatwootClient, ServerError
from botkit.testing.fake_chatwoot import FakeChatwoot
from botkit.testing.harness import BotServer
from tests.test_turns import CONVERSATION, FailsOnce, contact_writes, echo_bot, replies

SHOW = f"*/conversations/{CONVERSATION}"


def fake_with_a_team() -> FakeChatwoot:
    fake = FakeChatwoot()
    fake.team_show_fails = True
    fake.add_team(1, 3, "billing")
    fake.add_conversation(conversation_id=CONVERSATION, status="pending", team_id=3)
    return fake


async def test_the_fake_answers_a_bots_get_of_a_conversation_with_a_team_with_500():
    fake = fake_with_a_team()
    fake.add_conversation(conversation_id=129, status="pending")  # no team: answered
    async with fake.serve():
        async with httpx.AsyncClient(base_url=fake.url) as http:
            bot = await http.get(f"/api/v1/accounts/1/conversations/{CONVERSATION}",
                                 headers={"api_access_token": fake.bot_token})
            admin = await http.get(f"/api/v1/accounts/1/conversations/{CONVERSATION}",
                                   headers={"api_access_token": fake.admin_token})
            no_team = await http.get("/api/v1/accounts/1/conversations/129",
                                     headers={"api_access_token": fake.bot_token})
    assert bot.status_code == 500 and bot.json() == {"status": 500, "error": "Internal Server Error"}
    assert admin.status_code == 200 and admin.json()["meta"]["team"] == {"id": 3, "name": "billing"}
    assert no_team.status_code == 200


async def test_a_plain_get_of_it_is_still_retried_and_a_look_is_not():
    fake = fake_with_a_team()
    async with fake.serve(), ChatwootClient(fake.url, fake.bot_token, deadline=1.0, backoff_base=0.01) as client:
        with pytest.raises(ServerError):
            await client.get_conversation(1, CONVERSATION)
        retried = len(fake.requests_to("GET", SHOW))
        with pytest.raises(ServerError):
            await client.get_conversation(1, CONVERSATION, retry_500=False)
    assert retried > 1 and len(fake.requests_to("GET", SHOW)) == retried + 1


async def test_a_retried_event_on_a_conversation_with_a_team_acts_after_one_look(caplog):
    fake = fake_with_a_team()
    handler = FailsOnce()
    async with BotServer(Bot("helper", [handler]), fake=fake, chatwoot_retry_deadline=3.0) as server:
        await server.deliver(contact_writes(fake, "where is my refund?"))
        await server.settle()
    assert handler.attempts == 2
    assert replies(fake) == ["Answer to: where is my refund?"]  # acted on the delivery alone
    assert len(fake.requests_to("GET", SHOW)) == 1  # one look, not retried until the deadline
    assert any("up to 4.15.1" in r.getMessage() for r in caplog.records)  # says why it could not look


async def test_an_unclear_create_on_a_conversation_with_a_team_is_handed_off_after_one_look():
    fake = fake_with_a_team()
    fake.fail_after_next("POST", f"{SHOW}/messages", status=500)  # saved, then answered 500
    async with BotServer(echo_bot(), fake=fake, chatwoot_retry_deadline=3.0) as server:
        await server.deliver(contact_writes(fake, "where is my parcel?"))
        await server.settle()
        [dead] = await server.store.dead_letters()
    assert "DeliveryUnknown" in dead.error
    assert replies(fake) == ["Answer to: where is my parcel?"]  # saved once, never sent again
    assert fake.conversation(CONVERSATION).status == "open"  # handed to humans, as when it cannot be told
    assert len(fake.requests_to("GET", SHOW)) == 1


def remembers_the_order() -> Bot:
    bot = Bot("helper")

    @bot.fallback
    async def remember(ctx):
        await ctx.set_attributes(order="1234")
        await ctx.set_attributes(topic="refund")  # the second merge keeps the first one's key

    return bot


async def test_merging_custom_attributes_on_a_conversation_with_a_team_uses_those_the_event_carried(caplog):
    fake = fake_with_a_team()
    fake.conversation(CONVERSATION).custom_attributes = {"plan": "pro"}
    event = contact_writes(fake, "where is my refund?")
    event["conversation"]["custom_attributes"] = {"plan": "pro"}  # as Chatwoot sends them in each webhook
    async with BotServer(remembers_the_order(), fake=fake, chatwoot_retry_deadline=3.0) as server:
        await server.deliver(event)
        await server.settle()
        assert await server.store.dead_letters() == []
    assert fake.conversation(CONVERSATION).custom_attributes == {"plan": "pro", "order": "1234", "topic": "refund"}
    assert len(fake.requests_to("GET", SHOW)) == 2  # one GET per merge, its 500 not retried
    assert any("up to 4.15.1" in r.getMessage() for r in caplog.records)  # says why it merged onto the event's


async def test_a_merge_without_known_attributes_still_retries_the_500_and_writes_nothing():
    fake = fake_with_a_team()
    fake.conversation(CONVERSATION).custom_attributes = {"plan": "pro"}
    async with fake.serve(), ChatwootClient(fake.url, fake.bot_token, deadline=1.0, backoff_base=0.01) as client:
        with pytest.raises(ServerError):
            await client.set_custom_attributes(1, CONVERSATION, {"order": "1234"})
        answer = await client.set_custom_attributes(1, CONVERSATION, {"order": "1234"}, known={"plan": "pro"})
    assert len(fake.requests_to("GET", SHOW)) > 2  # the first merge retried; the second looked once
    assert answer == {"custom_attributes": {"plan": "pro", "order": "1234"}}
    assert len(fake.requests_to("POST", f"{SHOW}/custom_attributes")) == 1  # never replaced the hash blindly
