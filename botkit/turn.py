"""Whose turn it is: the bot's, or the humans'. A bot that talks over an agent is the first thing a support team
turns off, and Chatwoot's delivery alone does not tell (`status` stays `pending` when a human replies).

- **The record.** `Turns` keeps one small record per conversation in the store, beside its state (under the
  lane `<lane>#turn`): who holds it (`held_by_humans`), since when and why, and the contact messages answered
  in turns that started without a message event (`answered`, so their `message_created` is not answered
  again). Only a change of holder or such a turn writes it: the happy path reads it, once per message.
  `hold_for_humans` and `give_back` are the pause and resume other parts of botkit use (an agent's command,
  a hand-off).
- **Yielding.** A human's public message in the conversation hands it to humans (`human_message`): a user's
  outgoing message; one sent outside Chatwoot (`content_attributes.external_echo`: the WhatsApp Business app,
  Facebook, Instagram, TikTok echoes); an outgoing message with no sender and a provider `source_id` (the
  Telegram app). Chatwoot CE changes neither status nor assignee on such a reply (`app/models/message.rb`,
  `enterprise/app/models/enterprise/message.rb#human_response?` for the same rule).
- **Coming back.** The conversation is the bot's again (`given_back`) when it is resolved (the next contact
  message makes it pending again), when its status goes back to `pending`, or when it is assigned to this bot
  (`conversation_updated` whose `changed_attributes` holds `assignee_agent_bot_id`,
  `app/listeners/agent_bot_listener.rb`).
- **Turns without a message.** When it comes back and its last message (`messages[0]`, the last public
  non-activity message, `conversations/event_data_presenter.rb`) is the contact's, `waiting_message` makes
  that message the turn's event, answered once: such a turn always looks before acting, and does not answer
  when the bot's own reply is newer (its `message_created` came first).
- **Looking before acting** (`Lookout`): a turn that may be stale (a retry, a replay, an event that waited,
  a slow model call) GETs the conversation (`GET …/conversations/{id}`, bot tokens since Chatwoot 4.14.2)
  before its first action, and drops its actions when the conversation is no longer the bot's.
- **Told by the queue.** An event that only waited in the queue first reads the deliveries queued behind it
  in its lane (`Store.queued_after`): each carries the conversation as it was then, and a human's reply,
  assignment, resolution or hand-off reaches the conversation's inbox bot as a delivery
  (`app/listeners/agent_bot_listener.rb#agent_bots_for`; `conversation_updated` since 4.13). So when the bot
  is the inbox bot (the conversation is not assigned to an agent bot) it does not GET: what the queue says is
  as fresh as a new event's snapshot, which never GETs. A conversation assigned to a bot still GETs, since a
  bot that was unassigned gets no delivery for it. Without this, every event of a backlog past
  BOTKIT_LOOK_AFTER cost a GET, the worker's and Chatwoot's work rising just when the bot is behind.
- **Ambiguous creates** (`find_sent`): after a message POST whose outcome is unknown, the newest message of
  the conversation (the GET's `messages[0]`, any kind) tells whether it was saved.
- Both looks take a failed GET as "cannot look": the turn acts on its delivery alone, the unclear create is
  handed off. A 500 is not retried (`cannot_look`: Chatwoot up to 4.15.1 answers it for a conversation with
  a team).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from botkit import events, liquid

if TYPE_CHECKING:
    from botkit.runtime import ChatwootActions

log = logging.getLogger("botkit.turn")

TURN_SUFFIX = "#turn"
ANSWERED_KEPT = 20  # message ids remembered per conversation: enough for deliveries that arrive out of order
LOOK_SINCE = (4, 14, 2)  # the first Chatwoot that lets a bot token GET a conversation


@dataclass
class Turn:
    """One conversation's record. Without one, the bot holds the conversation and has answered nothing."""

    held_by_humans: bool = False
    since: float = 0.0  # unix time of the last change of holder
    reason: str = ""  # why it changed: "an agent replied", "handed off", "assigned to the bot", ...
    answered: list[int] = field(default_factory=list)  # contact messages answered without their message_created

    def has_answered(self, message_id: int) -> bool:
        return message_id in self.answered

    def newer_answered(self, message_id: int) -> bool:
        """Has the bot answered a message newer than `message_id` (a stale snapshot's last message)?"""
        return any(answered > message_id for answered in self.answered)


