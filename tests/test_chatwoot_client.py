"""ChatwootClient over real sockets: the real client and httpx against FakeChatwoot on a loopback uvicorn."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from botkit.chatwoot import (
    ChatwootClient,
    ChatwootError,
    ChatwootUnreachable,
    DeliveryUnknown,
    InvalidToken,
    NotAuthorizedForBots,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServerError,
    ValidationFailed,
    error_for_response,
)
from botkit.ratelimit import TokenBucket
from botkit.rich import (
    Article,
    ArticleItem,
    Card,
    CardAction,
    Cards,
    Form,
    FormField,
    InputEmail,
    InputSelect,
    InvalidRichMessage,
    Option,
)
from botkit.testing.fake_chatwoot import BOT_ENDPOINTS_BEFORE_4_14_2, FakeChatwoot

CONV = "/api/v1/accounts/1/conversations/128"


@pytest.fixture
async def fake() -> AsyncIterator[FakeChatwoot]:
    fake = FakeChatwoot()
    fake.add_conversation(1, 128, status="pending", labels=["vip"], custom_attributes={"plan": "pro"})
    fake.add_team(1, 5, "billing")
    fake.add_agent(1, 7, "Ana")
    async with fake.serve():
        yield fake


def client_for(fake: FakeChatwoot, token: str | None = None, **kwargs: Any) -> ChatwootClient:
    kwargs.setdefault("backoff_base", 0.01)
    kwargs.setdefault("backoff_cap", 0.05)
    kwargs.setdefault("timeout", 2.0)
    assert fake.url is not None
    return ChatwootClient(fake.url, token or fake.bot_token, **kwargs)


async def _until(condition, timeout: float = 10.0) -> None:
    """Poll a condition that other tasks make true (bounded, so a bug fails instead of hanging)."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


# Each method's exact request ---------------------------------------------------------------------------

BOT_CALLS: list[tuple[str, Any, str, str, Any]] = [
    ("send_message", lambda c: c.send_message(1, 128, "Hello", echo_id="e-1"), "POST", CONV + "/messages",
     {"message_type": "outgoing", "private": False, "content_type": "text", "content": "Hello", "echo_id": "e-1"}),
    ("send_note", lambda c: c.send_note(1, 128, "for agents"), "POST", CONV + "/messages",
     {"message_type": "outgoing", "private": True, "content_type": "text", "content": "for agents"}),
    ("send_rich", lambda c: c.send_rich(1, 128, InputSelect("Pick", [Option("Yes", "y")])), "POST",
     CONV + "/messages",
     {"message_type": "outgoing", "private": False, "content_type": "input_select", "content": "Pick",
      "content_attributes": {"items": [{"title": "Yes", "value": "y"}]}}),
    ("toggle_status", lambda c: c.toggle_status(1, 128, "snoozed", snoozed_until=datetime(2030, 1, 1, tzinfo=UTC)),
     "POST", CONV + "/toggle_status", {"status": "snoozed", "snoozed_until": 1893456000}),
    ("toggle_typing", lambda c: c.toggle_typing(1, 128, True), "POST", CONV + "/toggle_typing_status",
     {"typing_status": "on"}),
    ("toggle_priority", lambda c: c.toggle_priority(1, 128, "urgent"), "POST", CONV + "/toggle_priority",
     {"priority": "urgent"}),
    ("assign_agent", lambda c: c.assign_agent(1, 128, 7), "POST", CONV + "/assignments", {"assignee_id": 7}),
    ("assign_team", lambda c: c.assign_team(1, 128, 5), "POST", CONV + "/assignments", {"team_id": 5}),
    ("assign_bot", lambda c: c.assign_bot(1, 128, 999), "POST", CONV + "/assignments",
     {"assignee_id": 999, "assignee_type": "AgentBot"}),
    ("get_labels", lambda c: c.get_labels(1, 128), "GET", CONV + "/labels", None),
    ("set_labels", lambda c: c.set_labels(1, 128, ["a", "b"]), "POST", CONV + "/labels", {"labels": ["a", "b"]}),
    ("set_custom_attributes", lambda c: c.set_custom_attributes(1, 128, {"x": 1}, merge=False), "POST",
     CONV + "/custom_attributes", {"custom_attributes": {"x": 1}}),
    ("get_conversation", lambda c: c.get_conversation(1, 128), "GET", CONV, None),
    ("create_conversation", lambda c: c.create_conversation(1, source_id="abc", inbox_id=1, message="Hi"),
     "POST", "/api/v1/accounts/1/conversations",
     {"source_id": "abc", "inbox_id": 1, "message": {"content": "Hi"}}),
]


