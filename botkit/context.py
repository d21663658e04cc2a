"""Context: the one object a handler needs. The event, who and where, the conversation's state, and actions.

A Context is handed its collaborators and never reaches back into the bot that made it: the Chatwoot
actions (`botkit.runtime.ChatwootActions`), the event's journal (`botkit.journal.Journal`), the team ids
(`botkit.teams.Teams`), the conversation's state, the metrics hooks and the catalogue. So a test can build one
with a MemoryStore and a stand-in Chatwoot, without a socket.

Every action goes through the Chatwoot actions and is *journaled*: the n-th action of an event is recorded
in the store once it succeeds, and when the event runs again (a retry after a later action failed, a restart
after a crash, a replayed dead letter) the actions already recorded are skipped. So a retried event never
sends a second reply or a second hand-off note. Actions run in the order they are called, and a retried
event must call them in the same order (docs/guide.md, "Retries and the journal").
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from botkit import channels, events, i18n, turn
from botkit.channels import numbered_text  # public here too (botkit.context.numbered_text)
from botkit.chatwoot.errors import DeliveryUnknown
from botkit.errors import ActionRefused
from botkit.files import File, plan
from botkit.journal import Journal
from botkit.liquid import as_written
from botkit.media import Media
from botkit.metrics import NULL, NullMetrics
from botkit.store.base import Job
from botkit.summary import remember
from botkit.teams import Teams

if TYPE_CHECKING:
    from botkit.delivery import DeliveryFailure
    from botkit.menus import Answer, Memory
    from botkit.runtime import ChatwootActions
    from botkit.templates import TemplateMessage
    from botkit.timeline import Timeline

__all__ = ["ActionRefused", "Context", "numbered_text"]

log = logging.getLogger("botkit.context")


class AgentsDesk(Protocol):
    """What a Context asks of the bot's work beside the agents (botkit.agents.Agents offers it)."""

    summary: str  # auto, model, built, off

    async def suggest(self, ctx: Context, payload: dict[str, Any], files: list[str] | None = None) -> Any: ...

    async def handoff(self, ctx: Context, *, team: str | int | None, note: str | None, message: str | None,
                      reason: str) -> None: ...