class Turns:
    """The turn records of a store: `await turns.get(lane)`, `hold_for_humans`, `give_back`, `answered`."""

    def __init__(self, store: Any) -> None:
        self.store = store

    async def get(self, lane: str) -> Turn:
        record = await self.store.get_state(lane + TURN_SUFFIX)
        return Turn(**{k: v for k, v in record.items() if k in Turn.__dataclass_fields__})

    async def _put(self, lane: str, turn: Turn) -> Turn:
        await self.store.set_state(lane + TURN_SUFFIX, asdict(turn))
        return turn

    async def hold_for_humans(self, lane: str, reason: str, *, restate: bool = False) -> Turn:
        """Humans hold the conversation: the bot stays silent there until `give_back`. `restate`: record
        `reason` even when humans hold it already (an agent's `/pause`, which also silences suggestions)."""
        turn = await self.get(lane)
        if turn.held_by_humans and not (restate and turn.reason != reason):
            return turn
        log.info("humans hold this conversation now (%s); the bot stays silent there", reason, extra={"lane": lane})
        return await self._put(lane, Turn(True, time.time(), reason, turn.answered))

    async def give_back(self, lane: str, reason: str) -> Turn:
        """The conversation is the bot's again."""
        turn = await self.get(lane)
        if not turn.held_by_humans:
            return turn
        log.info("the conversation is the bot's again (%s)", reason, extra={"lane": lane})
        return await self._put(lane, Turn(False, time.time(), reason, turn.answered))

    async def answered(self, lane: str, message_id: int) -> None:
        """The bot took its turn on the contact's message `message_id`: it is not answered again."""
        turn = await self.get(lane)
        if message_id not in turn.answered:
            turn.answered = [*turn.answered, message_id][-ANSWERED_KEPT:]
            await self._put(lane, turn)


# Reading the deliveries ----------------------------------------------------------------------------------


def human_message(event: events.Event) -> str | None:
    """Why this delivery is a human's public message in the conversation, or None when it is not one."""
    if not isinstance(event, events.MessageEvent) or event.name != "message_created":
        return None
    message = event.message
    if message.private or message.message_type != events.MessageType.outgoing:
        return None
    if event.sender is not None and event.sender.kind == "user":
        return "an agent replied"
    if message.content_attributes.get("external_echo"):
        return "a human replied from the channel's own app"
    # A provider's id on an outgoing message with no sender: it came from the channel (the Telegram app);
    # Chatwoot's CSAT sent as a WhatsApp template is the exception (csat_survey_service.rb).
    if event.sender is None and message.source_id and message.content_type != "input_csat":
        return "a message was sent from outside Chatwoot"
    return None


def assigned_bot(conversation: events.Conversation | None) -> int | None:
    """The id of the agent bot the conversation is assigned to, if any (webhook `meta.assignee` or GET's)."""
    if conversation is None or conversation.meta.assignee_type != "AgentBot" or not conversation.meta.assignee:
        return None
    bot = conversation.meta.assignee.get("id")
    return bot if isinstance(bot, int) else None


def is_the_bots(conversation: events.Conversation | None, bot_id: int | None) -> bool:
    """Is the conversation the bot's: pending with no human assignee, or assigned to this bot?

    `bot_id` None: any agent bot is taken for this one (set CHATWOOT_BOT_ID when bots share an inbox)."""
    if conversation is None:
        return True
    if conversation.is_human_assigned:
        return False
    assigned = assigned_bot(conversation)
    if conversation.meta.assignee_type == "AgentBot" and assigned is not None:
        if bot_id is not None and assigned != bot_id:
            return False  # another bot's conversation
        return conversation.status not in ("resolved", "snoozed")
    return conversation.status in (None, "pending")


def given_back(event: events.Event, bot_id: int | None) -> str | None:
    """Why this delivery makes the conversation the bot's again, or None."""
    if event.name == "conversation_resolved":
        return "the conversation was resolved"
    if not isinstance(event, events.ConversationEvent):
        return None
    status = event.changed("status")
    if status is not None and status[1] == "pending" and status[0] != "pending":
        return "the conversation is pending again"
    assignment = event.changed("assignee_agent_bot_id")
    if assignment is not None and assignment[1] is not None and (bot_id is None or assignment[1] == bot_id):
        return "the conversation was assigned to the bot"
    return None