@pytest.mark.parametrize("name,call,method,path,body", BOT_CALLS, ids=[c[0] for c in BOT_CALLS])
async def test_bot_method_sends_exact_request(fake, name, call, method, path, body):
    if name == "assign_bot":
        fake.add_agent_bot(1, name="other", bot_id=999)
    async with client_for(fake) as client:
        await call(client)
    [request] = fake.requests_to(method, path)
    assert request.json == body
    assert request.token == fake.bot_token
    assert request.headers["content-type" if body is not None else "accept"].startswith("application/json")


ADMIN_CALLS: list[tuple[str, Any, str, str, Any]] = [
    ("list_agent_bots", lambda c, f: c.list_agent_bots(1), "GET", "/api/v1/accounts/1/agent_bots", None),
    ("create_agent_bot", lambda c, f: c.create_agent_bot(1, name="b", outgoing_url="https://x/y", description="d"),
     "POST", "/api/v1/accounts/1/agent_bots", {"name": "b", "outgoing_url": "https://x/y", "description": "d"}),
    ("get_agent_bot", lambda c, f: c.get_agent_bot(1, f.bot.id), "GET", "/api/v1/accounts/1/agent_bots/{bot}", None),
    ("update_agent_bot", lambda c, f: c.update_agent_bot(1, f.bot.id, outgoing_url="https://n/w"), "PATCH",
     "/api/v1/accounts/1/agent_bots/{bot}", {"outgoing_url": "https://n/w"}),
    ("reset_agent_bot_token", lambda c, f: c.reset_agent_bot_token(1, f.bot.id), "POST",
     "/api/v1/accounts/1/agent_bots/{bot}/reset_access_token", None),
    ("reset_agent_bot_secret", lambda c, f: c.reset_agent_bot_secret(1, f.bot.id), "POST",
     "/api/v1/accounts/1/agent_bots/{bot}/reset_secret", None),
    ("set_inbox_agent_bot", lambda c, f: c.set_inbox_agent_bot(1, 1, None), "POST",
     "/api/v1/accounts/1/inboxes/1/set_agent_bot", {"agent_bot": None}),
    ("list_inboxes", lambda c, f: c.list_inboxes(1), "GET", "/api/v1/accounts/1/inboxes", None),
    ("list_teams", lambda c, f: c.list_teams(1), "GET", "/api/v1/accounts/1/teams", None),
    ("delete_agent_bot", lambda c, f: c.delete_agent_bot(1, f.bot.id), "DELETE",
     "/api/v1/accounts/1/agent_bots/{bot}", None),
]


@pytest.mark.parametrize("name,call,method,path,body", ADMIN_CALLS, ids=[c[0] for c in ADMIN_CALLS])
async def test_management_method_sends_exact_request(fake, name, call, method, path, body):
    async with client_for(fake, fake.admin_token) as client:
        await call(client, fake)
    [request] = fake.requests_to(method, path.format(bot=fake.bot.id))
    assert request.json == body
    assert request.token == fake.admin_token


async def test_platform_methods(fake):
    async with client_for(fake, fake.platform_token) as client:
        bot = await client.create_platform_bot(name="system", outgoing_url="https://x/y", account_id=1)
        assert [b["id"] for b in await client.list_platform_bots()] == [bot["id"]]
        assert (await client.update_platform_bot(bot["id"], name="renamed"))["name"] == "renamed"
        assert (await client.get_platform_bot(bot["id"]))["name"] == "renamed"
        await client.delete_platform_bot(bot["id"])
        with pytest.raises(NotFound):
            await client.get_platform_bot(bot["id"])
    [create] = fake.requests_to("POST", "/platform/api/v1/agent_bots")
    assert create.json == {"name": "system", "outgoing_url": "https://x/y", "account_id": 1}


# Answers and state -------------------------------------------------------------------------------------


async def test_answers_are_parsed_and_state_changes(fake):
    async with client_for(fake) as client:
        message = await client.send_message(1, 128, "Hi")
        assert message["message_type"] == 1 and isinstance(message["created_at"], int)
        status = await client.toggle_status(1, 128, "open")
        assert status["payload"]["current_status"] == "open"
        team = await client.assign_team(1, 128, 5)
        assert team["name"] == "billing"
        conversation = await client.get_conversation(1, 128)
    assert conversation["status"] == "open"
    assert conversation["meta"]["team"] == {"id": 5, "name": "billing"}