class Context:
    """One event as a handler sees it. `chatwoot` takes the actions, `journal` remembers which succeeded,
    `teams` turns team names into ids, `state` is the conversation's (saved by the bot when changed).
    `when_cannot_reply` ("skip" or "handoff") says what a reply does when the channel's window is closed;
    `catalogue`, `language` (the bot's one language, if set) and `default_language` translate `t()`;
    `media` fetches and transcribes attachments; `turns` (when the bot yields to humans) records that humans
    hold the conversation after a hand-off or a look that found it theirs; `agents` (botkit.agents.Agents)
    writes the hand-off's summary note and keeps business hours and suggest mode."""

    def __init__(self, event: events.Event, job: Job, *, chatwoot: ChatwootActions, journal: Journal,
                 teams: Teams | None = None, state: dict[str, Any] | None = None,
                 metrics: NullMetrics = NULL, when_cannot_reply: str = "skip",
                 catalogue: i18n.Catalogue | None = None, language: str | None = None,
                 default_language: str = i18n.DEFAULT_LANGUAGE, media: Media | None = None,
                 turns: turn.Turns | None = None, agents: AgentsDesk | None = None,
                 timeline: Timeline | None = None) -> None:
        self.event = event
        self.timeline = timeline  # what this delivery did, for the console and the outcomes (botkit/timeline.py)
        self.job = job
        self.chatwoot = chatwoot
        self.journal = journal
        self.teams = teams if teams is not None else Teams(dry_run=chatwoot.dry_run)
        self.state = state if state is not None else {}  # per-conversation, saved after the handlers when changed
        self.metrics = metrics
        self.when_cannot_reply = when_cannot_reply
        self.catalogue = catalogue if catalogue is not None else i18n.Catalogue()
        self.default_language = default_language
        self._fixed_language = language
        self.media = media if media is not None else Media()  # the message's attachments, fetched on demand
        self.turns = turns
        self.agents = agents
        self.handed_off = False
        self.suggesting = False  # suggest mode: replies become private suggestions (botkit/agents.py)
        self._typing = False  # shown by this event: only then is there something to turn off
        self.lookout: turn.Lookout | None = None  # looks at the conversation before a stale or slow action
        self.dropped: str | None = None  # why this turn's actions are dropped: the conversation is not the bot's
        self._language: str | None = None
        self.transcripts: list[str] = []  # the words of the message's voice notes (BOTKIT_TRANSCRIPTION_MODEL)
        self.memory: Memory | None = None  # the menus the bot sent here (set by the Bot)
        self.answer: Answer | None = None  # the contact's pick in one of them, on any channel
        self.template: TemplateMessage | None = None  # Chatwoot's own template message or an answer to one
        self.failure: DeliveryFailure | None = None  # the channel refused one of the bot's messages
        self.merged_text: str | None = None  # the texts of a burst answered as one turn (botkit/bursts.py)
        self.merged_attachments: list[events.Attachment] | None = None  # and the burst's attachments
        self.burst: str | None = None  # absorbed (a newer message answers it), answering, or stale
        # answering a burst: "has the contact written again?" (botkit/bursts.py), asked before each reply
        self.newer_message: Callable[[], Awaitable[bool]] | None = None
        self._attributes_set: dict[str, Any] = {}  # custom attributes set in this turn (set_attributes)

    # what and who -------------------------------------------------------------------------------------
    @property
    def conversation(self) -> events.Conversation | None:
        return self.event.conversation

    @property
    def account_id(self) -> int:
        return self.event.account_id or 0

    @property
    def conversation_id(self) -> int:
        return self.event.conversation_id or 0

    @property
    def contact(self) -> events.Contact | None:
        return self.event.contact

    @property
    def inbox(self) -> events.Inbox | None:
        return self.event.inbox

    @property
    def channel(self) -> str | None:
        """The conversation's channel class; Channel::Instagram for Instagram through a Facebook page."""
        return channels.kind_of(self.conversation)

    @property
    def message(self) -> events.Message | None:
        return self.event.message if isinstance(self.event, events.MessageEvent) else None

    @property
    def submitted(self) -> list[dict[str, Any]]:
        """The contact's answer to the bot's menu or form, the same on every channel: `[{title, value}]` (a
        form: `[{name, value}]`), whether it came as the widget's `submitted_values`, a WhatsApp or Facebook
        title, a Telegram or LINE value, or a number typed back; else []."""
        if self.answer is not None:
            return self.answer.submitted
        if self.template is not None:
            return []  # a CSAT's submitted_values is Chatwoot's, not an answer to the bot (see `csat`)
        return self.message.submitted_values if self.message and self.event.name == "message_updated" else []

    @property
    def csat(self) -> dict[str, Any] | None:
        """The contact's CSAT rating `{rating: 1-5, feedback_message}`, in a handler that asked for Chatwoot's
        template messages (`bot.on_csat`); else None."""
        return self.template.csat if self.template is not None else None

    @property
    def text(self) -> str:
        """What the contact said: the message (and the transcripts of its voice notes), or the value picked in an
        input_select, or a submitted email."""
        if self.answer is not None and self.answer.submitted:
            first = self.answer.submitted[0]
            return str(first.get("value", first.get("title", "")))
        if self.event.name == "message_updated" and self.message is not None:
            if self.submitted:
                value = self.submitted[0].get("value", self.submitted[0].get("title", ""))
                return str(value)
            return self.message.submitted_email or ""
        if self.message is None:
            return ""
        if self.merged_text is not None:
            return self.merged_text
        return "\n".join(filter(None, [self.message.content or "", *self.transcripts]))

    @property
    def attachments(self) -> list[events.Attachment]:
        """What the contact attached to this message (to every message of a burst answered as one turn)."""
        if self.merged_attachments is not None:
            return self.merged_attachments
        return list(self.message.attachments) if self.message else []

    @property
    def images(self) -> list[events.Attachment]:
        """The images the contact sent with this message (or burst)."""
        return [a for a in self.attachments if a.file_type == "image"]

    @property
    def documents(self) -> list[events.Attachment]:
        """The files (PDFs, documents: Chatwoot's file_type `file`) the contact sent with this message (or burst)."""
        return [a for a in self.attachments if a.file_type == "file"]

    # languages ----------------------------------------------------------------------------------------
    @property
    def language(self) -> str:
        """The contact's language as a catalogue language ("pt_BR", "es", ...): the bot's own if it has one,
        else what Chatwoot says of the contact (botkit/i18n.py), else the bot's default (BOTKIT_LANGUAGE)."""
        if self._language is None:
            self._language = self._fixed_language or self.catalogue.language_for(self.event, self.default_language)
        return self._language

    @language.setter
    def language(self, value: str) -> None:
        self._language = value

    def t(self, message: str, **values: Any) -> str:
        """`message` (an English msgid) in the contact's language, `{name}` fields filled from `values`."""
        return self.catalogue.gettext(self.language, message, **values)

    def t_agents(self, message: str, **values: Any) -> str:
        """`message` in the agents' language (the bot's default): for private notes."""
        return self.catalogue.gettext(self.default_language, message, **values)

    # actions ------------------------------------------------------------------------------------------
    async def act(self, name: str, call: Callable[[], Awaitable[Any]],
                  keep: Callable[[Any], Any] | None = None, *, visible: bool = True, **detail: Any) -> Any:
        """Take one journaled action: `call()` makes one Chatwoot call (through `self.chatwoot`).

        The n-th action of an event is recorded in the journal once it succeeds; when the event runs again, a
        recorded action is skipped and gives back what was kept of its result. `keep` picks what is kept
        (JSON; by default a few identifiers, never message contents). A `visible` action is one the
        conversation shows: a stale or slow turn looks before it, and it is dropped (None) when the
        conversation is no longer the bot's (botkit.turn.Lookout). `name` is for the logs.
        Every action of Context goes through here; other modules use it for a call Context has no method for.
        `detail` goes on the delivery's timeline with the action's step and time (botkit/timeline.py)."""
        step, done, recorded = self.journal.take()
        if done:
            log.info("skipping %s: it already succeeded in an earlier attempt", name, extra=self._log_extra())
            if self.timeline is not None:
                self.timeline.action(name, step, 0.0, skipped=True, **detail)
            return recorded
        if visible and not await self._still_the_bots(name):
            if self.timeline is not None:
                self.timeline.action(name, step, 0.0, dropped=True, **detail)
            return None
        started = time.perf_counter()
        result = await call()
        if visible and self.lookout is not None:
            self.lookout.acted()
        record = (keep or _summary)(result)
        await self.journal.record(step, record)
        if self.timeline is not None:
            self.timeline.action(name, step, (time.perf_counter() - started) * 1000, **detail)
        return record

    async def _still_the_bots(self, name: str) -> bool:
        """Look before a stale or slow action (botkit.turn.Lookout); once the conversation is found to be no
        longer the bot's, every action of this turn is dropped."""
        if self.dropped is None and self.lookout is not None and self.lookout.due():
            self.dropped = await self.lookout.look()
            if self.dropped is not None:
                log.warning("dropping this turn's actions: %s", self.dropped, extra=self._log_extra())
                if self.turns is not None:
                    await self.turns.hold_for_humans(self.job.lane, self.dropped)
        if self.dropped is not None:
            log.info("not sending %s: %s", name, self.dropped, extra=self._log_extra())
            return False
        return True

    async def post(self, content: str | None, *, private: bool = False, content_type: str = "text",
                   content_attributes: dict[str, Any] | None = None, echo_id: str | None = None,
                   name: str = "post") -> Any:
        """Post exactly this message (or a private note), as one journaled action (`act`): no channel rendering,
        no suggest mode, no Liquid escaping (`reply` and `send` do those first). When Chatwoot's answer does
        not say whether it was saved, the conversation is looked at and it is sent again only if it is not
        there (botkit.turn.find_sent); when that cannot be told, DeliveryUnknown is raised."""
        return await self.act(name, lambda: self._post(content, private=private, content_type=content_type,
                                                       content_attributes=content_attributes, echo_id=echo_id),
                              content_type=content_type)

    async def _post(self, content: str | None, *, private: bool = False, content_type: str = "text",
                    content_attributes: dict[str, Any] | None = None, echo_id: str | None = None) -> Any:
        """Post a message; when Chatwoot's answer does not say whether it was saved (a 5xx, a cut connection),
        look at the conversation and send it again only if it is not there (botkit.turn.find_sent)."""
        def send() -> Awaitable[Any]:
            if private:
                return self.chatwoot.send_message(self.account_id, self.conversation_id, content, private=True)
            return self.chatwoot.send_message(self.account_id, self.conversation_id, content,
                                              content_type=content_type, content_attributes=content_attributes,
                                              echo_id=echo_id)
        try:
            return await send()
        except DeliveryUnknown:
            payload = {"content": content, "content_type": content_type, "private": private}
            found, message = await turn.find_sent(self.chatwoot, self.account_id, self.conversation_id, payload,
                                                  self._known_messages())
            if found == turn.FOUND:
                log.info("Chatwoot's answer was unclear, but the message was saved", extra=self._log_extra())
                return message
            if found == turn.UNKNOWN:
                raise
            log.info("Chatwoot's answer was unclear and the message was not saved; sending it again",
                     extra=self._log_extra())
            return await send()

    def _known_messages(self) -> set[int]:
        """Ids of messages that existed before this turn's next post: the event's and the turn's own."""
        known = {m.id for m in (self.conversation.messages if self.conversation else []) if m.id is not None}
        if self.message is not None and self.message.id is not None:
            known.add(self.message.id)
        known.update(r["id"] for r in self.journal.recorded.values()
                     if isinstance(r, dict) and isinstance(r.get("id"), int))
        return known

    def _log_extra(self) -> dict[str, Any]:
        return {"delivery_id": self.job.delivery_id, "lane": self.job.lane, "event": self.event.name}

    async def once(self, name: str, compute: Callable[[], Awaitable[Any]]) -> Any:
        """Compute a value once per event, like an action: a retried event gets the first attempt's result
        (JSON) back. For decisions later actions depend on, e.g. a model's answer, so a retry after a failed
        action replays the same decision instead of asking again and getting another."""
        return await self.act(name, compute, keep=lambda result: result, visible=False)

    @property
    def can_reply(self) -> bool:
        """False when the channel takes no reply now: Chatwoot says so (`can_reply`, e.g. WhatsApp's 24 hours),
        or it refused the bot's last message as outside the window and the contact has not written since."""
        closed = self.memory is not None and self.memory.window_closed
        return not closed and (self.conversation is None or self.conversation.can_reply)

    async def cannot_reply(self) -> None:
        """Apply the bot's `when_cannot_reply`: hand the conversation to humans, or skip the reply."""
        if self.when_cannot_reply == "handoff" and not self.handed_off:
            log.info("the channel does not accept a reply now (e.g. WhatsApp's 24-hour window); handing off",
                     extra=self._log_extra())
            await self.handoff(note=self.t_agents(i18n.N_(
                "The bot could not reply: the channel's reply window is closed.")), reason="reply_window")
        else:
            log.info("the channel does not accept a reply now; skipping it", extra=self._log_extra())

    async def reply(self, message: Any = None, *, files: Sequence[File | str | Path] = (),
                    echo_id: str | None = None, liquid: bool = False) -> Any:
        """Send a message to the contact: text, or a rich message (botkit.rich) rendered for the channel
        (botkit.channels: within the provider's limits, else numbered text), with `files` (botkit.files.File,
        or paths) attached as multipart. Where the channel cannot take them in one message (WhatsApp, TikTok:
        botkit/files.py), they go in several, each journaled. Text arrives as written; with `liquid=True`
        Chatwoot renders `{{contact.name}}` and other Liquid in it. An empty text is not sent.
        Returns the result of the last message sent. In suggest mode it becomes a private note agents may
        send with `/send` (botkit/agents.py); the files are named in it, and agents attach them themselves."""
        if self.suggesting:
            assert self.agents is not None, "suggest mode needs the bot's agents (botkit/agents.py)"
            names = [f.name if isinstance(f, File) else Path(f).name for f in files]
            payload = self.render(message if message is not None else "").payload
            return await self.agents.suggest(self, payload, files=names)
        if not self.can_reply:
            await self.cannot_reply()
            return None
        if self.newer_message is not None and not self.journal.next_is_recorded:
            await self._check_not_stale(self.newer_message)
        rendered = self.render(message) if message is not None else None
        attached = [f if isinstance(f, File) else File.from_path(f) for f in files]
        if not attached:
            if rendered is None:
                raise ValueError("ctx.reply needs a message, files, or both")
            return await self.send(rendered, echo_id=echo_id, liquid=liquid)
        payload = rendered.payload if rendered is not None else None
        rich = payload is not None and payload["content_type"] != "text"
        result = None
        for part in plan(self.channel, payload["content"] if payload else None, attached, rich=rich):
            if part.files:
                text = part.text if liquid or not part.text else as_written(part.text)
                result = await self.act("reply", lambda part=part, text=text: self.chatwoot.send_message(
                    self.account_id, self.conversation_id, text, attachments=part.files, echo_id=echo_id))
            elif rich and rendered is not None:
                result = await self.send(rendered, echo_id=echo_id, liquid=liquid)
            else:
                result = await self.send(channels.render(part.text or "", self.channel), echo_id=echo_id,
                                         liquid=liquid)
        return result

    @staticmethod
    async def _check_not_stale(newer_message: Callable[[], Awaitable[bool]]) -> None:
        from botkit.bursts import Stale

        if await newer_message():
            raise Stale("the contact wrote again before this reply was sent")

    def render(self, message: Any) -> channels.Rendered:
        """`message` as this conversation's channel shows it, in the contact's language where botkit adds words."""
        return channels.render(message, self.channel, hint=self.t(MENU_HINT), prompt=self.t(MENU_PROMPT))

    async def send(self, rendered: channels.Rendered, *, echo_id: str | None = None, liquid: bool = False) -> Any:
        """Post a message already rendered for the channel, and remember it when it is a menu or rich."""
        payload = rendered.payload
        content = payload.get("content") or ""
        if payload["content_type"] == "text" and not content.strip():
            log.warning("not sending an empty message: channels drop it without a word", extra=self._log_extra())
            return None
        content = content if liquid else as_written(content)
        result = await self.post(content, content_type=payload["content_type"],
                                 content_attributes=payload["content_attributes"], echo_id=echo_id, name="reply")
        if self.memory is not None and isinstance(result, dict):
            self.memory.remember(result.get("id"), rendered)
        if self.dropped is None and self.agents is not None and self.agents.summary != "off":
            remember(self.state, "bot", payload.get("content"))  # the transcript a hand-off summary is written from
        return result

    async def note(self, text: str, *, liquid: bool = False) -> Any:
        """A private note: agents see it, the contact does not. Text arrives as written (see `reply`)."""
        content = text if liquid else as_written(text)
        return await self.post(content, private=True, name="note")

    async def typing(self, on: bool = True) -> None:
        """Show (or stop showing) the bot typing. Cosmetic: not journaled, failures only logged, and skipped
        when requests to Chatwoot already queue (it would only slow the replies it announces)."""
        if on == self._typing or (on and (self.chatwoot.busy or self.dropped is not None)):
            return
        self._typing = on
        try:
            await self.chatwoot.toggle_typing(self.account_id, self.conversation_id, on)
        except Exception as exc:  # typing must never fail an event
            log.debug("typing indicator failed: %s", type(exc).__name__, extra=self._log_extra())

    async def assign_team(self, team: str | int) -> Any:
        team_id = self.teams.id_of(team)
        return await self.act("assign_team", lambda: self.chatwoot.assign_team(
            self.account_id, self.conversation_id, team_id))

    async def assign_agent(self, agent_id: int) -> Any:
        return await self.act("assign_agent", lambda: self.chatwoot.assign_agent(
            self.account_id, self.conversation_id, agent_id))

    async def handoff(self, *, team: str | int | None = None, note: str | None = None,
                      message: str | None = None, reason: str = "handler") -> None:
        """Hand the conversation to humans: message the contact, leave one summary note (with `note` in it),
        assign a team, then open it. Outside business hours the contact is told when people are back and the
        hand-off waits for opening time, or opens now, as configured (botkit/agents.py).

        `reason` says why, in the summary and the metrics (handler, keywords, model, dead_letter, ...)."""
        if self.agents is not None:  # the summary note, business hours (botkit/agents.py)
            await self.agents.handoff(self, team=team, note=note, message=message, reason=reason)
            return
        if message:
            await self.reply(message)
        if note:
            await self.note(note)
        if team is not None:
            await self.assign_team(team)
        await self.open_for_humans(reason)

    async def open_for_humans(self, reason: str) -> None:
        """The hand-off itself: open the conversation (journaled), count it once, and record that humans hold
        it (also where Chatwoot keeps it assigned to the bot). Nothing when this turn's actions are dropped."""
        first_time = not self.journal.next_is_recorded  # a retried event skips the journaled hand-off: count it once
        done = await self.act("handoff", lambda: self.chatwoot.toggle_status(
            self.account_id, self.conversation_id, "open"), reason=reason)
        if self.dropped is not None and done is None:
            return
        if first_time:
            self.metrics.handoff(reason)
        self.handed_off = True
        if self.turns is not None:
            await self.turns.hold_for_humans(self.job.lane, "the bot handed off")

    async def resolve(self) -> Any:
        return await self.act("resolve", lambda: self.chatwoot.toggle_status(
            self.account_id, self.conversation_id, "resolved"))

    async def snooze(self, until: datetime | int) -> Any:
        return await self.act("snooze", lambda: self.chatwoot.toggle_status(
            self.account_id, self.conversation_id, "snoozed", snoozed_until=until))

    async def set_priority(self, priority: str | None) -> Any:
        return await self.act("set_priority", lambda: self.chatwoot.toggle_priority(
            self.account_id, self.conversation_id, priority))

    async def add_labels(self, *labels: str) -> Any:
        return await self.act("add_labels", lambda: self.chatwoot.add_labels(
            self.account_id, self.conversation_id, list(labels)))

    async def remove_labels(self, *labels: str) -> Any:
        return await self.act("remove_labels", lambda: self.chatwoot.remove_labels(
            self.account_id, self.conversation_id, list(labels)))

    async def set_attributes(self, **attributes: Any) -> Any:
        """Merge into the conversation's custom attributes (Chatwoot's own call replaces them all). Where
        Chatwoot cannot show the conversation to the bot (a 500 up to 4.15.1 for one with a team), the merge is
        made onto the attributes the event carried and those this turn set (ChatwootClient.set_custom_attributes)."""
        conversation = self.conversation
        known = {**(conversation.custom_attributes if conversation else {}), **self._attributes_set}
        result = await self.act("set_attributes", lambda: self.chatwoot.set_custom_attributes(
            self.account_id, self.conversation_id, attributes, known=known))
        self._attributes_set.update(attributes)  # also when skipped on a retry: the next merge keeps them
        return result


MENU_HINT = i18n.N_("Reply with the number of your choice.")  # below a menu sent as numbered text
MENU_PROMPT = i18n.N_("Please choose:")  # above a menu sent with no text, where the channel needs one


_SAFE_KEYS = re.compile(r"^(id|status|current_status|success|conversation_id|message_type|labels)$")


def _summary(result: Any) -> Any:
    """What the journal keeps of an action's result: a few identifiers, never message contents."""
    if isinstance(result, dict):
        payload = result.get("payload") if isinstance(result.get("payload"), dict) else result
        return {k: v for k, v in payload.items() if _SAFE_KEYS.match(k) and isinstance(v, int | str | bool | list)}
    if isinstance(result, list):
        return [r for r in result if isinstance(r, int | str)]
    return result if isinstance(result, int | str | bool) or result is None else None