def waiting_message(event: events.Event) -> events.MessageEvent | None:
    """The contact's message waiting in a conversation that just became the bot's, as a `message_created`.

    `messages[0]` of a conversation event is its last public, non-activity message: when it is incoming, no
    one has answered it. None when there is none, and when the contact's own new message is what made a
    resolved conversation pending again (`Message#reopen_conversation`): that message comes as its own
    `message_created`."""
    if not isinstance(event, events.ConversationEvent) or event.name == "conversation_resolved":
        return None
    status = event.changed("status")
    if status is not None and status[0] == "resolved":
        return None
    raw = event.raw
    messages = raw.get("messages") if isinstance(raw.get("messages"), list) else []
    last = messages[0] if messages and isinstance(messages[0], dict) else None
    if last is None or last.get("private") or events._message_type(last.get("message_type")) != "incoming":
        return None
    conversation = {k: v for k, v in raw.items() if k not in ("event", "changed_attributes")}
    sender = last.get("sender") if isinstance(last.get("sender"), dict) else None
    if sender is not None and sender.get("type") == "contact":
        sender = {k: v for k, v in sender.items() if k != "type"}  # a contact has no type at the top level
    body = {**last, "event": "message_created", "message_type": "incoming", "sender": sender,
            "conversation": conversation, "account": raw.get("account") or {"id": raw.get("account_id")},
            "inbox": {"id": raw.get("inbox_id")}}
    turn = events.parse(body, event.delivery_id)
    return turn if isinstance(turn, events.MessageEvent) and turn.message.id is not None else None


def message_id(event: events.Event) -> int | None:
    """The id of the contact's message this event answers (message_created, incoming), else None."""
    if isinstance(event, events.MessageEvent) and event.name == "message_created" \
            and event.message.message_type == events.MessageType.incoming:
        return event.message.id
    return None


def version_tuple(version: str | None) -> tuple[int, ...] | None:
    """"4.15.1" -> (4, 15, 1); None for anything else."""
    try:
        return tuple(int(part) for part in (version or "").split(".")[:3])
    except ValueError:
        return None


# Looking at Chatwoot -------------------------------------------------------------------------------------


class LookSwitch:
    """Whether a bot looks before acting; turned off, once and said once, when Chatwoot does not let it."""

    def __init__(self) -> None:
        self.on = True
        self.checked = False  # Chatwoot's version is read once, at the first look (no request before one is due)

    def turn_off(self, why: str) -> None:
        if self.on:
            self.on = False
            log.warning("looking before acting is off: %s; a stale or slow turn acts on the delivery alone", why)

    async def check_version(self, chatwoot: ChatwootActions) -> None:
        """Turn off on a Chatwoot older than 4.14.2 (`GET /api` says its version)."""
        self.checked = True
        try:
            found = version_tuple(await asyncio.wait_for(chatwoot.version(), 5.0))
        except Exception as exc:  # Chatwoot down at start-up: keep the check; a refused GET turns it off later
            log.debug("could not read Chatwoot's version (%s)", type(exc).__name__)
            return
        if found is not None and found < LOOK_SINCE:
            self.turn_off(f"Chatwoot {'.'.join(map(str, found))} does not let a bot token GET a conversation "
                          "(4.14.2+ does)")


class Lookout:
    """Decides when a turn looks at the conversation before acting, and looks.

    It looks before the turn's first new action when the event may be stale (`stale`: a retry, a replay, an
    event that waited `look_after` seconds), and before any action that comes `look_after` seconds after the
    last look or action (a slow model call). A fresh event answered quickly never looks. `look(...)` returns
    why the conversation is no longer the bot's, or None (also when it cannot look: the actions go ahead).
    """

    def __init__(self, chatwoot: ChatwootActions, account_id: int, conversation_id: int, *, stale: bool,
                 look_after: float, bot_id: int | None, after_message: int | None, switch: LookSwitch,
                 waiting: bool = False,
                 queued: Callable[[], Awaitable[list[tuple[str, bytes]] | None]] | None = None) -> None:
        self.waiting = waiting  # a turn on a waiting message: the bot's own newer reply means it was answered
        # an event that only waited, in a conversation whose every change reaches the bot: the deliveries
        # queued behind it answer the first look (`Store.queued_after`; None when the store cannot tell)
        self.queued = queued
        self.switch = switch
        self.chatwoot = chatwoot
        self.account_id = account_id
        self.conversation_id = conversation_id
        self.stale = stale
        self.look_after = look_after
        self.bot_id = bot_id
        self.after_message = after_message or 0
        self._last = time.monotonic()

    def due(self) -> bool:
        return self.stale or time.monotonic() - self._last > self.look_after

    async def look(self) -> str | None:
        from botkit.chatwoot import NotAuthorizedForBots

        self.stale = False
        if self.queued is not None:
            newer, self.queued = await self.queued(), None
            if newer is not None:
                self._last = time.monotonic()
                return why_queued_say_not_the_bots(newer, self.bot_id)
        if not self.switch.checked:
            await self.switch.check_version(self.chatwoot)
            if not self.switch.on:
                return None
        try:
            current = await self.chatwoot.get_conversation(self.account_id, self.conversation_id, retry_500=False)
        except NotAuthorizedForBots:
            self.switch.turn_off("this Chatwoot does not let a bot token GET a conversation (4.14.2+ does)")
            return None
        except Exception as exc:  # cannot look: act as before rather than drop a turn that may be the bot's
            log.warning("could not look at the conversation before acting (%s); acting on the delivery alone",
                        cannot_look(exc))
            return None
        finally:
            self._last = time.monotonic()
        return why_not_the_bots(current, self.bot_id, self.after_message, answered_by_bot=self.waiting)

    def acted(self) -> None:
        self._last = time.monotonic()