async def test_add_and_remove_labels_merge_with_the_current_list(fake):
    async with client_for(fake) as client:
        assert await client.add_labels(1, 128, ["billing", "vip"]) == ["vip", "billing"]
        assert await client.remove_labels(1, 128, ["vip"]) == ["billing"]
        assert await client.get_labels(1, 128) == ["billing"]
    # each merge read the list before writing the whole of it
    assert [r.method for r in fake.requests_to("*", CONV + "/labels")] == ["GET", "POST", "GET", "POST", "GET"]


async def test_custom_attributes_merge_or_replace(fake):
    async with client_for(fake) as client:
        merged = await client.set_custom_attributes(1, 128, {"order": "1234"})
        assert merged["custom_attributes"] == {"plan": "pro", "order": "1234"}
        replaced = await client.set_custom_attributes(1, 128, {"only": True}, merge=False)
    assert replaced["custom_attributes"] == {"only": True}
    assert fake.conversation(128).custom_attributes == {"only": True}


async def test_assigning_an_unknown_team_raises_not_found(fake):
    fake.conversation(128).team_id = 5
    async with client_for(fake) as client:
        with pytest.raises(NotFound, match="no team 99"):
            await client.assign_team(1, 128, 99)
    assert fake.conversation(128).team_id is None  # what Chatwoot does with an unknown team id


# Retries ----------------------------------------------------------------------------------------------


async def test_429_is_retried_then_succeeds_even_for_a_message(fake):
    fake.rate_limit_next("POST", CONV + "/messages", times=2)
    async with client_for(fake) as client:
        await client.send_message(1, 128, "once")
    assert len(fake.requests_to("POST", CONV + "/messages")) == 3
    assert [m["content"] for m in fake.messages(128)] == ["once"]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_is_retried_for_idempotent_writes(fake, status):
    fake.fail_next("POST", CONV + "/toggle_status", status=status, times=2)
    async with client_for(fake) as client:
        result = await client.toggle_status(1, 128, "resolved")
    assert result["payload"]["current_status"] == "resolved"
    assert len(fake.requests_to("POST", CONV + "/toggle_status")) == 3


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_on_a_message_is_never_repeated(fake, status):
    fake.fail_next("POST", CONV + "/messages", status=status)
    async with client_for(fake) as client:
        with pytest.raises(DeliveryUnknown) as caught:
            await client.send_message(1, 128, "maybe")
    assert caught.value.status == status and caught.value.transient is False
    assert len(fake.requests_to("POST", CONV + "/messages")) == 1


async def test_the_token_travels_in_the_header_spelling_that_survives_nginx(fake):
    async with client_for(fake) as client:
        await client.send_message(1, 128, "hello")
    [sent] = fake.requests_to("POST", CONV + "/messages")
    assert sent.headers.get("api-access-token") == fake.bot_token and "api_access_token" not in sent.headers


async def test_a_message_whose_answer_never_comes_is_not_sent_twice(fake):
    fake.drop_response_next("POST", CONV + "/messages")
    async with client_for(fake, timeout=0.5) as client:
        with pytest.raises(DeliveryUnknown) as caught:
            await client.send_message(1, 128, "lost answer")
        assert caught.value.transient is False
        await client.send_message(1, 128, "next")  # the client is still usable
    assert len(fake.requests_to("POST", CONV + "/messages")) == 2
    assert [m["content"] for m in fake.messages(128)] == ["lost answer", "next"]


async def test_an_idempotent_write_whose_answer_never_comes_is_retried(fake):
    fake.drop_response_next("POST", CONV + "/labels")
    async with client_for(fake, timeout=0.5) as client:
        assert await client.set_labels(1, 128, ["a"]) == ["a"]
    assert len(fake.requests_to("POST", CONV + "/labels")) == 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_connect_failure_on_a_message_is_retried_safely(caplog):
    """Nothing listens at first; the message goes through once the server comes up, exactly once."""
    caplog.set_level(logging.WARNING, logger="botkit.chatwoot")
    port = _free_port()
    fake = FakeChatwoot()
    fake.add_conversation(1, 128)
    client = ChatwootClient(f"http://127.0.0.1:{port}", fake.bot_token, backoff_base=0.02, backoff_cap=0.05,
                            deadline=20)
    async with client:
        task = asyncio.create_task(client.send_message(1, 128, "after the outage"))
        await _until(lambda: any("retrying" in r.getMessage() for r in caplog.records))
        async with fake.serve(port=port):
            message = await asyncio.wait_for(task, 10)
    assert message["content"] == "after the outage"
    assert len(fake.requests_to("POST", CONV + "/messages")) == 1
    assert "ChatwootUnreachable" in caplog.text


