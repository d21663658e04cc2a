"""FakeChatwoot answers as Chatwoot does; checked with a bare httpx client over a loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from botkit.testing.fake_chatwoot import (
    BOT_ENDPOINTS,
    BOT_ENDPOINTS_BEFORE_4_11_2,
    FakeChatwoot,
)

CONV = "/api/v1/accounts/1/conversations/128"


@pytest.fixture
async def fake() -> AsyncIterator[FakeChatwoot]:
    fake = FakeChatwoot()
    fake.add_conversation(1, 128, status="pending", labels=["vip"])
    fake.add_team(1, 5, "billing")
    async with fake.serve():
        yield fake


@pytest.fixture
async def http(fake) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.url) as client:
        yield client


def auth(token: str) -> dict[str, str]:
    return {"api_access_token": token}


# Every route, the action name Chatwoot's allow-list uses, and a body it accepts.
ROUTES = [
    ("GET", CONV, "conversations#show", None),
    ("PATCH", CONV, "conversations#update", {"priority": "high"}),
    ("POST", "/api/v1/accounts/1/conversations", "conversations#create", {"source_id": "s", "inbox_id": 1}),
    ("POST", CONV + "/toggle_status", "conversations#toggle_status", {"status": "open"}),
    ("POST", CONV + "/toggle_typing_status", "conversations#toggle_typing_status", {"typing_status": "on"}),
    ("POST", CONV + "/toggle_priority", "conversations#toggle_priority", {"priority": "low"}),
    ("POST", CONV + "/custom_attributes", "conversations#custom_attributes", {"custom_attributes": {"a": 1}}),
    ("GET", CONV + "/messages", "messages#index", None),
    ("POST", CONV + "/messages", "messages#create", {"content": "hi"}),
    ("POST", CONV + "/assignments", "assignments#create", {"team_id": 5}),
    ("GET", CONV + "/labels", "labels#index", None),
    ("POST", CONV + "/labels", "labels#create", {"labels": ["x"]}),
    ("GET", "/api/v1/accounts/1/agent_bots", "agent_bots#index", None),
    ("POST", "/api/v1/accounts/1/agent_bots", "agent_bots#create", {"name": "n", "outgoing_url": "https://x"}),
    ("GET", "/api/v1/accounts/1/agent_bots/{bot}", "agent_bots#show", None),
    ("PATCH", "/api/v1/accounts/1/agent_bots/{bot}", "agent_bots#update", {"name": "n2"}),
    ("POST", "/api/v1/accounts/1/agent_bots/{bot}/reset_access_token", "agent_bots#reset_access_token", None),
    ("POST", "/api/v1/accounts/1/agent_bots/{bot}/reset_secret", "agent_bots#reset_secret", None),
    ("GET", "/api/v1/accounts/1/inboxes", "inboxes#index", None),
    ("POST", "/api/v1/accounts/1/inboxes/1/set_agent_bot", "inboxes#set_agent_bot", {"agent_bot": "{bot}"}),
    ("GET", "/api/v1/accounts/1/teams", "teams#index", None),
]


def fill(value, bot_id: int):
    if isinstance(value, str):
        return int(bot_id) if value == "{bot}" else value.format(bot=bot_id)
    if isinstance(value, dict):
        return {key: fill(item, bot_id) for key, item in value.items()}
    return value


@pytest.mark.parametrize("method,path,action,body", ROUTES, ids=[r[2] for r in ROUTES])
async def test_bot_allow_list(fake, http, method, path, action, body):
    response = await http.request(method, fill(path, fake.bot.id), json=fill(body, fake.bot.id),
                                  headers=auth(fake.bot_token))
    if action in BOT_ENDPOINTS:
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 401
        assert response.json() == {"error": "Access to this endpoint is not authorized for bots"}


@pytest.mark.parametrize("method,path,action,body", ROUTES, ids=[r[2] for r in ROUTES])
async def test_admin_may_call_every_route(fake, http, method, path, action, body):
    other = fake.add_agent_bot(1, name="other")
    response = await http.request(method, fill(path, other.id), json=fill(body, other.id),
                                  headers=auth(fake.admin_token))
    assert response.status_code == 200, response.text


async def test_an_older_release_allows_bots_less():
    fake = FakeChatwoot(bot_endpoints=BOT_ENDPOINTS_BEFORE_4_11_2)
    fake.add_conversation(1, 128)
    async with fake.serve(), httpx.AsyncClient(base_url=fake.url) as http:
        typing = await http.post(CONV + "/toggle_typing_status", json={"typing_status": "on"},
                                 headers=auth(fake.bot_token))
        status = await http.post(CONV + "/toggle_status", json={"status": "open"}, headers=auth(fake.bot_token))
    assert typing.status_code == 401 and status.status_code == 200


@pytest.mark.parametrize(("headers", "answer"), [
    ({}, {"errors": ["You need to sign in or sign up before continuing."]}),  # devise's answer: an array
    ({"api_access_token": ""}, {"errors": ["You need to sign in or sign up before continuing."]}),
    ({"api_access_token": "nope"}, {"error": "Invalid Access Token"}),
])
async def test_bad_or_missing_token(http, headers, answer):
    response = await http.post(CONV + "/messages", json={"content": "x"}, headers=headers)
    assert response.status_code == 401
    assert response.json() == answer


async def test_dashed_header_is_read_too(fake, http):
    response = await http.get(CONV, headers={"api-access-token": fake.bot_token})
    assert response.status_code == 200


async def test_not_found(fake, http):
    for path in ("/api/v1/accounts/1/conversations/999/messages", "/api/v1/nothing/here"):
        response = await http.post(path, json={"content": "x"}, headers=auth(fake.bot_token))
        assert response.status_code == 404
        assert response.json() == {"error": "Resource could not be found"}


async def test_a_bot_only_reaches_accounts_where_it_has_an_inbox(fake, http):
    fake.add_conversation(2, 5)
    response = await http.post("/api/v1/accounts/2/conversations/5/messages", json={"content": "x"},
                               headers=auth(fake.bot_token))
    assert response.status_code == 401
    fake.add_inbox(2, 20).agent_bot_id = fake.bot.id
    response = await http.post("/api/v1/accounts/2/conversations/5/messages", json={"content": "x"},
                               headers=auth(fake.bot_token))
    assert response.status_code == 200


async def test_management_needs_an_administrator(fake, http):
    agent = fake.add_user(1, name="Agent")
    response = await http.get("/api/v1/accounts/1/agent_bots", headers=auth(agent.token))
    assert response.status_code == 401
    response = await http.get("/platform/api/v1/agent_bots", headers=auth(fake.admin_token))
    assert response.status_code == 401
    response = await http.get("/platform/api/v1/agent_bots", headers=auth(fake.platform_token))
    assert response.status_code == 200


async def test_message_create_response_has_integer_type_and_epoch_time(fake, http):
    response = await http.post(CONV + "/messages", json={"content": "hi", "echo_id": "e1"},
                               headers=auth(fake.bot_token))
    message = response.json()
    assert message["message_type"] == 1 and isinstance(message["created_at"], int)
    assert message["echo_id"] == "e1" and message["sender"]["type"] == "agent_bot"
    assert "sender_type" not in message and "sender_id" not in message  # the create response has neither
    [stored] = fake.messages(128)
    assert stored["id"] == message["id"] and "echo_id" not in stored  # never stored
    assert stored["sender_type"] == "AgentBot" and stored["sender_id"] == fake.bot.id


async def test_a_get_shows_the_newest_message_of_any_kind(fake, http):
    """`GET …/conversations/{id}`: messages[0] is the newest message, private notes and activity included;
    `meta.assignee_type` is absent when no one is assigned."""
    note = await http.post(CONV + "/messages", json={"content": "internal", "private": True},
                           headers=auth(fake.bot_token))
    shown = (await http.get(CONV, headers=auth(fake.bot_token))).json()
    assert [m["id"] for m in shown["messages"]] == [note.json()["id"]] and shown["messages"][0]["private"]
    assert "assignee_type" not in shown["meta"] and shown["first_reply_created_at"] == 0


async def test_a_fault_after_save_applies_the_request(fake, http):
    fake.fail_after_next("POST", CONV + "/messages", status=502)
    response = await http.post(CONV + "/messages", json={"content": "hi"}, headers=auth(fake.bot_token))
    assert response.status_code == 502
    assert [m["content"] for m in fake.messages(128)] == ["hi"]


async def test_invalid_rich_message_is_422(fake, http):
    response = await http.post(CONV + "/messages", headers=auth(fake.bot_token), json={
        "content": "x", "content_type": "input_select", "content_attributes": {"items": [{"label": "a"}]}})
    assert response.status_code == 422
    assert "invalid keys" in response.json()["error"]
    response = await http.post(CONV + "/messages", headers=auth(fake.bot_token), json={
        "content": "x", "content_type": "cards", "content_attributes": {"items": [{"title": "a"}]}})
    assert response.status_code == 422 and "missing actions" in response.json()["error"]
    assert fake.messages(128) == []


async def test_flood_limit_is_200_messages_per_conversation_per_minute(fake, http):
    fake.add_conversation(1, 129)
    for i in range(200):
        response = await http.post(CONV + "/messages", json={"content": str(i)}, headers=auth(fake.bot_token))
        assert response.status_code == 200
    response = await http.post(CONV + "/messages", json={"content": "201"}, headers=auth(fake.bot_token))
    assert response.status_code == 422
    assert response.json() == {"error": "Too many messages"}
    other = await http.post("/api/v1/accounts/1/conversations/129/messages", json={"content": "x"},
                            headers=auth(fake.bot_token))
    assert other.status_code == 200  # the limit is per conversation
    assert len(fake.messages(128)) == 200


async def test_per_ip_limit_answers_like_rack_attack():
    fake = FakeChatwoot(requests_per_minute=3)
    fake.add_conversation(1, 128)
    async with fake.serve(), httpx.AsyncClient(base_url=fake.url) as http:
        codes = [(await http.get(CONV, headers=auth(fake.bot_token))).status_code for _ in range(3)]
        limited = await http.get(CONV, headers=auth(fake.bot_token))
    assert codes == [200, 200, 200]
    assert limited.status_code == 429
    assert limited.headers["content-type"].startswith("text/plain")
    assert limited.text.strip() == "Retry later"
    assert "retry-after" not in limited.headers


async def test_injected_429_has_the_same_shape(fake, http):
    fake.rate_limit_next("POST", "*/messages")
    limited = await http.post(CONV + "/messages", json={"content": "x"}, headers=auth(fake.bot_token))
    assert (limited.status_code, limited.text.strip()) == (429, "Retry later")
    assert "retry-after" not in limited.headers and limited.headers["content-type"].startswith("text/plain")
    again = await http.post(CONV + "/messages", json={"content": "x"}, headers=auth(fake.bot_token))
    assert again.status_code == 200
    assert len(fake.messages(128)) == 1


async def test_fail_next_matches_method_and_glob_and_counts_down(fake, http):
    fake.fail_next("POST", "*/toggle_status", status=502, times=2, body="bad gateway")
    assert (await http.get(CONV, headers=auth(fake.bot_token))).status_code == 200
    statuses = [(await http.post(CONV + "/toggle_status", json={"status": "open"},
                                 headers=auth(fake.bot_token))).status_code for _ in range(3)]
    assert statuses == [502, 502, 200]
    assert fake.conversation(128).status == "open"


async def test_deny_bots_next(fake, http):
    fake.deny_bots_next("GET", CONV)
    response = await http.get(CONV, headers=auth(fake.bot_token))
    assert response.status_code == 401 and "not authorized for bots" in response.json()["error"]


async def test_dropped_response_is_processed_but_never_answered(fake, http):
    fake.drop_response_next("POST", "*/messages")
    with pytest.raises(httpx.ReadTimeout):
        await http.post(CONV + "/messages", json={"content": "x"}, headers=auth(fake.bot_token), timeout=0.3)
    assert [m["content"] for m in fake.messages(128)] == ["x"]


async def test_delay_next_still_processes(fake, http):
    fake.delay_next("POST", "*/labels", 0.05)
    response = await http.post(CONV + "/labels", json={"labels": ["a"]}, headers=auth(fake.bot_token))
    assert response.json() == {"payload": ["a"]}


async def test_state_changes_show_in_get(fake, http):
    token = auth(fake.bot_token)
    fake.add_agent(1, 7, "Ana")
    await http.post(CONV + "/toggle_status", json={"status": "open"}, headers=token)
    await http.post(CONV + "/assignments", json={"team_id": 5}, headers=token)
    await http.post(CONV + "/assignments", json={"assignee_id": 7}, headers=token)
    await http.post(CONV + "/labels", json={"labels": ["billing"]}, headers=token)
    await http.post(CONV + "/custom_attributes", json={"custom_attributes": {"order": 1}}, headers=token)
    await http.post(CONV + "/toggle_priority", json={"priority": "urgent"}, headers=token)
    conversation = (await http.get(CONV, headers=token)).json()
    assert conversation["status"] == "open"
    assert conversation["meta"]["team"] == {"id": 5, "name": "billing"}
    assert conversation["meta"]["assignee"]["id"] == 7 and conversation["meta"]["assignee_type"] == "User"
    assert conversation["labels"] == ["billing"]  # replaced, not merged
    assert conversation["custom_attributes"] == {"order": 1}
    assert conversation["priority"] == "urgent"


async def test_bot_handoff_records_an_activity(fake, http):
    response = await http.post(CONV + "/toggle_status", json={"status": "open"}, headers=auth(fake.bot_token))
    assert response.json() == {"meta": {}, "payload": {"success": True, "conversation_id": 128,
                                                       "current_status": "open", "snoozed_until": None}}
    assert [m["message_type"] for m in fake.messages(128)] == [2]


async def test_unknown_team_clears_the_team_and_answers_null(fake, http):
    fake.conversation(128).team_id = 5
    response = await http.post(CONV + "/assignments", json={"team_id": 77}, headers=auth(fake.bot_token))
    assert response.status_code == 200 and response.json() is None
    assert fake.conversation(128).team_id is None


async def test_requests_are_recorded(fake, http):
    await http.post(CONV + "/messages", json={"content": "hi"}, headers=auth(fake.bot_token))
    [request] = fake.requests_to("POST", CONV + "/messages")
    assert request.json == {"content": "hi"} and request.token == fake.bot_token
    assert request.client == "127.0.0.1" and request.body == b'{"content":"hi"}'


async def test_in_process_transport():
    fake = FakeChatwoot()
    fake.add_conversation(1, 128)
    async with httpx.AsyncClient(transport=fake.transport(), base_url="http://fake") as http:
        response = await http.get(CONV, headers=auth(fake.bot_token))
    assert response.json()["id"] == 128


def test_serve_in_thread_from_sync_code():
    fake = FakeChatwoot()
    fake.add_conversation(1, 128)
    with fake.serve_in_thread():
        response = httpx.get(fake.url + CONV, headers=auth(fake.bot_token))
    assert response.status_code == 200
    assert fake.url is None


async def test_a_bot_reaches_only_accounts_it_belongs_to_or_has_an_inbox_in(fake, http):
    fake.add_account(2)
    fake.add_conversation(2, 900)
    fake.add_account(3)
    fake.add_conversation(3, 901)
    stranger = fake.add_agent_bot(3, name="account three's bot")  # belongs to account 3, no inbox anywhere
    # the seeded bot is connected to an inbox of account 1 only
    response = await http.get("/api/v1/accounts/2/conversations/900", headers=auth(fake.bot_token))
    assert (response.status_code, response.json()) == (401, {"error": "Bot is not authorized to access this account"})
    assert (await http.get("/api/v1/accounts/3/conversations/901",
                           headers=auth(stranger.access_token))).status_code == 200  # its own account
    assert (await http.get("/api/v1/accounts/2/conversations/900",
                           headers=auth(stranger.access_token))).status_code == 401
