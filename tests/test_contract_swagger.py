"""Every request ChatwootClient builds, checked against Chatwoot's own OpenAPI spec with openapi-core.

The spec (../shared/chatwoot/swagger.json, Chatwoot v1.1.0) lags Chatwoot's code in places. Each known
deviation is listed below with the reason, and the test checks it is *still* a deviation, so the list
shrinks when the spec catches up instead of silently hiding a client bug.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from botkit.chatwoot import ChatwootClient
from botkit.rich import Card, CardAction, Cards
from botkit.testing.fake_chatwoot import BOT_ENDPOINTS, FakeChatwoot, RecordedRequest

SPEC_PATH = Path(__file__).resolve().parents[1] / ".." / "shared" / "chatwoot" / "swagger.json"

openapi_core = pytest.importorskip("openapi_core")
from openapi_core import OpenAPI  # noqa: E402
from openapi_core.datatypes import RequestParameters  # noqa: E402
from werkzeug.datastructures import Headers, ImmutableMultiDict  # noqa: E402

# Calls: (name, token kind, coroutine factory). Every public method of ChatwootClient must appear.
CALLS: list[tuple[str, str, Any]] = [
    ("send_message", "bot", lambda c: c.send_message(1, 128, "Hello", echo_id="e-1")),
    ("send_note", "bot", lambda c: c.send_note(1, 128, "note")),
    ("send_rich", "bot", lambda c: c.send_rich(
        1, 128, Cards("Plans", [Card("Pro", "d", "https://x/i.png", [CardAction("postback", "Buy", payload="B")])]))),
    ("get_conversation", "bot", lambda c: c.get_conversation(1, 128)),
    ("version", "bot", lambda c: c.version()),
    ("create_conversation", "bot", lambda c: c.create_conversation(
        1, source_id="src-1", inbox_id=1, contact_id=42, message="Hi", status="pending",
        custom_attributes={"order": "1"})),
    ("toggle_status", "bot", lambda c: c.toggle_status(1, 128, "snoozed", snoozed_until=1893456000)),
    ("toggle_typing", "bot", lambda c: c.toggle_typing(1, 128, False)),
    ("toggle_priority", "bot", lambda c: c.toggle_priority(1, 128, "high")),
    ("assign_agent", "bot", lambda c: c.assign_agent(1, 128, 7)),
    ("assign_team", "bot", lambda c: c.assign_team(1, 128, 5)),
    # assignee_type is not in the spec's schema, which allows extra keys: valid, though undocumented.
    ("assign_bot", "bot", lambda c: c.assign_bot(1, 128, 999)),
    ("get_labels", "bot", lambda c: c.get_labels(1, 128)),
    ("set_labels", "bot", lambda c: c.set_labels(1, 128, ["a"])),
    ("add_labels", "bot", lambda c: c.add_labels(1, 128, ["b"])),
    ("remove_labels", "bot", lambda c: c.remove_labels(1, 128, ["a"])),
    ("set_custom_attributes", "bot", lambda c: c.set_custom_attributes(1, 128, {"x": 1})),
    ("list_agent_bots", "admin", lambda c: c.list_agent_bots(1)),
    ("create_agent_bot", "admin", lambda c: c.create_agent_bot(
        1, name="b", outgoing_url="https://x/y", description="d", bot_type=0,
        avatar_url="https://x/a.png", bot_config={"language": "en"})),
    ("get_agent_bot", "admin", lambda c: c.get_agent_bot(1, 999)),
    ("update_agent_bot", "admin", lambda c: c.update_agent_bot(1, 999, name="n", outgoing_url="https://n/w")),
    ("set_inbox_agent_bot", "admin", lambda c: c.set_inbox_agent_bot(1, 1, 999)),
    ("get_inbox_agent_bot", "admin", lambda c: c.get_inbox_agent_bot(1, 1)),
    ("list_inboxes", "admin", lambda c: c.list_inboxes(1)),
    ("list_teams", "admin", lambda c: c.list_teams(1)),
    ("list_portals", "admin", lambda c: c.list_portals(1)),
    ("list_articles", "admin", lambda c: c.list_articles(1, "docs", page=2)),
    ("reset_agent_bot_token", "admin", lambda c: c.reset_agent_bot_token(1, 999)),
    ("reset_agent_bot_secret", "admin", lambda c: c.reset_agent_bot_secret(1, 999)),
    ("delete_agent_bot", "admin", lambda c: c.delete_agent_bot(1, 999)),
    ("create_platform_bot", "platform", lambda c: c.create_platform_bot(
        name="sys", outgoing_url="https://x/y", description="d", account_id=1, avatar_url="https://x/a.png")),
    ("list_platform_bots", "platform", lambda c: c.list_platform_bots()),
    ("get_platform_bot", "platform", lambda c: c.get_platform_bot(2000)),
    ("update_platform_bot", "platform", lambda c: c.update_platform_bot(2000, name="renamed")),
    ("delete_platform_bot", "platform", lambda c: c.delete_platform_bot(2000)),
]


@dataclass(frozen=True)
class Deviation:
    call: Any
    token: str
    reason: str
    expect: str  # a piece of the validator's complaint, so the deviation is the one described


# Requests Chatwoot's code accepts but the spec does not describe.
REQUEST_DEVIATIONS: dict[str, Deviation] = {
    "version": Deviation(
        lambda c: c.version(), "bot", "GET /api (ApiController#index, Chatwoot's version) is not in the spec",
        "PathNotFound"),
    "reset_agent_bot_token": Deviation(
        lambda c: c.reset_agent_bot_token(1, 999), "admin",
        "POST /agent_bots/{id}/reset_access_token exists in Chatwoot's routes but not in the spec",
        "PathNotFound"),
    "reset_agent_bot_secret": Deviation(
        lambda c: c.reset_agent_bot_secret(1, 999), "admin",
        "POST /agent_bots/{id}/reset_secret (Chatwoot 4.13+) is not in the spec", "PathNotFound"),
    "set_inbox_agent_bot(None)": Deviation(
        lambda c: c.set_inbox_agent_bot(1, 1, None), "admin",
        "the spec types agent_bot as a number, though its own description says null removes the bot",
        "None is not of type 'number'"),
    "list_articles": Deviation(
        lambda c: c.list_articles(1, "docs"), "admin",
        "GET /portals/{id}/articles (articles_controller.rb#index) is not in the spec, which has only its POST",
        "OperationNotFound"),
    "toggle_priority(None)": Deviation(
        lambda c: c.toggle_priority(1, 128, None), "bot",
        "Chatwoot clears the priority for a null/blank value (priority.presence); the spec's enum has no null",
        "None is not one of"),
    "send_message(content=None)": Deviation(
        lambda c: c.send_message(1, 128, None, content_type="input_email"), "bot",
        "the spec requires content; Chatwoot's Message has no presence validation on it",
        "'content' is a required property"),
}

# Endpoints Chatwoot's code lets an agent-bot token call (AccessTokenAuthHelper) but the spec marks user-only.
SPEC_PATHS = {
    "conversations#show": ("get", "/api/v1/accounts/{account_id}/conversations/{conversation_id}"),
    "conversations#create": ("post", "/api/v1/accounts/{account_id}/conversations"),
    "conversations#update": ("patch", "/api/v1/accounts/{account_id}/conversations/{conversation_id}"),
    "conversations#toggle_status": (
        "post", "/api/v1/accounts/{account_id}/conversations/{conversation_id}/toggle_status"),
    "conversations#toggle_typing_status": (
        "post", "/api/v1/accounts/{account_id}/conversations/{conversation_id}/toggle_typing_status"),
    "conversations#toggle_priority": (
        "post", "/api/v1/accounts/{account_id}/conversations/{conversation_id}/toggle_priority"),
    "conversations#custom_attributes": (
        "post", "/api/v1/accounts/{account_id}/conversations/{conversation_id}/custom_attributes"),
    "messages#create": ("post", "/api/v1/accounts/{account_id}/conversations/{conversation_id}/messages"),
    "assignments#create": ("post", "/api/v1/accounts/{account_id}/conversations/{conversation_id}/assignments"),
    "labels#index": ("get", "/api/v1/accounts/{account_id}/conversations/{conversation_id}/labels"),
    "labels#create": ("post", "/api/v1/accounts/{account_id}/conversations/{conversation_id}/labels"),
}
BOT_ALLOWED_BUT_USER_ONLY_IN_SPEC = {
    "conversations#show", "labels#index", "labels#create", "conversations#custom_attributes",
}


@pytest.fixture(scope="module")
def spec() -> dict:
    if not SPEC_PATH.is_file():
        pytest.skip(f"Chatwoot's OpenAPI spec is not at {SPEC_PATH} (it lives outside the repository)")
    return json.loads(SPEC_PATH.read_text())


@pytest.fixture(scope="module")
def openapi(spec) -> OpenAPI:
    return OpenAPI.from_file_path(str(SPEC_PATH))


class SpecRequest:
    """A recorded request in the shape openapi-core reads."""

    host_url = "https://app.chatwoot.com"

    def __init__(self, recorded: RecordedRequest) -> None:
        self.path = recorded.path
        self.method = recorded.method.lower()
        self.body = recorded.body or None
        self.content_type = recorded.headers.get("content-type", "application/json")
        headers = dict(recorded.headers)
        if "api-access-token" in headers:  # the spec names api_access_token; Rack reads both as one header
            headers["api_access_token"] = headers.pop("api-access-token")
        self.parameters = RequestParameters(header=Headers(headers), query=ImmutableMultiDict())


def seeded_fake() -> FakeChatwoot:
    fake = FakeChatwoot()
    fake.add_conversation(1, 128, labels=["a"])
    fake.add_team(1, 5, "billing")
    fake.add_agent(1, 7, "Ana")
    fake.add_agent_bot(1, name="other", bot_id=999, outgoing_url="https://o/w")
    platform_bot = fake.add_agent_bot(None, name="sys", bot_id=2000)
    platform_bot.platform_made = True
    fake.add_portal("docs")
    return fake


def record(call, token_kind: str) -> list[RecordedRequest]:
    """Run one client call against an in-process fake; return the requests it sent."""
    fake = seeded_fake()
    token = {"bot": fake.bot_token, "admin": fake.admin_token, "platform": fake.platform_token}[token_kind]

    async def run() -> None:
        async with ChatwootClient("http://fake", token, transport=fake.transport()) as client:
            await call(client)

    asyncio.run(run())
    assert fake.requests, "the call sent nothing"
    return fake.requests


def spec_errors(openapi: OpenAPI, requests: list[RecordedRequest]) -> list[str]:
    errors = []
    for recorded in requests:
        try:
            openapi.validate_request(SpecRequest(recorded))
        except Exception as exc:  # openapi-core raises one of several error classes
            cause = exc.__cause__ or exc
            errors.append(f"{recorded.method} {recorded.path}: {type(exc).__name__}: {cause}")
    return errors


def test_every_client_method_is_covered():
    public = {name for name, member in inspect.getmembers(ChatwootClient, inspect.iscoroutinefunction)
              if not name.startswith("_") and name not in ("aclose", "__aenter__", "__aexit__")}
    assert public == {name for name, _, _ in CALLS}


@pytest.mark.parametrize("name,token,call", CALLS, ids=[name for name, _, _ in CALLS])
def test_request_matches_the_spec(openapi, name, token, call):
    errors = spec_errors(openapi, record(call, token))
    if name in REQUEST_DEVIATIONS:
        assert errors, f"{name} now matches the spec: remove it from REQUEST_DEVIATIONS"
    else:
        assert errors == []


@pytest.mark.parametrize("name", list(REQUEST_DEVIATIONS))
def test_known_deviation_is_still_a_deviation(openapi, name):
    deviation = REQUEST_DEVIATIONS[name]
    errors = spec_errors(openapi, record(deviation.call, deviation.token))
    assert errors, f"the spec caught up ({deviation.reason}); drop {name!r} from REQUEST_DEVIATIONS"
    assert len(errors) == 1 and deviation.expect in errors[0], errors


def test_bot_token_endpoints_the_spec_marks_user_only(spec):
    user_only = set()
    for action in BOT_ENDPOINTS:
        method, path = SPEC_PATHS[action]
        operation = spec["paths"][path][method]
        schemes = {name for requirement in operation.get("security", []) for name in requirement}
        if "agentBotApiKey" not in schemes:
            user_only.add(action)
    assert user_only == BOT_ALLOWED_BUT_USER_ONLY_IN_SPEC


def test_the_validator_catches_a_wrong_body(openapi):
    """Guards the test itself: a body the spec forbids must fail validation."""
    fake = seeded_fake()
    wrong = RecordedRequest("POST", "/api/v1/accounts/1/conversations/128/toggle_status",
                            {"content-type": "application/json", "api_access_token": fake.bot_token},
                            None, 0.0, "127.0.0.1", b'{"status": "closed"}')
    assert spec_errors(openapi, [wrong])
