"""A fake Chatwoot that answers the API a bot calls the way Chatwoot does (the bot-token allow-list of
`app/controllers/concerns/access_token_auth_helper.rb`, the answers of `app/controllers/api/v1/accounts/`).

    fake = FakeChatwoot()
    fake.add_conversation(conversation_id=128, status="pending")
    async with fake.serve():                      # a real uvicorn on 127.0.0.1, random port
        async with ChatwootClient(fake.url, fake.bot_token) as client:
            await client.send_message(1, 128, "Hello")
    assert fake.messages(128)[0]["content"] == "Hello"

It runs in-process too (`fake.transport()`, an httpx.ASGITransport), or in a background thread for
synchronous code such as the CLI (`with fake.serve_in_thread(): ...`).

What it reproduces: paths and bodies; `api_access_token` auth with `401 {"error":"Invalid Access Token"}`, and
for a missing header devise's `401 {"errors":["You need to sign in or sign up before continuing."]}`;
suspended accounts (`suspend_account`: `401 {"error":"Account is suspended"}`);
the agent-bot allow-list (`401 {"error":"Access to this endpoint is not authorized for bots"}`), which can
be narrowed to an older release's; a bot may only touch accounts it belongs to or where it is connected to
an inbox; bot management for administrators only; `404 {"error":"Resource could not be found"}`; 422s for invalid rich
messages and more than 200 messages per conversation per minute ("Too many messages"); an optional
per-IP request limit answering `429`, text/plain `Retry later`, no Retry-After; integer `message_type`
and epoch `created_at` in the message create response; state changes that GET shows afterwards; messages
created as multipart with `attachments[]` files, served back at their `data_url` (`add_file` hosts a file a
contact "sent", for incoming attachments).

Every request is recorded with the status it was answered (`fake.requests`, `fake.requests_to(...)`), and
faults can be injected on demand: `fail_next` (before anything is saved), `fail_after_next` (saved, then
answered 500 or 502), `rate_limit_next`, `deny_bots_next`, `delay_next` and `drop_response_next` (the
request is processed, then never answered). `GET` of a conversation shows its newest message of any kind;
`team_show_fails = True` makes a bot's GET of a conversation with a team answer 500, as Chatwoot up to 4.15.1 does.
`GET /api` answers the version, as
Chatwoot does, without a token.

Channels: a conversation's inbox has a channel type (`fake.add_conversation(..., channel="whatsapp")`).
Outgoing content is rendered as Liquid before it is saved, as `app/models/concerns/liquidable.rb` does (with
python-liquid, when installed). Each public outgoing message is then "sent" to the channel's provider
(`botkit.testing.providers`): a refusal marks it failed with `content_attributes.external_error` and queues
it in `fake.failures` (the flow API delivers the `message_updated` Chatwoot sends for it); a message the
channel never sends is kept in `fake.dropped`.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.parser
import email.policy
import fnmatch
import itertools
import json
import re
import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from botkit.rich import content_attributes_errors
from botkit.testing import providers
from botkit.testing.fake_helpcenter import HelpCenterMixin
from botkit.testing.server import LoopbackFake

# What an agent-bot token may call (app/controllers/concerns/access_token_auth_helper.rb), by release.
BOT_ENDPOINTS = frozenset(
    {
        "conversations#show", "conversations#create", "conversations#update", "conversations#toggle_status",
        "conversations#toggle_typing_status", "conversations#toggle_priority",
        "conversations#custom_attributes", "messages#create", "assignments#create", "labels#index",
        "labels#create",
    }
)
BOT_ENDPOINTS_BEFORE_4_14_2 = BOT_ENDPOINTS - {"conversations#show", "labels#index", "labels#create"}
BOT_ENDPOINTS_BEFORE_4_11_2 = BOT_ENDPOINTS_BEFORE_4_14_2 - {"conversations#toggle_typing_status"}

INVALID_TOKEN = "Invalid Access Token"  # noqa: S105 (an error text, not a token)
NOT_FOR_BOTS = "Access to this endpoint is not authorized for bots"
NOT_FOUND = "Resource could not be found"
SIGN_IN = "You need to sign in or sign up before continuing."
STATUSES = ("open", "resolved", "pending", "snoozed")
PRIORITIES = (None, "low", "medium", "high", "urgent")
CONTENT_TYPES = ("text", "input_text", "input_textarea", "input_email", "input_select", "cards", "form",
                 "article", "incoming_email", "sticker", "integrations")
MESSAGE_TYPES = {"incoming": 0, "outgoing": 1, "activity": 2, "template": 3}
FLOOD_LIMIT = 200
MAX_ATTACHMENTS = 15  # app/models/message.rb
FILES_PATH = "/rails/active_storage/blobs/redirect"
# app/helpers/file_type_helper.rb
_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/bmp", "image/webp")
_VIDEO_TYPES = ("video/ogg", "video/mp4", "video/webm", "video/quicktime")


def _error(status: int, text: str) -> JSONResponse:
    return JSONResponse({"error": text}, status_code=status)


def _retry_later() -> PlainTextResponse:
    """What Rack::Attack answers: 429, text/plain, `Retry later`, no Retry-After."""
    return PlainTextResponse("Retry later\n", status_code=429)


class ChatwootReply(Exception):  # noqa: N818
    """Raised inside a handler to answer with an error right away."""

    def __init__(self, response: Response) -> None:
        self.response = response


# Records ----------------------------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    """One request as the fake received it."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    time: float
    client: str
    body: bytes = b""
    status: int | None = None  # the answer's HTTP status (for a dropped answer: what was applied)
    files: list[UploadedFile] = field(default_factory=list)  # a multipart body's files (its fields are `json`)

    @property
    def token(self) -> str | None:
        return self.headers.get("api_access_token") or self.headers.get("api-access-token")


@dataclass
class UploadedFile:
    """A file of a multipart request: its form field, file name, media type and bytes."""

    field: str
    name: str
    content_type: str
    data: bytes

    @property
    def file_type(self) -> str:
        """Chatwoot's name for its kind (app/helpers/file_type_helper.rb)."""
        if self.content_type in _IMAGE_TYPES:
            return "image"
        if self.content_type in _VIDEO_TYPES:
            return "video"
        return "audio" if "audio/" in self.content_type else "file"


