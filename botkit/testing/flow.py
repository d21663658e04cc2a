"""The flow API: talk to a bot as a contact and check what it did in Chatwoot, one step at a time.

    async with BotFlow.start(make_bot(), teams="billing=3") as flow:
        await flow.send("I need billing help")
        flow.expect_reply("I'm transferring you to our billing team.").expect_team("billing").expect_handoff()

Underneath is a `BotServer`: the real receiver, worker and ChatwootClient over loopback against a
`FakeChatwoot`, so a flow test runs the path a deployment runs. Each step (`send`, `choose`, `resolve`,
`deliver`) posts real-shape signed deliveries and waits for the bot to settle; the expectations then consume,
in order, the actions the bot took in this conversation during that step (the requests Chatwoot accepted;
reads and typing indicators are not actions). A failed expectation lists everything that happened.

The conversation behaves as in Chatwoot: it starts `pending`, a hand-off opens it (the bot then stays
silent), a contact writing in a resolved conversation makes it pending again, in a snoozed one opens it.

On a chosen channel (`BotFlow.start(bot, channel="whatsapp")`) deliveries have that channel's shape, the
contact's pick comes back as that channel sends it (`choose`: a tap on WhatsApp is a new message with the
option's title, on Telegram its value, on SMS or e-mail the number typed back), and a message the channel's
provider refuses comes back as Chatwoot's `message_updated` with `external_error`, within the same step.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from botkit.summary import HEADER, TITLE
from botkit.testing import factories
from botkit.testing.fake_chatwoot import FakeChatwoot, RecordedRequest
from botkit.testing.harness import BotServer

Expected = str | re.Pattern[str] | Callable[[str], bool] | None
_NUMBERED = re.compile(r"^(\d+)\. (.+)$")


@dataclass
class Action:
    """One thing the bot did in Chatwoot: `kind` is reply, note, team, agent, handoff, status, labels,
    attributes or priority; `value` the text, id, status or list; `request` the request behind it."""

    kind: str
    value: Any
    request: RecordedRequest

    @property
    def body(self) -> dict[str, Any]:
        return self.request.json if isinstance(self.request.json, dict) else {}

    def describe(self, fake: FakeChatwoot | None = None) -> str:
        if self.kind in ("reply", "note"):
            text = f"{self.kind} {self.value!r}"
            items = (self.body.get("content_attributes") or {}).get("items")
            if self.body.get("content_type", "text") != "text":
                titles = ", ".join(repr(i.get("title") or i.get("label") or i.get("name")) for i in items or [])
                text += f" ({self.body['content_type']}: {titles})"
            return text
        if self.kind == "team" and fake is not None and self.value in fake.teams:
            return f"team {fake.teams[self.value].name} ({self.value})"
        if self.kind == "handoff":
            return "hand-off (status open)"
        return f"{self.kind} {self.value!r}"


def classify(request: RecordedRequest) -> Action | None:
    """The action a request to a conversation's endpoint is, or None for a read or a typing indicator."""
    body = request.json if isinstance(request.json, dict) else {}
    suffix = request.path.rsplit("/", 1)[-1]
    if request.method != "POST":
        return None
    if suffix == "messages":
        return Action("note" if body.get("private") else "reply", body.get("content"), request)
    if suffix == "assignments":
        if "team_id" in body and "assignee_id" not in body:
            return Action("team", body["team_id"], request)
        return Action("agent", body.get("assignee_id"), request)
    if suffix == "toggle_status":
        status = body.get("status")
        return Action("handoff" if status == "open" else "status", status, request)
    if suffix == "labels":
        return Action("labels", list(body.get("labels") or []), request)
    if suffix == "custom_attributes":
        return Action("attributes", body.get("custom_attributes"), request)
    if suffix == "toggle_priority":
        return Action("priority", body.get("priority"), request)
    return None