async def test_unreachable_chatwoot_gives_a_transient_error_at_the_deadline():
    client = ChatwootClient(f"http://127.0.0.1:{_free_port()}", "t0ken", deadline=0.3, backoff_base=0.02,
                            backoff_cap=0.05)
    async with client:
        with pytest.raises(ChatwootUnreachable) as caught:
            await client.toggle_status(1, 128, "open")
    assert caught.value.transient is True


async def test_retrying_stops_at_the_deadline(fake):
    fake.fail_next("POST", CONV + "/toggle_status", status=503, times=10**6)
    async with client_for(fake, deadline=0.3) as client:
        with pytest.raises(ServerError) as caught:
            await client.toggle_status(1, 128, "open")
    assert caught.value.transient is True and caught.value.status == 503
    assert len(fake.requests_to("POST", CONV + "/toggle_status")) > 1


async def test_the_deadline_counts_from_the_first_attempt(fake):
    """The first attempt runs outside tenacity (the fast path); its time still counts toward the deadline."""
    fake.delay_next("POST", CONV + "/toggle_status", seconds=1.0)
    async with client_for(fake, deadline=0.42, timeout=0.45) as client:
        with pytest.raises(ChatwootUnreachable):  # 0.45 s spent: no retry fits in 0.42 s
            await client.toggle_status(1, 128, "open")
    assert len(fake.requests_to("POST", CONV + "/toggle_status")) == 1


async def test_a_retry_after_past_the_deadline_stops_at_once(fake):
    fake.fail_next("POST", CONV + "/messages", status=429, body="Retry later", headers={"Retry-After": "60"})
    async with client_for(fake, deadline=1.0) as client:
        with pytest.raises(RateLimited) as caught:
            await client.send_message(1, 128, "x")
    assert caught.value.retry_after == 60 and caught.value.transient is True
    assert len(fake.requests_to("POST", CONV + "/messages")) == 1


async def test_retry_after_is_honoured_over_the_backoff(fake):
    # With this backoff a jittered wait would almost surely pass the deadline; Retry-After: 0 does not.
    fake.fail_next("POST", CONV + "/messages", status=429, headers={"Retry-After": "0"}, times=2)
    async with client_for(fake, deadline=5, backoff_base=1000, backoff_cap=1000) as client:
        await client.send_message(1, 128, "x")
    assert len(fake.requests_to("POST", CONV + "/messages")) == 3


def test_retry_after_as_an_http_date():
    response = httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, text="slow down")
    error = error_for_response(response, "POST /x")
    assert isinstance(error, RateLimited) and error.retry_after == 0


async def test_invalid_token_is_not_retried(fake):
    async with client_for(fake, "wrong-token") as client:
        with pytest.raises(InvalidToken) as caught:
            await client.send_message(1, 128, "x")
    assert caught.value.status == 401 and not caught.value.transient
    assert len(fake.requests) == 1


async def test_not_found_is_not_retried(fake):
    async with client_for(fake) as client:
        with pytest.raises(NotFound):
            await client.toggle_status(1, 404404, "open")
    assert len(fake.requests) == 1


async def test_403_is_not_retried(fake):
    fake.fail_next("POST", CONV + "/toggle_status", status=403, body={"error": "nope"})
    async with client_for(fake) as client:
        with pytest.raises(PermissionDenied):
            await client.toggle_status(1, 128, "open")
    assert len(fake.requests) == 1


async def test_flood_limit_is_a_validation_error_and_not_retried():
    fake = FakeChatwoot(messages_per_minute=2)
    fake.add_conversation(1, 128)
    async with fake.serve(), client_for(fake) as client:
        await client.send_message(1, 128, "1")
        await client.send_message(1, 128, "2")
        with pytest.raises(ValidationFailed, match="Too many messages") as caught:
            await client.send_message(1, 128, "3")
    assert caught.value.status == 422 and not caught.value.transient
    assert len(fake.requests_to("POST", CONV + "/messages")) == 3


async def test_invalid_content_attributes_are_a_validation_error(fake):
    async with client_for(fake) as client:
        with pytest.raises(ValidationFailed, match="At least one item"):
            await client.send_message(1, 128, "x", content_type="cards", content_attributes={"items": []})
    assert len(fake.requests) == 1