def parse_multipart(raw: bytes, content_type: str) -> tuple[dict[str, Any], list[UploadedFile]]:
    """A multipart/form-data body as (fields, files); `name[]` fields become lists, as Rails reads them."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + raw)
    fields: dict[str, Any] = {}
    files: list[UploadedFile] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition") or ""
        payload = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename is not None:
            files.append(UploadedFile(name, filename, part.get_content_type(), payload))
        elif name.endswith("[]"):
            fields.setdefault(name[:-2], []).append(payload.decode())
        else:
            fields[name] = payload.decode()
    return fields, files


@dataclass
class Contact:
    id: int
    name: str = "Jane Doe"
    email: str | None = "jane@example.com"

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "email": self.email, "phone_number": None,
                "identifier": None, "thumbnail": "", "custom_attributes": {}, "additional_attributes": {},
                "type": "contact"}


@dataclass
class Inbox:
    id: int
    account_id: int
    name: str = "Website"
    channel_type: str = "Channel::WebWidget"
    agent_bot_id: int | None = None
    # Working hours as Chatwoot keeps them: default week Mon-Fri 09:00-17:00, off until enabled
    # (app/models/concerns/out_of_offisable.rb, app/views/api/v1/models/_inbox.json.jbuilder).
    working_hours_enabled: bool = False
    timezone: str = "UTC"
    working_hours: list[dict[str, Any]] = field(default_factory=lambda: [
        {"day_of_week": d, "closed_all_day": d in (0, 6), "open_hour": None if d in (0, 6) else 9,
         "open_minutes": None if d in (0, 6) else 0, "close_hour": None if d in (0, 6) else 17,
         "close_minutes": None if d in (0, 6) else 0, "open_all_day": False} for d in range(7)])

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "account_id": self.account_id, "name": self.name, "channel_type": self.channel_type,
                "channel_id": self.id, "avatar_url": "", "greeting_enabled": False, "enable_auto_assignment": True,
                "working_hours_enabled": self.working_hours_enabled, "timezone": self.timezone,
                "working_hours": self.working_hours, "out_of_office_message": None}


@dataclass
class Team:
    id: int
    account_id: int
    name: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "description": "", "allow_auto_assign": True,
                "account_id": self.account_id, "is_member": False}


@dataclass
class User:
    """An agent or administrator of one account, with a user access token."""

    id: int
    account_id: int
    name: str
    token: str
    administrator: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "account_id": self.account_id, "name": self.name, "available_name": self.name,
                "email": f"user{self.id}@example.com", "role": "administrator" if self.administrator else "agent",
                "availability_status": "online", "auto_offline": True, "confirmed": True, "thumbnail": ""}


@dataclass
class AgentBot:
    id: int
    account_id: int | None  # None: a system bot made through the platform API
    name: str
    outgoing_url: str
    access_token: str
    secret: str
    description: str = ""
    bot_type: str = "webhook"
    platform_made: bool = False
    avatar_url: str = ""  # as if Avatar::AvatarFromUrlJob had fetched the given avatar_url
    bot_config: dict[str, Any] = field(default_factory=dict)

    def to_json(self, *, for_admin: bool = True) -> dict[str, Any]:
        """The account API's view (app/views/api/v1/models/_agent_bot.json.jbuilder): a system bot's outgoing
        URL and secret are not shown."""
        system = self.account_id is None
        data = {"id": self.id, "name": self.name, "description": self.description, "thumbnail": self.avatar_url,
                "bot_type": self.bot_type, "bot_config": self.bot_config, "account_id": self.account_id,
                "access_token": self.access_token, "system_bot": system}
        if not system:
            data["outgoing_url"] = self.outgoing_url
        if for_admin and not system:
            data["secret"] = self.secret
        return data

    def platform_json(self) -> dict[str, Any]:
        """The Platform API's view (app/views/platform/api/v1/models/_agent_bot.json.jbuilder): no token."""
        return {"id": self.id, "name": self.name, "description": self.description,
                "outgoing_url": self.outgoing_url, "account_id": self.account_id}

    def slim_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "description": self.description, "avatar_url": "",
                "thumbnail": "", "type": "agent_bot"}


@dataclass
class Conversation:
    """A conversation, addressed by its display id as in every API path."""

    account_id: int
    id: int
    inbox_id: int
    contact: Contact
    source_id: str
    status: str = "pending"
    labels: list[str] = field(default_factory=list)
    custom_attributes: dict[str, Any] = field(default_factory=dict)
    team_id: int | None = None
    assignee_id: int | None = None
    assignee_type: str | None = None  # "User", "AgentBot" or None
    priority: str | None = None
    snoozed_until: int | None = None
    typing: str = "off"
    can_reply: bool = True  # inside the messaging window (app/services/conversations/message_window_service.rb)
    messages: list[dict[str, Any]] = field(default_factory=list)
    additional_attributes: dict[str, Any] = field(default_factory=dict)  # {"type": "instagram_direct_message"}
    created_at: int = field(default_factory=lambda: int(time.time()))


# Faults -----------------------------------------------------------------------------------------------


@dataclass
class Fault:
    """One injected misbehaviour for requests matching `method` and `path_glob`, `times` times."""

    method: str
    path_glob: str
    kind: str  # "status": answer before processing; "after": process, then answer `status`; "delay": wait, then
    # process; "hang": process, never answer
    times: int = 1
    status: int = 500
    body: Any = None
    headers: dict[str, str] | None = None
    seconds: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and fnmatch.fnmatchcase(path, self.path_glob)

    def response(self) -> Response:
        if self.status == 429 and self.body is None:
            response: Response = _retry_later()
        elif isinstance(self.body, str | bytes):
            response = PlainTextResponse(self.body, status_code=self.status)
        else:
            body = self.body if self.body is not None else {"error": "Internal Server Error"}
            response = JSONResponse(body, status_code=self.status)
        response.headers.update(self.headers or {})
        return response