class BotFlow:
    """One conversation with the bot served by `server`. Build it with `BotFlow.start(...)` or the
    `bot_flow` pytest fixture; `flow.new_conversation()` gives another conversation on the same server."""

    def __init__(self, server: BotServer, *, conversation_id: int = 128, account_id: int = 1,
                 inbox_id: int = 1, status: str = "pending", channel: str | None = None) -> None:
        self.server = server
        self.fake = server.fake
        self.account_id = account_id
        self.conversation_id = conversation_id
        self.inbox_id = inbox_id
        self.channel = factories.class_name(channel)
        self.step = "the start"
        self._mark = len(self.fake.requests)
        self._next = 0  # index of the next action to consume
        self.last: Action | None = None  # the action the last expectation consumed
        self.statuses: list[str] = []
        self._delivered: list[tuple[dict[str, Any], str]] = []
        seed_teams(self.fake, server.settings.teams if server.settings is not None else {}, account_id)
        if (account_id, conversation_id) not in self.fake.conversations:
            self.fake.add_conversation(account_id, conversation_id, status=status,
                                       inbox_id=None if channel else inbox_id, channel=channel)
        self.inbox_id = self.conversation.inbox_id

    @classmethod
    @contextlib.asynccontextmanager
    async def start(cls, bot: Any, *, teams: str | dict[str, int] | None = None, conversation_id: int = 128,
                    status: str = "pending", channel: str | None = None, fake: FakeChatwoot | None = None,
                    **settings: Any) -> AsyncIterator[BotFlow]:
        """Serve `bot` against a fake Chatwoot and open a conversation with it.

        `teams` maps team names to ids ("billing=3,technical=4" or a dict); by default every team the bot
        assigns by name gets an id. Other keywords are settings (`botkit_max_attempts=2`, ...)."""
        if isinstance(teams, dict):
            teams = ",".join(f"{name}={number}" for name, number in teams.items())
        if teams is None:
            teams = ",".join(f"{n}={i}" for i, n in enumerate(teams_used_by(bot), start=1)) or None
        async with BotServer(bot, teams=teams, fake=fake, **settings) as server:
            yield cls(server, conversation_id=conversation_id, status=status, channel=channel)

    def new_conversation(self, conversation_id: int | None = None, **kwargs: Any) -> BotFlow:
        """Another conversation with the same bot (a fresh state, a new display id)."""
        taken = {cid for (_, cid) in self.fake.conversations}
        conversation_id = conversation_id or max(taken | {self.conversation_id}) + 1
        kwargs.setdefault("channel", self.channel)
        kwargs.setdefault("inbox_id", self.inbox_id)
        return BotFlow(self.server, conversation_id=conversation_id, account_id=self.account_id, **kwargs)

    # the conversation in the fake -------------------------------------------------------------------------
    @property
    def conversation(self) -> Any:
        return self.fake.conversation(self.conversation_id, self.account_id)

    @property
    def status(self) -> str:
        return self.conversation.status

    def _ids(self) -> dict[str, Any]:
        conversation = self.conversation
        ids: dict[str, Any] = {"account_id": self.account_id, "conversation_id": self.conversation_id,
                               "inbox_id": self.inbox_id, "status": conversation.status,
                               "assignee_type": conversation.assignee_type, "can_reply": conversation.can_reply}
        if self.channel is not None:
            ids["channel"] = self.channel
        if conversation.additional_attributes:
            ids["conversation_attributes"] = dict(conversation.additional_attributes)
        return ids

    # steps ----------------------------------------------------------------------------------------------
    async def send(self, text: str, **overrides: Any) -> BotFlow:
        """The contact writes `text`; returns once the bot has settled."""
        conversation = self.conversation
        if conversation.status == "resolved":  # Chatwoot reopens it for the bot
            conversation.status = "pending"
        elif conversation.status == "snoozed":
            conversation.status = "open"
        return await self.deliver(factories.contact_message(text, **{**self._ids(), **overrides}),
                                  step=f"send({text!r})")

    async def choose(self, choice: str) -> BotFlow:
        """The contact picks `choice` (an option's title or value, or its number in a menu sent as numbered
        text) in the last menu the bot sent, and the channel delivers it as it does: on the widget Chatwoot
        records it on the bot's message and delivers `message_updated` with `submitted_values`; on WhatsApp
        and Facebook a new message with the title, on Telegram and LINE with the value; where the menu went
        out as numbered text the contact types its number."""
        menu = self.last_menu()
        if menu is None:
            raise AssertionError(f"choose({choice!r}): the bot has sent no menu in this conversation")
        message, items, numbered = menu
        picked = [(n, i) for n, i in enumerate(items, start=1) if choice in (i.get("value"), i.get("title"), str(n))]
        if not picked:
            offered = ", ".join(f"{i.get('title')!r} ({i.get('value')!r})" for i in items)
            raise AssertionError(f"choose({choice!r}): the last menu offers only {offered}")
        number, item = picked[0]
        ids = self._ids()
        if numbered:
            body = factories.message(str(number), **ids)
        elif ids.get("channel") in (None, "Channel::WebWidget", "Channel::Api"):
            message["content_attributes"]["submitted_values"] = [item]
            body = factories.answer(item["value"], message_id=message["id"], options=items,
                                    content=message.get("content") or "", **ids)
        else:
            body = factories.tap(item, menu_id=message["id"], options=items, **ids)
        return await self.deliver(body, step=f"choose({choice!r})")

    async def resolve(self) -> BotFlow:
        """An agent resolves the conversation: the three deliveries Chatwoot sends for one status change."""
        previous = self.conversation.status
        self.conversation.status = "resolved"
        ids = {k: v for k, v in self._ids().items() if k != "status"}
        change = [{"status": {"previous_value": previous, "current_value": "resolved"}}]
        bodies = [factories.conversation_event("conversation_resolved", status="resolved", **ids),
                  factories.conversation_event("conversation_status_changed", status="resolved",
                                               changed_attributes=change, **ids),
                  factories.conversation_event("conversation_updated", status="resolved",
                                               changed_attributes=change, **ids)]
        return await self.deliver(*bodies, step="resolve()")

    async def agent_note(self, text: str) -> BotFlow:
        """An agent writes a private note (a command such as `/send 2` when it starts with the bot's prefix):
        the fake records it as Chatwoot does and delivers it to the bot."""
        return await self.deliver(self.fake.agent_note(self.conversation_id, text, account_id=self.account_id),
                                  step=f"agent_note({text!r})")

    async def deliver(self, *bodies: dict[str, Any], step: str = "deliver(...)") -> BotFlow:
        """Post any deliveries (built with botkit.testing.factories) and wait for the bot to settle."""
        self._begin(step)
        self._delivered = [(body, str(uuid.uuid4())) for body in bodies]
        for body, delivery_id in self._delivered:
            self.statuses.append(await self.server.deliver(body, delivery_id=delivery_id))
        await self.server.settle()
        await self._report_failures()
        return self

    async def _report_failures(self) -> None:
        """Deliver what Chatwoot sends for each message the channel refused: `message_updated` with
        `external_error`, within the same step (the bot may answer with another message)."""
        for _ in range(5):
            failed = self.fake.take_failures(self.conversation)
            if not failed:
                return
            for message in failed:
                error = message["content_attributes"]["external_error"]
                await self.server.deliver(factories.delivery_failed(
                    message["id"], error, content=message.get("content") or "",
                    content_type=message.get("content_type") or "text",
                    content_attributes=message["content_attributes"], **self._ids()))
            await self.server.settle()

    async def redeliver(self) -> BotFlow:
        """Chatwoot delivers the last step's deliveries again (a retry keeps its delivery id)."""
        self._begin(f"redeliver() of {self.step}")
        for body, delivery_id in self._delivered:
            self.statuses.append(await self.server.deliver(body, delivery_id=delivery_id))
        await self.server.settle()
        return self

    async def run_timers(self) -> BotFlow:
        """Run the bot's timers now, as its server does every 30 s: hand-offs waiting for opening time whose
        time has come on the bot's clock (botkit/openings.py) are handed over."""
        self._begin("run_timers()")
        await self.server.bot.agents.openings.sweep()
        await self.server.settle()
        return self

    def _begin(self, step: str) -> None:
        self._mark = len(self.fake.requests)
        self._next = 0
        self.step = step
        self.statuses: list[str] = []  # the receiver's answers: accepted, duplicate, ignored

    # what happened ----------------------------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request the bot made to this conversation during the last step, failed ones included."""
        prefix = f"/api/v1/accounts/{self.account_id}/conversations/{self.conversation_id}/"
        return [r for r in self.fake.requests[self._mark:] if r.path.startswith(prefix)]

    @property
    def actions(self) -> list[Action]:
        """What the bot did during the last step: the requests Chatwoot accepted, as actions."""
        found = (classify(r) for r in self.requests if r.status is not None and r.status < 400)
        return [a for a in found if a is not None]

    def last_menu(self) -> tuple[dict[str, Any], list[dict[str, Any]], bool] | None:
        """The last menu the bot sent here that the channel delivered: (message, items, numbered), where a
        menu sent as numbered text has the items its lines show (titles only)."""
        for message in reversed(self.fake.messages(self.conversation_id, self.account_id)):
            if message.get("private") or message.get("message_type") != 1 or message.get("status") == "failed":
                continue
            if message.get("content_type") == "input_select":
                return message, message["content_attributes"].get("items") or [], False
            lines = [_NUMBERED.match(line) for line in str(message.get("content") or "").splitlines()]
            items = [{"title": m.group(2), "value": m.group(2)} for m in lines if m]
            if items:
                return message, items, True
        return None

    def last_input_select(self) -> dict[str, Any] | None:
        """The last input_select message the bot sent in this conversation, as the fake stores it."""
        for message in reversed(self.fake.messages(self.conversation_id, self.account_id)):
            if message.get("content_type") == "input_select" and not message.get("private"):
                return message
        return None

    def history(self) -> str:
        """Everything the bot did during the last step, marking what the expectations have consumed."""
        lines = [f"what the bot did after {self.step}:"]
        actions = self.actions
        for number, action in enumerate(actions, start=1):
            mark = "✓" if number <= self._next else " "
            lines.append(f"  {mark} {number}. {action.describe(self.fake)}")
        if not actions:
            lines.append("    nothing")
        failed = [r for r in self.requests if r.status is not None and r.status >= 400]
        for request in failed:
            lines.append(f"    (failed: {request.method} {request.path} answered {request.status})")
        return "\n".join(lines)

    # expectations -----------------------------------------------------------------------------------------
    def _take(self, kind: str, wanted: str) -> Action:
        actions = self.actions
        if self._next >= len(actions):
            raise AssertionError(f"expected {wanted}, but the bot did nothing more.\n{self.history()}")
        action = actions[self._next]
        if action.kind != kind:
            raise AssertionError(f"expected {wanted}, but the next action was {action.describe(self.fake)}.\n"
                                 f"{self.history()}")
        self._next += 1
        self.last = action
        return action

    def _check(self, action: Action, ok: bool, wanted: str) -> None:
        if not ok:
            self._next -= 1
            raise AssertionError(f"expected {wanted}, but the next action was {action.describe(self.fake)}.\n"
                                 f"{self.history()}")

    def expect_reply(self, expected: Expected = None, *, options: list[str] | None = None) -> BotFlow:
        """The next action is a message to the contact whose content equals `expected` (a string), matches
        it (a compiled regex, searched) or satisfies it (a predicate); `options` are an input_select's titles."""
        wanted = "a reply" + (f" {_show(expected)}" if expected is not None else "")
        action = self._take("reply", wanted)
        self._check(action, _matches(expected, action.value), wanted)
        if options is not None:
            items = (action.body.get("content_attributes") or {}).get("items") or []
            titles = [i.get("title") for i in items]
            self._check(action, titles == list(options), f"{wanted} with options {options!r}")
        return self

    def expect_note(self, expected: Expected = None) -> BotFlow:
        """The next action is a private note (agents see it, the contact does not)."""
        wanted = "a private note" + (f" {_show(expected)}" if expected is not None else "")
        action = self._take("note", wanted)
        self._check(action, _matches(expected, action.value), wanted)
        return self

    def expect_summary(self, *contains: str) -> BotFlow:
        """The next action is the hand-off summary note (botkit/summary.py), containing each of `contains`."""
        wanted = "the hand-off summary note" + (f" containing {list(contains)!r}" if contains else "")
        action = self._take("note", wanted)
        text = action.value if isinstance(action.value, str) else ""
        self._check(action, text.startswith(self._summary_title()) and all(c in text for c in contains), wanted)
        return self

    def _summary_title(self) -> str:
        """How the bot's summary notes start, in its agents' language (BOTKIT_LANGUAGE)."""
        bot = self.server.bot
        catalogue = getattr(bot, "catalogue", None)
        if catalogue is None:
            return HEADER
        return catalogue.gettext(bot.default_language, TITLE).split("(")[0].strip()

    def expect_team(self, team: str | int) -> BotFlow:
        """The next action assigns the team, given by name (as the fake knows it) or id."""
        wanted = f"assignment to team {team!r}"
        action = self._take("team", wanted)
        known = self.fake.teams.get(action.value)
        ok = action.value == team or (isinstance(team, str) and known is not None
                                      and known.name.casefold() == team.casefold())
        self._check(action, ok, wanted)
        return self

    def expect_agent(self, agent_id: int) -> BotFlow:
        action = self._take("agent", f"assignment to agent {agent_id}")
        self._check(action, action.value == agent_id, f"assignment to agent {agent_id}")
        return self

    def expect_handoff(self) -> BotFlow:
        """The next action opens the conversation: the hand-off to humans."""
        self._take("handoff", "a hand-off (status open)")
        return self

    def expect_status(self, status: str) -> BotFlow:
        """The next action sets the status (resolved, snoozed, pending; `expect_handoff` for open)."""
        if status == "open":
            return self.expect_handoff()
        action = self._take("status", f"status {status!r}")
        self._check(action, action.value == status, f"status {status!r}")
        return self

    def expect_labels(self, *labels: str, exact: bool = False) -> BotFlow:
        """The next action sets the conversation's labels, which then include `labels` (or are exactly them)."""
        wanted = f"labels {list(labels)!r}" + (" exactly" if exact else "")
        action = self._take("labels", wanted)
        ok = action.value == list(labels) if exact else set(labels) <= set(action.value)
        self._check(action, ok, wanted)
        return self

    def expect_attributes(self, **attributes: Any) -> BotFlow:
        """The next action sets custom attributes including these."""
        wanted = f"custom attributes {attributes!r}"
        action = self._take("attributes", wanted)
        value = action.value or {}
        self._check(action, all(value.get(k) == v for k, v in attributes.items()), wanted)
        return self

    def expect_no_action(self) -> BotFlow:
        """The bot did nothing more in this step."""
        remaining = self.actions[self._next:]
        if remaining:
            raise AssertionError(f"expected no more actions, but the bot did "
                                 f"{remaining[0].describe(self.fake)}.\n{self.history()}")
        return self


def _matches(expected: Expected, text: Any) -> bool:
    if expected is None:
        return True
    if isinstance(expected, re.Pattern):
        return isinstance(text, str) and expected.search(text) is not None
    if callable(expected):
        return bool(expected(text))
    return text == expected


def _show(expected: Expected) -> str:
    if isinstance(expected, re.Pattern):
        return f"matching /{expected.pattern}/"
    if callable(expected):
        return f"satisfying {getattr(expected, '__name__', 'the predicate')}"
    return repr(expected)


def seed_teams(fake: FakeChatwoot, teams: dict[str, int], account_id: int = 1) -> None:
    """Give the fake a team for each name=id the bot was configured with (unless it has that id already)."""
    for name, number in teams.items():
        if number not in fake.teams:
            fake.add_team(account_id, number, name)


def teams_used_by(bot: Any) -> list[str]:
    """The team names a bot's handlers assign (the keyword router's rules), in order of first use."""
    names: list[str] = []
    for handler in getattr(bot, "handlers", []):
        for rule in getattr(handler, "rules", []):
            team = getattr(rule, "team", None)
            if isinstance(team, str) and not team.isdigit() and team not in names:
                names.append(team)
    return names
