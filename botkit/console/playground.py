"""The playground: a web page to talk to a bot as a contact and watch it as an agent, with no Chatwoot.

    async with Playground(make_bot()) as playground:
        async with serve_app(playground.app, port=8765) as url: ...

The bot runs for real (receiver, worker, Chatwoot client) against the testing kit's fake Chatwoot, as in
`botkit chat`: the page's clicks become the deliveries Chatwoot would send (botkit/testing/flow.py), on the
channel picked in the page (botkit/console/channel_view.py). `GET /api/state` gives the page everything it
draws: the conversation as the fake holds it, each message as the contact's channel shows it, and the
timelines the bot recorded for it (botkit/timeline.py). The page is static (botkit/console/static/).

Only for 127.0.0.1: a request whose Host is not a loopback name is refused (DNS rebinding), and every POST
must carry the header `X-Playground: 1`, which no other site's page can send without our consent (CORS).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from botkit import timeline
from botkit.console import channel_view
from botkit.testing import factories
from botkit.testing.fake_chatwoot import Principal
from botkit.testing.flow import BotFlow

STATIC = Path(__file__).parent / "static"
AGENT = {"id": 7, "name": "Alex Agent"}  # the agent the page acts as (factories' agent)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


class PlaygroundError(Exception):
    """Something the page asked cannot be done; the message says why (answered 400)."""


class Playground:
    def __init__(self, bot: Any, *, teams: str | None = None, channel: str = "Channel::WebWidget",
                 **settings: Any) -> None:
        channel_view.channel(channel)  # a ValueError names the known channels
        self.bot = bot
        self.teams = teams
        self.settings = {"botkit_console_contents": True, **settings}
        self.channel = channel
        self.flow: BotFlow | None = None
        self._stack = contextlib.AsyncExitStack()
        self._lock = asyncio.Lock()  # one step at a time: a step waits for the bot to settle
        self.working = False  # a step is running: the page shows the typing dots
        self.app = Starlette(routes=[
            Route("/", self.page),
            Route("/api/state", self.state),
            Route("/api/contact", self.contact, methods=["POST"]),
            Route("/api/agent", self.agent, methods=["POST"]),
            Route("/api/channel", self.switch_channel, methods=["POST"]),
            Route("/favicon.ico", _no_icon),  # every browser asks; a 404 shows as an error in its console
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ])

    async def __aenter__(self) -> Playground:
        await self._stack.__aenter__()
        self.flow = await self._stack.enter_async_context(
            BotFlow.start(self.bot, teams=self.teams, channel=self.channel, **self.settings))
        self.fake.add_agent(self.flow.account_id, AGENT["id"], AGENT["name"])
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.__aexit__(*exc)

    @property
    def fake(self) -> Any:
        assert self.flow is not None, "use Playground as an async context manager"
        return self.flow.fake

    # what the page draws ------------------------------------------------------------------------------
    async def snapshot(self) -> dict[str, Any]:
        flow = self.flow
        assert flow is not None
        conversation = flow.conversation
        team = self.fake.teams.get(conversation.team_id) if conversation.team_id else None
        assignee = self.fake.users.get(conversation.assignee_id) if conversation.assignee_type == "User" else None
        current = channel_view.channel(self.channel)
        messages = [self._message(m) for m in conversation.messages]
        timelines = [r.data for r in await flow.server.store.records("delivery", limit=200)
                     if r.data.get("conversation_id") == conversation.id]
        for delivery in timelines:
            for step in delivery.get("steps") or []:
                step["text"] = timeline.describe(step)
        return {
            "bot": getattr(self.bot, "name", type(self.bot).__name__),
            "channel": {"type": current.type, "label": current.label, "look": current.look},
            "channels": [{"type": c.type, "label": c.label} for c in channel_view.CHANNELS],
            "conversation": {
                "id": conversation.id, "status": conversation.status, "labels": list(conversation.labels),
                "priority": conversation.priority, "typing": conversation.typing == "on",
                "team": {"id": team.id, "name": team.name} if team else None,
                "assignee": {"id": assignee.id, "name": assignee.name} if assignee else None,
                "teams": [{"id": t.id, "name": t.name} for t in self.fake.teams.values()],
            },
            "messages": messages,
            "handoffs": _handoffs(timelines, conversation.messages),
            "timeline": timelines[-30:],
            "working": self.working,
        }

    def _message(self, message: dict[str, Any]) -> dict[str, Any]:
        sender = message.get("sender") or {}
        kind = message.get("message_type")
        if kind in (0, "incoming"):
            side = "contact"
        elif kind in (2, "activity"):
            side = "activity"
        elif sender.get("type") == "agent_bot":
            side = "bot"
        else:
            side = "agent"
        shown = {"id": message["id"], "side": side, "private": bool(message.get("private")),
                 "content": message.get("content") or "", "content_type": message.get("content_type") or "text",
                 "created_at": message.get("created_at")}
        if side in ("bot", "agent") and not shown["private"]:
            shown["view"] = channel_view.show(self.channel, message)
        return shown

    async def page(self, request: Request) -> Response:
        return self._guard(request) or FileResponse(STATIC / "playground.html")

    async def state(self, request: Request) -> Response:
        return self._guard(request) or JSONResponse(await self.snapshot())

    # what the page does -------------------------------------------------------------------------------
    async def contact(self, request: Request) -> Response:
        """The contact: {"text": ...}, {"pick": {"message_id", "value"}}, {"form": {"message_id", "values"}}
        or {"email": {"message_id", "email"}}."""
        return await self._step(request, self._contact_step)

    async def agent(self, request: Request) -> Response:
        """The agent: {"do": "resolve" | "reopen" | "pending" | "assign" | "unassign" | "note" | "reply",
        "text": ...}."""
        return await self._step(request, self._agent_step)

    async def switch_channel(self, request: Request) -> Response:
        """{"channel": "Channel::Whatsapp"}: a new conversation with the bot, on that channel."""
        async def step(body: dict[str, Any]) -> None:
            wanted = str(body.get("channel") or "")
            try:
                channel_view.channel(wanted)
            except ValueError as exc:
                raise PlaygroundError(str(exc)) from None
            assert self.flow is not None
            self.channel = wanted
            self.flow = self.flow.new_conversation(channel=wanted)

        return await self._step(request, step)

    async def _step(self, request: Request, step: Any) -> Response:
        refused = self._guard(request)
        if refused is not None:
            return refused
        if request.headers.get("x-playground") != "1":
            return JSONResponse({"error": "a playground action needs the header X-Playground: 1"}, status_code=403)
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "the body must be JSON"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "the body must be a JSON object"}, status_code=400)
        async with self._lock:
            self.working = True
            try:
                await step(body)
            except PlaygroundError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            finally:
                self.working = False
        return JSONResponse(await self.snapshot())

    async def _contact_step(self, body: dict[str, Any]) -> None:
        flow = self.flow
        assert flow is not None
        if isinstance(body.get("text"), str) and body["text"].strip():
            await self._send(body["text"].strip())
        elif isinstance(body.get("pick"), dict):
            message = self._bot_message(body["pick"].get("message_id"), "input_select")
            items = message["content_attributes"].get("items") or []
            item = next((i for i in items if i.get("value") == body["pick"].get("value")), None)
            if item is None:
                raise PlaygroundError("that option is not in the message")
            how, value = channel_view.answer(self.channel, item)
            if how == "send":  # a new message from the contact, which the conversation shows
                self._store_contact_message(value)
            else:  # the widget records the pick on the bot's own message
                message["content_attributes"]["submitted_values"] = [item]
            ids = {k: v for k, v in flow._ids().items() if k != "channel"}
            await flow.deliver(factories.tap(item, menu_id=message["id"], channel=self.channel, options=items, **ids),
                               step=f"tap({value!r})")
        elif isinstance(body.get("form"), dict):
            message = self._bot_message(body["form"].get("message_id"), "form")
            values = body["form"].get("values") or {}
            submitted = [{"name": str(k), "value": str(v)} for k, v in values.items()]
            message["content_attributes"]["submitted_values"] = submitted
            await flow.deliver(_submission(message, flow, submitted_values=submitted), step="form")
        elif isinstance(body.get("email"), dict):
            message = self._bot_message(body["email"].get("message_id"), "input_email")
            email = str(body["email"].get("email") or "").strip()
            if "@" not in email:
                raise PlaygroundError("that is not an e-mail address")
            message["content_attributes"]["submitted_email"] = email
            await flow.deliver(_submission(message, flow, submitted_email=email), step="email")
        else:
            raise PlaygroundError("say something: text, pick, form or email")

    async def _send(self, text: str) -> None:
        """The contact writes: Chatwoot stores the message, then delivers it to the bot."""
        assert self.flow is not None
        self._store_contact_message(text)
        await self.flow.send(text)

    def _store_contact_message(self, text: str) -> None:
        assert self.flow is not None
        conversation = self.flow.conversation
        conversation.messages.append({
            "id": self.fake._next_id(), "content": text, "message_type": 0, "content_type": "text",
            "content_attributes": {}, "private": False, "created_at": int(time.time()),
            "sender": {"id": conversation.contact.id, "type": "contact"},
        })

    def _bot_message(self, message_id: Any, content_type: str) -> dict[str, Any]:
        assert self.flow is not None
        for message in self.flow.conversation.messages:
            if message.get("id") == message_id and message.get("content_type") == content_type:
                return message
        raise PlaygroundError(f"there is no {content_type} message {message_id!r} in this conversation")

    async def _agent_step(self, body: dict[str, Any]) -> None:
        flow = self.flow
        assert flow is not None
        conversation = flow.conversation
        action = body.get("do")
        text = str(body.get("text") or "").strip()
        if action == "resolve":
            await flow.resolve()
        elif action in ("reopen", "pending"):
            await self._status(flow, "open" if action == "reopen" else "pending")
        elif action in ("assign", "unassign"):
            previous = conversation.assignee_id
            conversation.assignee_id, conversation.assignee_type = ((AGENT["id"], "User") if action == "assign"
                                                                    else (None, None))
            change = [{"assignee_id": {"previous_value": previous, "current_value": conversation.assignee_id}}]
            await flow.deliver(factories.conversation_event(
                "conversation_updated", changed_attributes=change,
                **{k: v for k, v in flow._ids().items() if k != "assignee_type"},
                assignee_type=conversation.assignee_type), step=action)
        elif action in ("note", "reply") and text:
            message = self.fake._store_message(conversation, Principal("user", user=self.fake.users[AGENT["id"]]), {
                "content": text, "private": action == "note", "message_type": "outgoing"})
            make = factories.private_note if action == "note" else factories.agent_reply
            await flow.deliver(make(text, message_id=message["id"], **flow._ids()), step=action)
        else:
            raise PlaygroundError("the agent can resolve, reopen, pending, assign, unassign, note or reply "
                                  "(note and reply need text)")

    async def _status(self, flow: BotFlow, status: str) -> None:
        previous = flow.conversation.status
        flow.conversation.status = status
        change = [{"status": {"previous_value": previous, "current_value": status}}]
        ids = {k: v for k, v in flow._ids().items() if k != "status"}
        await flow.deliver(
            factories.conversation_event("conversation_opened" if status == "open" else "conversation_updated",
                                         status=status, **ids),
            factories.conversation_event("conversation_status_changed", status=status, changed_attributes=change,
                                         **ids),
            factories.conversation_event("conversation_updated", status=status, changed_attributes=change, **ids),
            step=status)

    def _guard(self, request: Request) -> Response | None:
        host = (request.headers.get("host") or "").rsplit(":", 1)[0]
        if host not in LOOPBACK_HOSTS:
            return JSONResponse({"error": "the playground answers only on 127.0.0.1"}, status_code=403)
        return None


def _submission(message: dict[str, Any], flow: BotFlow, *, submitted_values: list[dict[str, Any]] | None = None,
                submitted_email: str | None = None) -> dict[str, Any]:
    """The widget's answer to a form or an e-mail input: `message_updated` on the bot's own message."""
    body = factories.status_update(message["id"], message.get("content") or "", **flow._ids())
    body["content_type"] = message.get("content_type")
    attributes = dict(message.get("content_attributes") or {})
    if submitted_values is not None:
        attributes["submitted_values"] = submitted_values
    if submitted_email is not None:
        attributes["submitted_email"] = submitted_email
    body["content_attributes"] = attributes
    return body


def _handoffs(timelines: list[dict[str, Any]], messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each hand-off the bot made: when, why, the team, and the private note it left (its summary)."""
    found = []
    for delivery in timelines:
        steps = delivery.get("steps") or []
        if not any(s.get("kind") == "action" and s.get("name") == "handoff" and not s.get("skipped") for s in steps):
            continue
        reason = next(s.get("reason") for s in steps if s.get("name") == "handoff")
        notes = [s for s in steps if s.get("kind") == "action" and s.get("name") == "note"]
        found.append({"reason": reason, "handler": delivery.get("handler"), "notes": len(notes),
                      "at": delivery.get("received_at")})
    bot_notes = [m.get("content") for m in messages if m.get("private") and
                 (m.get("sender") or {}).get("type") == "agent_bot"]
    if found and bot_notes:
        found[-1]["summary"] = bot_notes[-1]
    return found


async def _no_icon(request: Request) -> Response:
    return Response(status_code=204)