class FaultPlan:
    """The queue of faults to inject; the first matching fault with times left is used."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, method: str, path: str, kinds: tuple[str, ...]) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.kind in kinds and fault.times > 0 and fault.matches(method, path):
                    fault.times -= 1
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()


class SlidingWindow:
    """Counts events per key over the last `seconds` (per-IP requests, per-conversation messages)."""

    def __init__(self, seconds: float, clock: Callable[[], float]) -> None:
        self.seconds = seconds
        self.clock = clock
        self._events: dict[Any, deque[float]] = defaultdict(deque)

    def count(self, key: Any) -> int:
        now = self.clock()
        events = self._events[key]
        while events and events[0] <= now - self.seconds:
            events.popleft()
        return len(events)

    def add(self, key: Any) -> None:
        self._events[key].append(self.clock())


@dataclass
class Principal:
    """Who a token belongs to."""

    kind: str  # "user", "bot" or "platform"
    user: User | None = None
    bot: AgentBot | None = None


# The fake -----------------------------------------------------------------------------------------------

Handler = Callable[[Request, Principal], Awaitable[Response]]


class FakeChatwoot(HelpCenterMixin, LoopbackFake):
    """An in-memory Chatwoot: seed it, point a client at it, then inspect what it received and holds."""

    def __init__(
        self,
        *,
        account_id: int = 1,
        requests_per_minute: int | None = None,
        messages_per_minute: int = FLOOD_LIMIT,
        bot_endpoints: frozenset[str] = BOT_ENDPOINTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bot_endpoints = bot_endpoints
        self.version = "4.15.1"  # what GET /api reports
        # Chatwoot up to 4.15.1: a bot's GET of a conversation with a team answers 500, as
        # app/views/api/v1/conversations/partials/_team.json.jbuilder calls `Current.user.teams` (fixed in #15612)
        self.team_show_fails = False
        self.requests_per_minute = requests_per_minute
        self.messages_per_minute = messages_per_minute
        self.clock = clock
        self.requests: list[RecordedRequest] = []
        self.faults = FaultPlan()
        self.url: str | None = None
        self._ip_window = SlidingWindow(60.0, clock)
        self._message_window = SlidingWindow(60.0, clock)
        self._ids = itertools.count(1000)
        self.accounts: set[int] = set()
        self.suspended_accounts: set[int] = set()
        self.inboxes: dict[int, Inbox] = {}
        self.teams: dict[int, Team] = {}
        self.users: dict[int, User] = {}
        self.bots: dict[int, AgentBot] = {}
        self.conversations: dict[tuple[int, int], Conversation] = {}
        self.files: dict[str, UploadedFile] = {}  # served at FILES_PATH/<key>/<name>
        self.failures: list[tuple[Conversation, dict[str, Any]]] = []  # refused by the provider, not yet delivered
        self.dropped: list[dict[str, Any]] = []  # never sent by the channel, and never marked failed
        self.refusals: list[str] = []  # errors the provider gives the next messages, whatever they are
        self.platform_token = "platform-" + secrets.token_hex(12)
        self._init_helpcenter()  # portals and articles: fake_helpcenter.py
        self.app = Starlette(routes=self._routes(), exception_handlers={404: self._not_found, 405: self._not_found})
        # Seed: one account, an administrator, one inbox and a bot connected to it.
        self.account_id = account_id
        self.add_account(account_id)
        self.admin = self.add_user(account_id, name="Admin", administrator=True)
        self.inbox = self.add_inbox(account_id, 1, "Website")
        self.bot = self.add_agent_bot(account_id, name="botkit", outgoing_url="https://bot.example.com/webhook",
                                      inbox_ids=[self.inbox.id])

    # Seeding ------------------------------------------------------------------------------------------

    @property
    def bot_token(self) -> str:
        return self.bot.access_token

    @property
    def bot_secret(self) -> str:
        return self.bot.secret

    @property
    def admin_token(self) -> str:
        return self.admin.token

    def _next_id(self) -> int:
        return next(self._ids)

    def add_account(self, account_id: int) -> None:
        self.accounts.add(account_id)

    def suspend_account(self, account_id: int | None = None) -> None:
        """Every request into the account answers 401 "Account is suspended" (`account.active?` is false)."""
        self.suspended_accounts.add(account_id or self.account_id)

    def add_user(self, account_id: int | None = None, user_id: int | None = None, *, name: str = "Agent",
                 administrator: bool = False, token: str | None = None) -> User:
        account_id = account_id or self.account_id
        user = User(user_id or self._next_id(), account_id, name, token or "user-" + secrets.token_hex(12),
                    administrator)
        self.users[user.id] = user
        return user

    def add_agent(self, account_id: int, agent_id: int, name: str = "Agent") -> User:
        return self.add_user(account_id, agent_id, name=name)

    def add_inbox(self, account_id: int, inbox_id: int, name: str = "Website",
                  channel_type: str = "Channel::WebWidget") -> Inbox:
        self.add_account(account_id)
        inbox = self.inboxes[inbox_id] = Inbox(inbox_id, account_id, name, channel_type)
        return inbox

    def channel_inbox(self, channel: str, account_id: int | None = None) -> Inbox:
        """The inbox of this channel type (`Channel::Whatsapp`), made and connected to the bot on first use."""
        account_id = account_id or self.account_id
        for inbox in self.inboxes.values():
            if inbox.channel_type == channel and inbox.account_id == account_id:
                return inbox
        inbox = self.add_inbox(account_id, max(self.inboxes) + 1, channel.removeprefix("Channel::"), channel)
        inbox.agent_bot_id = self.bot.id
        return inbox

    def channel_of(self, conversation: Conversation) -> str:
        inbox = self.inboxes.get(conversation.inbox_id)
        return inbox.channel_type if inbox is not None else "Channel::WebWidget"  # an inbox the test never made

    def take_failures(self, conversation: Conversation) -> list[dict[str, Any]]:
        """The messages of `conversation` the provider refused since the last call (oldest first)."""
        mine = [m for c, m in self.failures if c is conversation]
        self.failures = [(c, m) for c, m in self.failures if c is not conversation]
        return mine

    def add_team(self, account_id: int, team_id: int, name: str) -> Team:
        team = self.teams[team_id] = Team(team_id, account_id, name)
        return team

    def add_agent_bot(self, account_id: int | None, *, name: str, outgoing_url: str = "",
                      inbox_ids: list[int] | tuple[int, ...] = (), bot_id: int | None = None) -> AgentBot:
        bot = AgentBot(bot_id or self._next_id(), account_id, name, outgoing_url,
                       access_token="bot-" + secrets.token_hex(12), secret=secrets.token_hex(16))
        self.bots[bot.id] = bot
        for inbox_id in inbox_ids:
            self.inboxes[inbox_id].agent_bot_id = bot.id
        return bot

    def add_conversation(
        self,
        account_id: int | None = None,
        conversation_id: int | None = None,
        *,
        status: str = "pending",
        inbox_id: int | None = None,
        labels: list[str] | tuple[str, ...] = (),
        custom_attributes: dict[str, Any] | None = None,
        team_id: int | None = None,
        assignee_id: int | None = None,
        assignee_type: str | None = None,
        priority: str | None = None,
        contact_id: int = 42,
        source_id: str | None = None,
        channel: str | None = None,
        can_reply: bool = True,
    ) -> Conversation:
        """A conversation in `inbox_id`, or in the inbox of `channel` (whatsapp, Channel::Telegram, ...)."""
        account_id = account_id or self.account_id
        self.add_account(account_id)
        if channel is not None:
            from botkit.testing.factories import class_name

            inbox_id = self.channel_inbox(class_name(channel) or "Channel::WebWidget", account_id).id
        conversation_id = conversation_id or self._next_id()
        if assignee_id is not None and assignee_type is None:
            assignee_type = "User"
        conversation = Conversation(
            account_id, conversation_id, inbox_id or self.inbox.id, Contact(contact_id),
            source_id or secrets.token_hex(8), status, list(labels), dict(custom_attributes or {}), team_id,
            assignee_id, assignee_type, priority, can_reply=can_reply,
        )
        self.conversations[(account_id, conversation_id)] = conversation
        return conversation

    def add_message(self, conversation_id: int, content: str, *, account_id: int | None = None,
                    message_type: str = "incoming", sender_type: str | None = "Contact", sender_id: int | None = 42,
                    private: bool = False, content_attributes: dict[str, Any] | None = None,
                    source_id: str | None = None) -> dict[str, Any]:
        """A message written elsewhere: the contact's (the default), an agent's (`sender_type="User"`), or one
        sent from a phone app (`sender_type=None`, `content_attributes={"external_echo": True}`)."""
        conversation = self.conversation(conversation_id, account_id)
        message = {
            "id": self._next_id(), "content": content, "inbox_id": conversation.inbox_id,
            "conversation_id": conversation.id, "message_type": MESSAGE_TYPES[message_type],
            "content_type": "text", "status": "sent", "content_attributes": dict(content_attributes or {}),
            "created_at": int(time.time()), "private": private, "source_id": source_id,
            "sender": None if sender_type is None else {"id": sender_id, "type": sender_type.lower()},
            "sender_type": sender_type, "sender_id": sender_id if sender_type else None,
        }
        conversation.messages.append(message)
        return message

    # Faults -------------------------------------------------------------------------------------------

    def fail_next(self, method: str, path_glob: str, status: int = 500, times: int = 1, body: Any = None,
                  headers: dict[str, str] | None = None) -> Fault:
        """Answer the next `times` matching requests with `status` (and `body`) without processing them."""
        return self.faults.add(Fault(method, path_glob, "status", times, status, body, headers))

    def rate_limit_next(self, method: str = "*", path_glob: str = "*", times: int = 1) -> Fault:
        """Answer as Rack::Attack does: 429, text/plain `Retry later`, no Retry-After."""
        return self.fail_next(method, path_glob, 429, times)

    def deny_bots_next(self, method: str = "*", path_glob: str = "*", times: int = 1) -> Fault:
        return self.fail_next(method, path_glob, 401, times, {"error": NOT_FOR_BOTS})

    def fail_after_next(self, method: str, path_glob: str, status: int = 500, times: int = 1,
                        body: Any = None) -> Fault:
        """Process the next `times` matching requests, then answer `status`: an exception after the record was
        saved (Rails answers 500), or a proxy's 502 for an answer it lost."""
        return self.faults.add(Fault(method, path_glob, "after", times, status, body))

    def refuse_next(self, error: str, times: int = 1) -> None:
        """The channel's provider refuses the next `times` public outgoing messages with `error` (Chatwoot then
        marks each failed with `external_error`), e.g. "(#131000) Something went wrong"."""
        self.refusals.extend([error] * times)

    def delay_next(self, method: str, path_glob: str, seconds: float, times: int = 1) -> Fault:
        """Wait `seconds` before processing the next `times` matching requests."""
        return self.faults.add(Fault(method, path_glob, "delay", times, seconds=seconds))

    def drop_response_next(self, method: str, path_glob: str, times: int = 1) -> Fault:
        """Process the next matching requests, then never answer (the client must time out).

        Only meaningful over a real socket (`serve()`): httpx applies no timeout to an ASGITransport.
        """
        return self.faults.add(Fault(method, path_glob, "hang", times))

    # Queries ------------------------------------------------------------------------------------------

    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        """The recorded requests with this method (`*`: any) and path (a glob: `*` and `?` work)."""
        return [r for r in self.requests if method in ("*", r.method) and fnmatch.fnmatchcase(r.path, path)]

    def conversation(self, conversation_id: int, account_id: int | None = None) -> Conversation:
        return self.conversations[(account_id or self.account_id, conversation_id)]

    def messages(self, conversation_id: int, account_id: int | None = None) -> list[dict[str, Any]]:
        return self.conversation(conversation_id, account_id).messages

    def agent_note(self, conversation_id: int, content: str, *, account_id: int | None = None,
                   agent: User | None = None) -> dict[str, Any]:
        """An agent writes a private note in the conversation: stored as Chatwoot stores it (outgoing,
        private, sender the user), and returned as the `message_created` delivery Chatwoot sends the bot
        for it (app/models/message.rb#webhook_data; the sender is app/models/user.rb#webhook_data)."""
        from botkit.testing import factories

        conversation = self.conversation(conversation_id, account_id)
        agent = agent or next((u for u in self.users.values() if u.account_id == conversation.account_id
                               and not u.administrator), None) or self.add_agent(conversation.account_id, 7, "Alex")
        message = self._store_message(conversation, Principal("user", user=agent),
                                      {"content": content, "private": True})
        sender = {"id": agent.id, "name": agent.name, "avatar_url": "", "availability_status": "online",
                  "thumbnail": "", "type": "user"}
        return factories.private_note(content, message_id=message["id"], account_id=conversation.account_id,
                                      conversation_id=conversation.id, inbox_id=conversation.inbox_id,
                                      status=conversation.status, assignee_type=conversation.assignee_type,
                                      sender=sender)

    # Running ------------------------------------------------------------------------------------------

    def transport(self) -> httpx.ASGITransport:
        """An in-process transport for `ChatwootClient(..., transport=fake.transport())`."""
        self.url = self.url or "http://fake-chatwoot.test"
        return httpx.ASGITransport(app=self.app, client=("127.0.0.1", 40000))

    @contextlib.contextmanager
    def serve_in_thread(self, host: str = "127.0.0.1") -> Iterator[FakeChatwoot]:
        """Run `serve()` in a background thread with its own event loop, for synchronous tests."""
        ready = threading.Event()
        stop: asyncio.Event | None = None
        loop_holder: list[asyncio.AbstractEventLoop] = []
        failure: list[BaseException] = []

        async def main() -> None:
            nonlocal stop
            stop = asyncio.Event()
            loop_holder.append(asyncio.get_running_loop())
            async with self.serve(host):
                ready.set()
                await stop.wait()

        def run() -> None:
            try:
                asyncio.run(main())
            except BaseException as exc:  # surfaced to the caller below
                failure.append(exc)
                ready.set()

        thread = threading.Thread(target=run, name="fake-chatwoot", daemon=True)
        thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        try:
            yield self
        finally:
            if loop_holder and stop is not None:
                loop_holder[0].call_soon_threadsafe(stop.set)
            thread.join(10)

    def add_file(self, name: str, data: bytes, content_type: str) -> str:
        """Host a file (one a contact sent) and return its URL, as a message's `data_url` gives it. Call it
        once the fake is served (its URL has the port)."""
        if self.url is None:
            raise RuntimeError("serve the fake first: a file's URL has the fake's port in it")
        key = secrets.token_urlsafe(12)
        self.files[key] = UploadedFile("attachments[]", name, content_type, data)
        return self._file_url(key, name)

    def _file_url(self, key: str, name: str) -> str:
        return f"{self.url}{FILES_PATH}/{key}/{name}"

    # Request pipeline ---------------------------------------------------------------------------------

    def _routes(self) -> list[Route]:
        account = "/api/v1/accounts/{account_id:int}"
        conversation = account + "/conversations/{conversation_id:int}"
        table: list[tuple[str, str, str, Handler]] = [
            ("GET", conversation, "conversations#show", self._show_conversation),
            ("PATCH", conversation, "conversations#update", self._update_conversation),
            ("POST", account + "/conversations", "conversations#create", self._create_conversation),
            ("POST", conversation + "/toggle_status", "conversations#toggle_status", self._toggle_status),
            ("POST", conversation + "/toggle_typing_status", "conversations#toggle_typing_status",
             self._toggle_typing),
            ("POST", conversation + "/toggle_priority", "conversations#toggle_priority", self._toggle_priority),
            ("POST", conversation + "/custom_attributes", "conversations#custom_attributes",
             self._custom_attributes),
            ("GET", conversation + "/messages", "messages#index", self._list_messages),
            ("POST", conversation + "/messages", "messages#create", self._create_message),
            ("POST", conversation + "/assignments", "assignments#create", self._assign),
            ("GET", conversation + "/labels", "labels#index", self._get_labels),
            ("POST", conversation + "/labels", "labels#create", self._set_labels),
            ("GET", account + "/agent_bots", "agent_bots#index", self._list_bots),
            ("POST", account + "/agent_bots", "agent_bots#create", self._create_bot),
            ("GET", account + "/agent_bots/{bot_id:int}", "agent_bots#show", self._show_bot),
            ("PATCH", account + "/agent_bots/{bot_id:int}", "agent_bots#update", self._update_bot),
            ("DELETE", account + "/agent_bots/{bot_id:int}", "agent_bots#destroy", self._delete_bot),
            ("POST", account + "/agent_bots/{bot_id:int}/reset_access_token", "agent_bots#reset_access_token",
             self._reset_bot_token),
            ("POST", account + "/agent_bots/{bot_id:int}/reset_secret", "agent_bots#reset_secret",
             self._reset_bot_secret),
            ("GET", account + "/inboxes", "inboxes#index", self._list_inboxes),
            ("POST", account + "/inboxes/{inbox_id:int}/set_agent_bot", "inboxes#set_agent_bot",
             self._set_inbox_bot),
            ("GET", account + "/inboxes/{inbox_id:int}/agent_bot", "inboxes#agent_bot", self._inbox_bot),
            ("GET", account + "/teams", "teams#index", self._list_teams),
            ("GET", account + "/portals", "portals#index", self._list_portals),
            ("GET", account + "/portals/{portal_slug}/articles", "articles#index", self._list_articles),
            ("GET", "/platform/api/v1/agent_bots", "platform/agent_bots#index", self._platform_list_bots),
            ("POST", "/platform/api/v1/agent_bots", "platform/agent_bots#create", self._platform_create_bot),
            ("GET", "/platform/api/v1/agent_bots/{bot_id:int}", "platform/agent_bots#show", self._platform_show_bot),
            ("PATCH", "/platform/api/v1/agent_bots/{bot_id:int}", "platform/agent_bots#update",
             self._platform_update_bot),
            ("DELETE", "/platform/api/v1/agent_bots/{bot_id:int}", "platform/agent_bots#destroy",
             self._platform_delete_bot),
        ]
        routes = [Route(path, self._endpoint(action, handler), methods=[method], name=action)
                  for method, path, action, handler in table]
        return [Route("/api", self._version, methods=["GET"], name="api#index"),
                Route(FILES_PATH + "/{key}/{name}", self._serve_file, methods=["GET"], name="blobs#show"), *routes]

    async def _serve_file(self, request: Request) -> Response:
        """An attachment's `data_url`, unauthenticated as Active Storage's signed URLs are."""
        recorded = await self._record(request)
        stored = self.files.get(request.path_params["key"])
        recorded.status = 200 if stored is not None else 404
        if stored is None:
            return _error(404, NOT_FOUND)
        return Response(stored.data, media_type=stored.content_type)

    async def _version(self, request: Request) -> Response:
        """`GET /api`, unauthenticated: what Chatwoot answers about itself (ApiController#index)."""
        (await self._record(request)).status = 200
        return JSONResponse({"version": self.version, "timestamp": time.strftime("%Y-%m-%d %H:%M:%S"),
                             "queue_services": "ok", "data_services": "ok"})

    async def _not_found(self, request: Request, exc: Exception) -> Response:
        (await self._record(request)).status = 404
        return _error(404, NOT_FOUND)

    async def _record(self, request: Request) -> RecordedRequest:
        raw = await request.body()
        files: list[UploadedFile] = []
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            body, files = parse_multipart(raw, request.headers["content-type"])
        else:
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
        client = request.client.host if request.client else "unknown"
        recorded = RecordedRequest(request.method, request.url.path, dict(request.headers), body, time.time(),
                                   client, raw, files=files)
        self.requests.append(recorded)
        return recorded

    def _endpoint(self, action: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            recorded = await self._record(request)
            response = await answer(request, recorded)
            recorded.status = response.status_code if recorded.status is None else recorded.status
            return response

        async def answer(request: Request, recorded: RecordedRequest) -> Response:
            method, path = request.method, request.url.path
            client = request.client.host if request.client else "unknown"
            if self.requests_per_minute is not None:
                if self._ip_window.count(client) >= self.requests_per_minute:
                    return _retry_later()
                self._ip_window.add(client)
            fault = self.faults.take(method, path, ("status", "delay"))
            if fault is not None and fault.kind == "status":
                return fault.response()
            if fault is not None and fault.kind == "delay":
                await asyncio.sleep(fault.seconds)
            try:
                principal = self._authenticate(request, action)
                response = await handler(request, principal)
            except ChatwootReply as reply:
                return reply.response
            after = self.faults.take(method, path, ("after",))
            if after is not None and response.status_code < 300:
                return after.response()  # applied, and answered as a failure
            if self.faults.take(method, path, ("hang",)) is not None:
                recorded.status = response.status_code  # applied, though never answered
                await (self.stopping or asyncio.Event()).wait()
                return _error(504, "the fake's dropped response")
            return response

        return endpoint

    def _authenticate(self, request: Request, action: str) -> Principal:
        token = request.headers.get("api_access_token") or request.headers.get("api-access-token")
        principal = self._principal(token) if token else None
        if action.startswith("platform/"):
            if principal is None or principal.kind != "platform":
                raise ChatwootReply(_error(401, "Invalid access_token"))
            return principal
        if not token:  # devise_token_auth's answer, an `errors` array (api/base_controller.rb)
            raise ChatwootReply(JSONResponse({"errors": [SIGN_IN]}, status_code=401))
        if principal is None:
            raise ChatwootReply(_error(401, INVALID_TOKEN))
        if principal.kind == "bot" and action not in self.bot_endpoints:
            raise ChatwootReply(_error(401, NOT_FOR_BOTS))
        account_id = request.path_params["account_id"]
        if account_id not in self.accounts:
            raise ChatwootReply(_error(404, NOT_FOUND))
        if account_id in self.suspended_accounts:  # ensure_current_account_helper.rb: before who may enter
            raise ChatwootReply(_error(401, "Account is suspended"))
        if principal.kind == "platform":
            raise ChatwootReply(_error(401, "You are not authorized to access this account"))
        if principal.kind == "user" and principal.user and principal.user.account_id != account_id:
            raise ChatwootReply(_error(401, "You are not authorized to access this account"))
        # ensure_current_account_helper.rb: a bot reaches an account it belongs to, or one where it is
        # connected to an inbox (releases before the first rule knew only the second, and said "You are
        # not authorized to access this account").
        if principal.kind == "bot" and principal.bot and principal.bot.account_id != account_id and not any(
            inbox.account_id == account_id and inbox.agent_bot_id == principal.bot.id
            for inbox in self.inboxes.values()
        ):
            raise ChatwootReply(_error(401, "Bot is not authorized to access this account"))
        needs_admin = action.startswith(("agent_bots#", "inboxes#set_agent_bot"))
        if needs_admin and principal.kind == "user" and principal.user and not principal.user.administrator:
            raise ChatwootReply(_error(401, "You are not authorized to do this action"))
        return principal

    def _principal(self, token: str) -> Principal | None:
        if secrets.compare_digest(token, self.platform_token):
            return Principal("platform")
        for user in self.users.values():
            if secrets.compare_digest(token, user.token):
                return Principal("user", user=user)
        for bot in self.bots.values():
            if secrets.compare_digest(token, bot.access_token):
                return Principal("bot", bot=bot)
        return None

    # Lookups ------------------------------------------------------------------------------------------

    def _find_conversation(self, request: Request) -> Conversation:
        key = (request.path_params["account_id"], request.path_params["conversation_id"])
        if key not in self.conversations:
            raise ChatwootReply(_error(404, NOT_FOUND))
        return self.conversations[key]

    async def _json(self, request: Request) -> dict[str, Any]:
        raw = await request.body()
        if not raw:
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise ChatwootReply(_error(400, "Invalid JSON")) from None
        return body if isinstance(body, dict) else {}

    def _conversation_json(self, conversation: Conversation) -> dict[str, Any]:
        team = self.teams.get(conversation.team_id) if conversation.team_id else None
        assignee: dict[str, Any] | None = None
        if conversation.assignee_type == "User" and conversation.assignee_id in self.users:
            assignee = self.users[conversation.assignee_id].to_json()
        elif conversation.assignee_type == "AgentBot" and conversation.assignee_id in self.bots:
            bot = self.bots[conversation.assignee_id]  # the agent_bot_slim partial
            assignee = {"id": bot.id, "name": bot.name, "description": bot.description, "thumbnail": "",
                        "outgoing_url": bot.outgoing_url, "bot_type": bot.bot_type}
        meta: dict[str, Any] = {
            "sender": conversation.contact.to_json(),
            "channel": self.inboxes[conversation.inbox_id].channel_type
            if conversation.inbox_id in self.inboxes else "Channel::Api",
            "assignee": assignee,
            "team": {"id": team.id, "name": team.name} if team else None,
            "hmac_verified": False,
        }
        if assignee:
            meta["assignee_type"] = conversation.assignee_type  # absent, not null, when unassigned
        now = time.time()
        return {
            "meta": meta,
            "id": conversation.id,
            # the newest message of any kind, activity messages and private notes included
            "messages": conversation.messages[-1:],
            "account_id": conversation.account_id,
            "uuid": f"00000000-0000-4000-8000-{conversation.id:012d}",
            "additional_attributes": dict(conversation.additional_attributes),
            "agent_last_seen_at": 0,
            "assignee_last_seen_at": 0,
            "can_reply": conversation.can_reply,
            "contact_last_seen_at": 0,
            "custom_attributes": dict(conversation.custom_attributes),
            "inbox_id": conversation.inbox_id,
            "labels": list(conversation.labels),
            "muted": False,
            "snoozed_until": conversation.snoozed_until,
            "status": conversation.status,
            "created_at": conversation.created_at,
            "updated_at": now,
            "timestamp": int(now),
            "first_reply_created_at": 0,  # epoch integers in a GET, 0 for none
            "unread_count": 0,
            "last_activity_at": int(now),
            "priority": conversation.priority,
            "waiting_since": conversation.created_at,
            "sla_policy_id": None,
        }

    # Conversations ------------------------------------------------------------------------------------

    async def _show_conversation(self, request: Request, principal: Principal) -> Response:
        conversation = self._find_conversation(request)
        if self.team_show_fails and principal.kind == "bot" and conversation.team_id is not None:
            # the exception in the view, as Rails renders it for a JSON request
            return JSONResponse({"status": 500, "error": "Internal Server Error"}, status_code=500)
        return JSONResponse(self._conversation_json(conversation))

    async def _update_conversation(self, request: Request, principal: Principal) -> Response:
        conversation = self._find_conversation(request)
        body = await self._json(request)
        if "priority" in body:
            self._apply_priority(conversation, body["priority"])
        return JSONResponse(self._conversation_json(conversation))

    async def _create_conversation(self, request: Request, principal: Principal) -> Response:
        account_id = request.path_params["account_id"]
        body = await self._json(request)
        inbox = self.inboxes.get(body.get("inbox_id")) if body.get("inbox_id") is not None else None
        if inbox is None or inbox.account_id != account_id or not body.get("source_id"):
            raise ChatwootReply(_error(404, NOT_FOUND))
        status = body.get("status") or "open"
        if status not in STATUSES:
            raise ChatwootReply(_error(422, f"'{status}' is not a valid status"))
        conversation = self.add_conversation(
            account_id, status=status, inbox_id=inbox.id, contact_id=int(body.get("contact_id") or 42),
            source_id=str(body["source_id"]), custom_attributes=body.get("custom_attributes"),
            team_id=body.get("team_id"), assignee_id=body.get("assignee_id"),
        )
        message = body.get("message")
        if isinstance(message, dict) and message.get("content"):
            self._store_message(conversation, principal, {"content": message["content"]})
        return JSONResponse(self._conversation_json(conversation))

    async def _toggle_status(self, request: Request, principal: Principal) -> Response:
        conversation = self._find_conversation(request)
        body = await self._json(request)
        status = body.get("status")
        if status is None:
            status = "resolved" if conversation.status == "open" else "open"
        if status not in STATUSES:
            raise ChatwootReply(_error(422, f"'{status}' is not a valid status"))
        if principal.kind == "bot" and conversation.status == "pending" and status == "open":
            self._store_activity(conversation, "Conversation was marked open by the bot (hand-off)")
        conversation.status = status
        snoozed = body.get("snoozed_until")
        conversation.snoozed_until = int(snoozed) if status == "snoozed" and snoozed is not None else None
        return JSONResponse({"meta": {}, "payload": {
            "success": True, "conversation_id": conversation.id, "current_status": conversation.status,
            "snoozed_until": conversation.snoozed_until}})

    async def _toggle_typing(self, request: Request, principal: Principal) -> Response:
        conversation = self._find_conversation(request)
        body = await self._json(request)
        conversation.typing = "on" if body.get("typing_status") == "on" else "off"
        return Response(status_code=200)

    def _apply_priority(self, conversation: Conversation, priority: Any) -> None:
        priority = priority or None
        if priority not in PRIORITIES:
            raise ChatwootReply(_error(422, f"'{priority}' is not a valid priority"))
        conversation.priority = priority

    async def _toggle_priority(self, request: Request, principal: Principal) -> Response:
        conversation = self._find_conversation(request)
        self._apply_priority(conversation, (await self._json(request)).get("priority"))
        return Response(status_code=200)

    async def _custom_attributes(self, request: Request, principal: Principal) -> Response:
        conversation = self._find_conversation(request)
        attributes = (await self._json(request)).get("custom_attributes")
        conversation.custom_attributes = dict(attributes) if isinstance(attributes, dict) else {}
        return JSONResponse({"custom_attributes": conversation.custom_attributes})

    async def _assign(self, request: Request, principal: Principal) -> Response:
        conversation = self._find_conversation(request)
        body = await self._json(request)
        if "assignee_id" in body or body.get("assignee_type") == "AgentBot":
            if body.get("assignee_type") == "AgentBot":
                bot = self.bots.get(body.get("assignee_id"))  # type: ignore[arg-type]
                conversation.assignee_id, conversation.assignee_type = (bot.id, "AgentBot") if bot else (None, None)
                return JSONResponse(bot.slim_json() if bot else None)
            user = self.users.get(body.get("assignee_id"))  # type: ignore[arg-type]
            if user is None or user.account_id != conversation.account_id:
                user = None
            conversation.assignee_id, conversation.assignee_type = (user.id, "User") if user else (None, None)
            return JSONResponse(user.to_json() if user else None)
        if "team_id" in body:
            team = self.teams.get(body.get("team_id"))  # type: ignore[arg-type]
            if team is not None and team.account_id != conversation.account_id:
                team = None
            conversation.team_id = team.id if team else None  # Chatwoot clears the team for an unknown id
            return JSONResponse(team.to_json() if team else None)
        return JSONResponse(None)

    # Labels -------------------------------------------------------------------------------------------

    async def _get_labels(self, request: Request, principal: Principal) -> Response:
        return JSONResponse({"payload": list(self._find_conversation(request).labels)})

    async def _set_labels(self, request: Request, principal: Principal) -> Response:
        conversation = self._find_conversation(request)
        labels = (await self._json(request)).get("labels") or []
        conversation.labels = list(dict.fromkeys(str(label) for label in labels))
        return JSONResponse({"payload": list(conversation.labels)})

    # Messages -----------------------------------------------------------------------------------------

    async def _list_messages(self, request: Request, principal: Principal) -> Response:
        conversation = self._find_conversation(request)
        return JSONResponse({"meta": {"labels": conversation.labels}, "payload": conversation.messages})

    async def _create_message(self, request: Request, principal: Principal) -> Response:
        conversation = self._find_conversation(request)
        files: list[UploadedFile] = []
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            body, files = parse_multipart(await request.body(), request.headers["content-type"])
            body["private"] = body.get("private") in ("true", "1")  # ActiveRecord's boolean cast
        else:
            body = await self._json(request)
        if len(files) > MAX_ATTACHMENTS:
            raise ChatwootReply(_error(422, f"Validation failed: Attachments exceeded the limit of "
                                            f"{MAX_ATTACHMENTS}"))
        content_type = body.get("content_type") or "text"
        if content_type not in CONTENT_TYPES:
            raise ChatwootReply(_error(422, f"'{content_type}' is not a valid content_type"))
        errors = content_attributes_errors(content_type, body.get("content_attributes"))
        if errors:
            raise ChatwootReply(_error(422, "Validation failed: Content attributes " + ", ".join(errors)))
        if body.get("message_type", "outgoing") not in ("outgoing", "incoming"):
            raise ChatwootReply(_error(422, f"'{body.get('message_type')}' is not a valid message_type"))
        if self._message_window.count((conversation.account_id, conversation.id)) >= self.messages_per_minute:
            raise ChatwootReply(_error(422, "Too many messages"))
        return JSONResponse(self._store_message(conversation, principal, body, files))

    def _store_message(self, conversation: Conversation, principal: Principal, body: dict[str, Any],
                       files: list[UploadedFile] | None = None) -> dict:
        self._message_window.add((conversation.account_id, conversation.id))
        sender: dict[str, Any] | None = None
        sender_type: str | None = None
        if principal.kind == "bot" and principal.bot:
            sender, sender_type = principal.bot.slim_json(), "AgentBot"
        elif principal.user:
            sender, sender_type = {**principal.user.to_json(), "type": "user"}, "User"
        content = body.get("content")
        outgoing = body.get("message_type", "outgoing") == "outgoing"
        if outgoing and content:
            content = self._liquid(conversation, content, sender)
        message = {
            "id": self._next_id(),
            "content": content,
            "inbox_id": conversation.inbox_id,
            "conversation_id": conversation.id,
            "message_type": MESSAGE_TYPES[body.get("message_type", "outgoing")],
            "content_type": body.get("content_type") or "text",
            "status": "sent",
            "content_attributes": body.get("content_attributes") or {},
            "created_at": int(time.time()),
            "private": bool(body.get("private", False)),
            "source_id": None,
            "sender": sender,
            "sender_type": sender_type,
            "sender_id": sender["id"] if sender else None,
        }
        if files:  # app/models/attachment.rb#push_event_data
            message["attachments"] = [self._attachment(message["id"], conversation.account_id, f) for f in files]
        conversation.messages.append(message)
        # The create response (`_message.json.jbuilder`) has `sender` but no sender_type/sender_id, and echoes
        # the echo_id, which is never stored (`Message#echo_id` is an attr_accessor).
        answer = {k: v for k, v in message.items() if k not in ("sender_type", "sender_id")}
        if body.get("echo_id") is not None:
            answer["echo_id"] = body["echo_id"]
        if outgoing and not message["private"]:
            self._send_to_channel(conversation, message)  # after the answer: SendReplyJob runs later
        return answer

    def _attachment(self, message_id: int, account_id: int, uploaded: UploadedFile) -> dict[str, Any]:
        key = secrets.token_urlsafe(12)
        self.files[key] = uploaded
        url = self._file_url(key, uploaded.name)
        extension = uploaded.name.rpartition(".")[2] if "." in uploaded.name else None
        return {"id": self._next_id(), "message_id": message_id, "file_type": uploaded.file_type,
                "account_id": account_id, "extension": extension, "data_url": url,
                "thumb_url": url if uploaded.file_type == "image" else "", "file_size": len(uploaded.data),
                "width": None, "height": None}

    def _liquid(self, conversation: Conversation, content: str, sender: dict[str, Any] | None) -> str:
        """`Liquidable#process_liquid_in_content`: backtick spans protected, a syntax error keeps the content."""
        try:
            import liquid
        except ImportError:  # python-liquid is a dev dependency; without it content is saved as posted
            return content
        protected = re.sub(r"`(.*?)`", r"{% raw %}`\1`{% endraw %}", content, flags=re.DOTALL)
        contact = conversation.contact
        drops = {"contact": {"name": contact.name, "email": contact.email, "first_name": contact.name.split()[0]},
                 "agent": {"name": (sender or {}).get("name")},
                 "conversation": {"display_id": conversation.id, "id": conversation.id},
                 "inbox": {"name": getattr(self.inboxes.get(conversation.inbox_id), "name", "")}}
        try:
            return liquid.Template(protected).render(**drops)
        except liquid.exceptions.LiquidError:
            return content

    def _send_to_channel(self, conversation: Conversation, message: dict[str, Any]) -> None:
        """SendReplyJob: the provider takes the message, refuses it (failed, `external_error`), or never sends it."""
        channel = self.channel_of(conversation)
        if channel == "Channel::FacebookPage" and conversation.additional_attributes.get("type") == \
                "instagram_direct_message":  # send_reply_job.rb#send_on_facebook_page: Instagram's sender
            channel = "Channel::Instagram"
        outcome, error = providers.send(channel, message, can_reply=conversation.can_reply)
        if self.refusals:
            outcome, error = "failed", self.refusals.pop(0)
        if outcome == "failed":
            message["status"] = "failed"
            message["content_attributes"] = {**message["content_attributes"], "external_error": error}
            self.failures.append((conversation, message))
        elif outcome == providers.DROPPED:
            self.dropped.append(message)

    def _store_activity(self, conversation: Conversation, content: str) -> None:
        conversation.messages.append({
            "id": self._next_id(), "content": content, "inbox_id": conversation.inbox_id,
            "conversation_id": conversation.id, "message_type": 2, "content_type": "text", "status": "sent",
            "content_attributes": {}, "created_at": int(time.time()), "private": False, "source_id": None,
            "sender": None, "sender_type": None, "sender_id": None,
        })

    # Agent bots (administrators) ----------------------------------------------------------------------

    def _account_bot(self, request: Request, *, include_system: bool = False) -> AgentBot:
        bot = self.bots.get(request.path_params["bot_id"])
        account_id = request.path_params["account_id"]
        if bot is None or not (bot.account_id == account_id or (include_system and bot.account_id is None)):
            raise ChatwootReply(_error(404, NOT_FOUND))
        return bot

    def _bot_fields(self, body: dict[str, Any], bot: AgentBot | None = None, *,
                    platform: bool = False) -> dict[str, Any]:
        """The fields Chatwoot's controller permits: the account API's agent_bots_controller.rb takes
        bot_config (an object), the Platform API's (platform/api/v1/agent_bots_controller.rb) drops it
        silently, as Rails drops any unpermitted parameter. Both take avatar_url, fetched by a job."""
        keys = ("name", "description", "outgoing_url", "avatar_url") + (() if platform else ("bot_config",))
        fields = {key: body[key] for key in keys if key in body}
        if not isinstance(fields.get("bot_config", {}), dict):  # permit(bot_config: {}) drops a non-object
            del fields["bot_config"]
        name = fields.get("name", bot.name if bot else None)
        if not name:
            raise ChatwootReply(JSONResponse(
                {"message": "Validation failed: Name can't be blank", "attributes": ["name"]}, status_code=422))
        return fields

    async def _list_bots(self, request: Request, principal: Principal) -> Response:
        account_id = request.path_params["account_id"]
        return JSONResponse([bot.to_json() for bot in self.bots.values() if bot.account_id in (None, account_id)])

    async def _create_bot(self, request: Request, principal: Principal) -> Response:
        fields = self._bot_fields(await self._json(request))
        bot = self.add_agent_bot(request.path_params["account_id"], name=fields["name"],
                                 outgoing_url=fields.get("outgoing_url", ""))
        self._apply_bot_fields(bot, fields)
        return JSONResponse(bot.to_json())

    async def _show_bot(self, request: Request, principal: Principal) -> Response:
        return JSONResponse(self._account_bot(request, include_system=True).to_json())

    async def _update_bot(self, request: Request, principal: Principal) -> Response:
        bot = self._account_bot(request)
        self._apply_bot_fields(bot, self._bot_fields(await self._json(request), bot))
        return JSONResponse(bot.to_json())

    @staticmethod
    def _apply_bot_fields(bot: AgentBot, fields: dict[str, Any]) -> None:
        for key, value in fields.items():
            if key == "bot_config":
                bot.bot_config = dict(value)
            elif key == "avatar_url":
                bot.avatar_url = value or bot.avatar_url  # a blank avatar_url starts no job
            else:
                setattr(bot, key, value if value is not None else "")

    async def _delete_bot(self, request: Request, principal: Principal) -> Response:
        bot = self._account_bot(request)
        del self.bots[bot.id]
        for inbox in self.inboxes.values():
            if inbox.agent_bot_id == bot.id:
                inbox.agent_bot_id = None
        return Response(status_code=200)

    async def _reset_bot_token(self, request: Request, principal: Principal) -> Response:
        bot = self._account_bot(request)
        bot.access_token = "bot-" + secrets.token_hex(12)
        return JSONResponse(bot.to_json())

    async def _reset_bot_secret(self, request: Request, principal: Principal) -> Response:
        bot = self._account_bot(request)
        bot.secret = secrets.token_hex(16)
        return JSONResponse(bot.to_json())

    # Inboxes and teams --------------------------------------------------------------------------------

    async def _list_inboxes(self, request: Request, principal: Principal) -> Response:
        account_id = request.path_params["account_id"]
        return JSONResponse({"payload": [i.to_json() for i in self.inboxes.values() if i.account_id == account_id]})

    async def _set_inbox_bot(self, request: Request, principal: Principal) -> Response:
        inbox = self.inboxes.get(request.path_params["inbox_id"])
        if inbox is None or inbox.account_id != request.path_params["account_id"]:
            raise ChatwootReply(_error(404, NOT_FOUND))
        bot_id = (await self._json(request)).get("agent_bot")
        if bot_id is not None and bot_id not in self.bots:
            raise ChatwootReply(_error(404, NOT_FOUND))
        inbox.agent_bot_id = bot_id
        return Response(status_code=200)

    async def _inbox_bot(self, request: Request, principal: Principal) -> Response:
        """`{"agent_bot": {...}}`, or `{"agent_bot": {}}` when no bot is connected
        (app/views/api/v1/accounts/inboxes/agent_bot.json.jbuilder)."""
        inbox = self.inboxes.get(request.path_params["inbox_id"])
        if inbox is None or inbox.account_id != request.path_params["account_id"]:
            raise ChatwootReply(_error(404, NOT_FOUND))
        bot = self.bots.get(inbox.agent_bot_id) if inbox.agent_bot_id is not None else None
        return JSONResponse({"agent_bot": bot.to_json(for_admin=False) if bot else {}})

    async def _list_teams(self, request: Request, principal: Principal) -> Response:
        account_id = request.path_params["account_id"]
        return JSONResponse([t.to_json() for t in self.teams.values() if t.account_id == account_id])

    # Platform API -------------------------------------------------------------------------------------

    def _platform_bot(self, request: Request) -> AgentBot:
        """platform_controller.rb: a bot that is not there is 404; one this platform app did not make (not
        among its permissibles) is 401 "Non permissible resource"."""
        bot = self.bots.get(request.path_params["bot_id"])
        if bot is None:
            raise ChatwootReply(_error(404, NOT_FOUND))
        if not bot.platform_made:
            raise ChatwootReply(JSONResponse({"error": "Non permissible resource"}, status_code=401))
        return bot

    async def _platform_list_bots(self, request: Request, principal: Principal) -> Response:
        return JSONResponse([b.platform_json() for b in self.bots.values() if b.platform_made])

    async def _platform_create_bot(self, request: Request, principal: Principal) -> Response:
        body = await self._json(request)
        fields = self._bot_fields(body, platform=True)
        bot = self.add_agent_bot(body.get("account_id"), name=fields["name"],
                                 outgoing_url=fields.get("outgoing_url", ""))
        bot.platform_made = True
        self._apply_bot_fields(bot, fields)
        return JSONResponse(bot.platform_json())

    async def _platform_show_bot(self, request: Request, principal: Principal) -> Response:
        return JSONResponse(self._platform_bot(request).platform_json())

    async def _platform_update_bot(self, request: Request, principal: Principal) -> Response:
        bot = self._platform_bot(request)
        self._apply_bot_fields(bot, self._bot_fields(await self._json(request), bot, platform=True))
        return JSONResponse(bot.platform_json())

    async def _platform_delete_bot(self, request: Request, principal: Principal) -> Response:
        bot = self._platform_bot(request)
        del self.bots[bot.id]
        for inbox in self.inboxes.values():  # its agent_bot_inboxes go with it (app/models/agent_bot.rb)
            if inbox.agent_bot_id == bot.id:
                inbox.agent_bot_id = None
        return Response(status_code=200)