async def test_a_bot_token_on_a_management_endpoint_names_the_endpoint(fake):
    async with client_for(fake) as client:
        with pytest.raises(NotAuthorizedForBots) as caught:
            await client.list_teams(1)
    message = str(caught.value)
    assert "GET /api/v1/accounts/{account_id}/teams" in message and "administrator" in message
    assert len(fake.requests) == 1


async def test_an_older_chatwoot_refuses_labels_to_bots():
    fake = FakeChatwoot(bot_endpoints=BOT_ENDPOINTS_BEFORE_4_14_2)
    fake.add_conversation(1, 128)
    async with fake.serve(), client_for(fake) as client:
        with pytest.raises(NotAuthorizedForBots, match="upgrade Chatwoot"):
            await client.get_labels(1, 128)
        await client.toggle_status(1, 128, "open")  # still allowed


# Client-side rate limit --------------------------------------------------------------------------------


class ManualClock:
    """A clock that moves only when told; sleepers wake when it passes their time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sleepers.append((self.now + seconds, future))
        await future

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for wake, future in self.sleepers:
            if wake <= self.now + 1e-9 and not future.done():
                future.set_result(None)


async def test_token_bucket_holds_a_burst_under_its_rate(fake):
    clock = ManualClock()
    bucket = TokenBucket(60, burst=5, clock=clock, sleep=clock.sleep)  # one a second after a burst of 5
    posts = lambda: len(fake.requests_to("POST", CONV + "/messages"))  # noqa: E731
    async with client_for(fake, rate_limiter=bucket) as client:
        tasks = [asyncio.create_task(client.send_message(1, 128, str(i))) for i in range(20)]
        await _until(lambda: posts() == 5 and len(clock.sleepers) == 15)
        await asyncio.sleep(0.05)
        assert posts() == 5  # the rest wait for tokens
        clock.advance(3.0)
        await _until(lambda: posts() == 8)
        await asyncio.sleep(0.05)
        assert posts() == 8
        clock.advance(60.0)
        await asyncio.gather(*tasks)
    assert posts() == 20


def test_token_bucket_arithmetic():
    clock = ManualClock()
    bucket = TokenBucket(120, burst=2, clock=clock)
    assert [bucket.reserve() for _ in range(4)] == [0.0, 0.0, 0.5, 1.0]
    clock.now = 10.0
    assert bucket.reserve() == 0.0
    assert TokenBucket(2400).burst == 40  # default burst: one second's worth


# Secrets ----------------------------------------------------------------------------------------------


async def test_tokens_never_reach_errors_reprs_or_logs(fake, caplog):
    caplog.set_level(logging.DEBUG)
    token = fake.bot_token
    fake.fail_next("POST", CONV + "/toggle_status", status=500, body={"error": f"bad token {token}"})
    fake.fail_next("POST", CONV + "/messages", status=502, body=f"upstream said {token}")
    errors: list[BaseException] = []
    async with client_for(fake, token) as client:
        assert token not in repr(client)
        await client.toggle_status(1, 128, "open")  # retried after a 500 whose body echoes the token
        for call in (lambda: client.send_message(1, 128, "x"), lambda: client.list_teams(1)):
            with pytest.raises(ChatwootError) as caught:
                await call()
            errors.append(caught.value)
    async with client_for(fake, "secret-wrong-token") as client:
        with pytest.raises(InvalidToken) as caught:
            await client.get_labels(1, 128)
        errors.append(caught.value)
    for error in errors:
        for text in (str(error), repr(error), error.detail):
            assert token not in text and "secret-wrong-token" not in text
    assert "[redacted]" in str(errors[0])
    formatter = logging.Formatter("%(message)s %(exc_info)s")
    assert caplog.records, "expected retry warnings and debug lines"
    for record in caplog.records:
        line = formatter.format(record)
        assert token not in line and "secret-wrong-token" not in line


def test_empty_token_is_refused():
    with pytest.raises(ValueError, match="token is empty"):
        ChatwootClient("http://127.0.0.1:1", "")


async def test_bad_status_and_priority_are_refused_before_sending():
    async with ChatwootClient("http://127.0.0.1:1", "t") as client:
        with pytest.raises(ValueError, match="status must be one of"):
            await client.toggle_status(1, 1, "closed")
        with pytest.raises(ValueError, match="priority must be one of"):
            await client.toggle_priority(1, 1, "none")


# Rich messages ----------------------------------------------------------------------------------------


def test_rich_payloads():
    cards = Cards("Our plans", [Card("Pro", "For teams", "https://x/p.png",
                                     [CardAction("link", "See", uri="https://x/pro"),
                                      CardAction("postback", "Buy", payload="BUY_PRO")])])
    assert cards.to_payload() == {
        "content": "Our plans", "content_type": "cards",
        "content_attributes": {"items": [{
            "title": "Pro", "description": "For teams", "media_url": "https://x/p.png",
            "actions": [{"type": "link", "text": "See", "uri": "https://x/pro"},
                        {"type": "postback", "text": "Buy", "payload": "BUY_PRO"}]}]},
    }
    form = Form("Details", [FormField("email", "Email", type="email", required=True),
                            FormField("plan", "Plan", type="select", options=[Option("Pro", "pro")])])
    assert form.to_payload()["content_attributes"]["items"][1] == {
        "type": "select", "name": "plan", "label": "Plan", "options": [{"title": "Pro", "value": "pro"}]}
    article = Article("Read", [ArticleItem("Refunds", "https://help/x", "How refunds work")])
    assert article.to_payload()["content_attributes"]["items"] == [
        {"title": "Refunds", "description": "How refunds work", "link": "https://help/x"}]
    assert InputEmail("Your email?").to_payload() == {
        "content": "Your email?", "content_type": "input_email", "content_attributes": {}}


@pytest.mark.parametrize(
    "build,message",
    [
        (lambda: InputSelect("Pick", []), "at least one option"),
        (lambda: InputSelect("Pick", [{"title": "a", "value": "a"}]), r"built with Option\(\.\.\.\)"),
        (lambda: Option("", "v"), "title must be a non-empty string"),
        (lambda: Card("No actions"), "needs at least one action"),
        (lambda: CardAction("link", "Go"), "needs a uri"),
        (lambda: CardAction("postback", "Go"), "needs a payload"),
        (lambda: CardAction("call", "Go", uri="tel:1"), "link or postback"),
        (lambda: Cards("x", []), "at least one card"),
        (lambda: Form("x", [FormField("a", "A"), FormField("a", "B")]), "repeated: a"),
        (lambda: FormField("a", "A", type="date"), "use one of"),
        (lambda: FormField("a", "A", type="select"), "needs options"),
        (lambda: Article("x", [ArticleItem("t", "")]), "link of article"),
    ],
)
def test_invalid_rich_messages_are_refused_with_a_sentence(build, message):
    with pytest.raises(InvalidRichMessage, match=message):
        build()


async def test_every_rich_message_passes_the_fakes_validator(fake):
    messages = [
        InputSelect("Pick", [Option("A", "a"), Option("B", "b")]),
        Cards("c", [Card("t", actions=[CardAction("postback", "ok", payload="OK")])]),
        Form("f", [FormField("n", "Name", placeholder="Jane", pattern="^.+$", title="t", pattern_error="e",
                             default="x")]),
        Article("a", [ArticleItem("t", "https://l")]),
        InputEmail("e"),
    ]
    async with client_for(fake) as client:
        for message in messages:
            await client.send_rich(1, 128, message)
    assert [m["content_type"] for m in fake.messages(128)] == [
        "input_select", "cards", "form", "article", "input_email"]


@pytest.mark.parametrize("base", ["https://chat.example.com", "https://chat.example.com/chatwoot/"])
async def test_request_urls_are_what_httpx_would_merge_and_are_kept_per_path(base, monkeypatch):
    """The client keeps each path's absolute URL (httpx parses URL strings slowly); the URL, base path
    included, is what httpx itself builds from base_url + path, on a first call and a repeated one."""
    import botkit.chatwoot.client

    monkeypatch.setattr(botkit.chatwoot.client, "_URLS_KEPT", 2)
    sent: list[httpx.URL] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.url)
        return httpx.Response(200, json={"id": 1})

    paths = [(1, 2), (1, 2), (1, 3), (7, 8), (1, 2)]  # a repeat, then more paths than are kept
    async with ChatwootClient(base, "t0ken", transport=httpx.MockTransport(answer)) as client, \
            httpx.AsyncClient(base_url=base.rstrip("/")) as reference:
        for account, conversation in paths:
            await client.send_message(account, conversation, "hi")
        assert len(client._urls) <= 2
        expected = [reference.build_request("POST", f"/api/v1/accounts/{a}/conversations/{c}/messages").url
                    for a, c in paths]
    assert sent == expected
    assert all(str(url).startswith(base.rstrip("/") + "/api/v1/") for url in sent)
