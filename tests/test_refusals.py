"""Every 401 and 403 Chatwoot gives a bot token becomes an error whose advice names the real cause.

The fake Chatwoot answers each as Chatwoot does (`app/controllers/api/base_controller.rb`,
`app/controllers/concerns/access_token_auth_helper.rb`, `ensure_current_account_helper.rb`, Pundit's
`request_exception_handler.rb`); the real client reads it over a real socket.
"""

from __future__ import annotations

import logging

import httpx
import pytest

from botkit import Bot
from botkit.chatwoot import (
    AccountSuspended,
    BotNotInAccount,
    ChatwootClient,
    InvalidToken,
    NotAuthorizedForBots,
    NotFound,
    NotInAccount,
    NotPermitted,
    TokenMissing,
    error_for_response,
)
from botkit.testing import factories
from botkit.testing.fake_chatwoot import BOT_ENDPOINTS_BEFORE_4_14_2, FakeChatwoot
from botkit.testing.harness import BotServer


@pytest.fixture
async def fake():
    fake = FakeChatwoot()
    fake.add_conversation(1, 128)
    fake.add_account(2)
    fake.add_conversation(2, 9)  # an account the bot is connected to no inbox of
    async with fake.serve():
        yield fake


async def refusal(fake: FakeChatwoot, token: str, call) -> Exception:
    async with ChatwootClient(fake.url, token, backoff_base=0.01) as client:
        with pytest.raises(Exception) as caught:
            await call(client)
    return caught.value


async def test_a_missing_header_is_told_apart_from_an_unknown_token(fake):
    async with httpx.AsyncClient(base_url=fake.url) as http:  # what Chatwoot gets when a proxy drops the header
        response = await http.get("/api/v1/accounts/1/conversations/128")
    assert response.json() == {"errors": ["You need to sign in or sign up before continuing."]}
    error = error_for_response(response, "GET /api/v1/accounts/{account_id}/conversations/{conversation_id}")
    assert type(error) is TokenMissing
    assert "No access token reached Chatwoot" in str(error) and "api-access-token header" in str(error)

    error = await refusal(fake, "not-a-token", lambda c: c.send_message(1, 128, "hi"))
    assert type(error) is InvalidToken and "Chatwoot knows no such token" in str(error)


@pytest.mark.parametrize("case", ["suspended", "other_account", "user_elsewhere", "pundit", "not_for_bots",
                                  "not_found"])
async def test_each_refusal_names_its_cause(fake, case):
    if case == "suspended":
        fake.suspend_account(1)
        error = await refusal(fake, fake.bot_token, lambda c: c.send_message(1, 128, "hi"))
        assert type(error) is AccountSuspended and "account is suspended" in str(error)
        assert "super admin reactivates it" in str(error)
    elif case == "other_account":
        error = await refusal(fake, fake.bot_token, lambda c: c.send_message(2, 9, "hi"))
        assert type(error) is BotNotInAccount and "connected to no inbox of this account" in str(error)
    elif case == "user_elsewhere":
        error = await refusal(fake, fake.admin_token, lambda c: c.get_conversation(2, 9))
        assert type(error) is NotInAccount and "not a member of this account" in str(error)
    elif case == "pundit":
        agent = fake.add_agent(1, 77, "Ana")
        error = await refusal(fake, agent.token, lambda c: c.list_agent_bots(1))
        assert type(error) is NotPermitted and "administrator's token" in str(error)
    elif case == "not_for_bots":
        fake.bot_endpoints = BOT_ENDPOINTS_BEFORE_4_14_2
        error = await refusal(fake, fake.bot_token, lambda c: c.get_conversation(1, 128))
        assert type(error) is NotAuthorizedForBots and "upgrade Chatwoot" in str(error)
    else:
        error = await refusal(fake, fake.bot_token, lambda c: c.send_message(1, 404, "hi"))
        assert type(error) is NotFound and "display id" in str(error)
    assert fake.conversation(128).messages == []  # nothing was applied
    # a bot's advice never blames the token's user for a suspended account or a missing inbox
    if case in ("suspended", "other_account"):
        assert "lacks the permission" not in str(error)


async def test_a_suspended_account_is_named_in_the_log_and_the_dead_letter(caplog):
    bot = Bot("helper")

    @bot.fallback
    async def answer(ctx):
        await ctx.reply("Hello!")

    fake = FakeChatwoot()
    fake.add_conversation(1, 128)
    fake.suspend_account(1)
    async with BotServer(bot, fake=fake) as server:
        with caplog.at_level(logging.ERROR, logger="botkit.worker"):
            await server.deliver(factories.contact_message("hi", conversation_id=128))
            await server.settle()
        [dead] = await server.store.dead_letters()
    advice = "The Chatwoot account is suspended: nothing the bot does there works until a Chatwoot super admin " \
             "reactivates it."
    assert dead.error.startswith("AccountSuspended: ") and dead.error.endswith(advice)
    assert any(advice in r.getMessage() for r in caplog.records)