def cannot_look(exc: Exception) -> str:
    """Why a GET of the conversation failed, for the log. A 500 is not retried there: up to 4.15.1 Chatwoot
    answers it for every conversation with a team (`app/views/api/v1/conversations/partials/_team.json.jbuilder`),
    so retrying would only wait out the retry deadline at each look."""
    if getattr(exc, "status", None) == 500:
        return "Chatwoot answered 500, as it does up to 4.15.1 for a conversation with a team: upgrade Chatwoot"
    return type(exc).__name__


def why_not_the_bots(current: dict[str, Any], bot_id: int | None, after_message: int = 0, *,
                     answered_by_bot: bool = False) -> str | None:
    """Why the conversation Chatwoot shows (a GET's answer) is not the bot's now, or None when it is.

    `answered_by_bot`: also when the newest message is the bot's own reply, newer than `after_message`."""
    conversation = events.Conversation.model_validate(current)
    if not is_the_bots(conversation, bot_id):
        holder = "a human is assigned" if conversation.is_human_assigned else f"it is {conversation.status}"
        return f"Chatwoot says it is no longer the bot's ({holder})"
    newest = (current.get("messages") or [None])[0]
    if isinstance(newest, dict) and (newest.get("id") or 0) > after_message and not newest.get("private") \
            and events._message_type(newest.get("message_type")) == "outgoing" \
            and (newest.get("sender_type") == "User"
                 or (newest.get("content_attributes") or {}).get("external_echo")):
        return "a human replied in the conversation since"
    if answered_by_bot and isinstance(newest, dict) and (newest.get("id") or 0) > after_message \
            and newest.get("sender_type") == "AgentBot" and not newest.get("private"):
        return "the bot answered that message already"
    return None


def why_queued_say_not_the_bots(queued: list[tuple[str, bytes]], bot_id: int | None) -> str | None:
    """Why a delivery queued behind this one (as `(event name, body)`, oldest first) says the conversation is
    no longer the bot's: a human's public message, or its conversation snapshot is not the bot's (a human
    assigned, resolved, opened by a hand-off). None when none of them says so."""
    for _, body in queued:
        try:
            newer = events.parse_json(body)
        except events.MalformedEvent:
            continue  # the worker makes it a dead letter in its turn; it says nothing of the conversation
        human = human_message(newer)
        if human is not None:
            return f"{human} since (a newer delivery says so)"
        if newer.conversation is not None and not is_the_bots(newer.conversation, bot_id):
            conversation = newer.conversation
            holder = "a human is assigned" if conversation.is_human_assigned else f"it is {conversation.status}"
            return f"a newer delivery says it is no longer the bot's ({holder})"
    return None


FOUND, ABSENT, UNKNOWN = "found", "absent", "unknown"


async def find_sent(chatwoot: ChatwootActions, account_id: int, conversation_id: int, payload: dict[str, Any],
                    known: set[int]) -> tuple[str, dict[str, Any] | None]:
    """Was a message whose POST got no clear answer saved? Looks at the newest message of the conversation.

    `payload` is what was posted (content, content_type, private); `known` the ids of messages that existed
    before the POST (the contact's message, the turn's earlier messages). Returns (FOUND, the message),
    (ABSENT, None) when the newest message is one of `known`, or (UNKNOWN, None) when it cannot be told: the
    GET failed, or the newest message is neither.
    """
    try:
        current = await chatwoot.get_conversation(account_id, conversation_id, retry_500=False)
    except Exception as exc:
        log.warning("could not look for the message after an unclear answer (%s)", cannot_look(exc))
        return UNKNOWN, None
    newest = (current.get("messages") or [None])[0]
    if not isinstance(newest, dict):
        return UNKNOWN, None
    if newest.get("id") in known:
        return ABSENT, None
    posted = payload.get("content")
    saved = liquid.saved_as(posted) if isinstance(posted, str) else posted  # Chatwoot renders the Liquid escapes
    same = (newest.get("sender_type") == "AgentBot" and newest.get("content") in (posted, saved)
            and (newest.get("content_type") or "text") == (payload.get("content_type") or "text")
            and bool(newest.get("private")) == bool(payload.get("private")))
    return (FOUND, newest) if same else (UNKNOWN, None)
