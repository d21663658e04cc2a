"""Working beside the agents: suggest mode, agents' commands, the summary at every hand-off, business hours.

- **Suggest mode** (BOTKIT_MODE=suggest, per inbox BOTKIT_SUGGEST_INBOXES, per conversation `/mode suggest`):
  the bot's replies become private notes marked as suggestions, numbered per contact message; nothing reaches
  the contact until an agent writes `/send` (or `/send 2`) in a private note, which posts that suggestion
  once. A pending conversation is opened for the agents (with its summary note), and the bot goes on
  suggesting while they answer.
- **Commands** (botkit/agent_commands.py): only an agent's private note, run like an event's actions
  (journaled: a retried delivery of the note does not run it twice).
- **The summary** (botkit/summary.py): every hand-off (a handler, the keyword router, the model, a failure,
  opening time) posts exactly one summary note before the conversation opens (BOTKIT_SUMMARY: auto, model,
  built, off; `off` posts the handler's own note, if any, as before).
- **Business hours** (botkit/hours.py): outside them a hand-off tells the contact when people are back and
  either waits, pending, until opening time (botkit/openings.py; the bot keeps answering meanwhile) or opens
  now with that in the note (BOTKIT_OUTSIDE_HOURS). Inside them nothing changes.

The per-conversation parts live in the conversation's state under `agents` (mode, suggestions, opening);
`/pause`, `/resume` and `/bot` change the turn record (botkit/turn.py), the one place that says who holds a
conversation. What the contact reads comes from the translation catalogue (botkit/i18n.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from babel.dates import format_datetime

from botkit import events, i18n
from botkit.agent_commands import MODES, Command, help_text, is_agent_note, parse
from botkit.config import ConfigError, Settings
from botkit.hours import Clock, Schedule, utc_now
from botkit.openings import DUE_EVENT, Openings
from botkit.summary import HandoffFacts, ModelSummarizer, built_summary, remember, transcript_of

if TYPE_CHECKING:
    from botkit.context import Context
    from botkit.router import Handler

log = logging.getLogger("botkit.agents")

KEY = "agents"  # the conversation state's key for this module's part
PAUSED = "an agent paused the bot"  # the turn record's reason for a /pause
REASONS = {  # why the bot handed off, in the agents' language
    "handler": i18n.N_("the bot's handler handed the conversation over"),
    "keywords": i18n.N_("a keyword rule hands this over to a person"),
    "model": i18n.N_("the model handed the conversation over"),
    "dead_letter": i18n.N_("the bot failed on this conversation"),
    "reply_window": i18n.N_("the channel's reply window is closed"),
    "suggest": i18n.N_("suggest mode: agents answer, the bot suggests"),
    "command": i18n.N_("an agent asked for a summary"),
}
# The notes agents read (the bot's default language, BOTKIT_LANGUAGE).
SUGGESTION = i18n.N_("Suggestion {number} ({prefix}send {number} to send it):")
IS_PAUSED = i18n.N_("The bot is paused in this conversation; {prefix}resume lets it answer again.")
RESUMED = i18n.N_("The bot answers again in this conversation.")
BACK_WITH_BOT = i18n.N_("The conversation is back with the bot.")
MODE_TAKES = i18n.N_("{prefix}mode takes suggest or answer.")
IN_MODE = i18n.N_("The bot is in {mode} mode in this conversation.")
NO_SUCH_SUGGESTION = i18n.N_("There is no suggestion {number} to send; there are {count}.")
ALREADY_SENT = i18n.N_("Suggestion {number} was already sent.")
NEEDS_TURNS = i18n.N_("{prefix}{command} needs the bot's yield_to_humans policy, which is off.")
OUTSIDE_HOURS = i18n.N_("outside business hours: the contact was told people are back {when}")
WITH_FILES = i18n.N_("(with the files {names}: attach them yourself)")
OUTSIDE_HOURS_UNKNOWN = i18n.N_("outside business hours: no opening time is known")
# What the contact reads, in their language (botkit/i18n.py; `make i18n` extracts them).
BACK_AT = i18n.N_("Our team is away right now and back on {when}. I've passed your conversation on; "
                  "meanwhile I can still help with anything else.")
BACK_LATER = i18n.N_("Our team is away right now. I've passed your conversation on and someone will get back "
                     "to you.")


def contact_language(ctx: Context) -> str:
    """The contact's language as Chatwoot gives it ("pt-BR"), else the one the bot answers them in."""
    return next(iter(i18n.language_candidates(ctx.event)), ctx.language)


def when_text(moment: datetime, language: str = "en") -> str:
    """The moment in the contact's language with its zone: "Monday 7 December, 09:00 (Europe/Paris)"."""
    zone = getattr(moment.tzinfo, "key", None) or moment.tzname() or ""
    text = format_datetime(moment, "EEEE d MMMM, HH:mm", tzinfo=moment.tzinfo, locale=language)
    return f"{text} ({zone})" if zone else text


class ChatwootHours:
    """Each inbox's own working hours, read with an administrator's token (GET .../inboxes), kept
    `ttl` seconds. An inbox Chatwoot does not list has no hours (always open)."""

    def __init__(self, settings: Settings, holidays: str = "", ttl: float = 600.0) -> None:
        if settings.chatwoot_admin_token is None or settings.chatwoot_base_url is None:
            raise ConfigError("BOTKIT_HOURS=chatwoot reads each inbox's working hours with an administrator's "
                              "token: set CHATWOOT_ADMIN_TOKEN and CHATWOOT_BASE_URL.")
        self.settings = settings
        self.holidays = holidays
        self.ttl = ttl
        self._cache: dict[int, tuple[float, dict[int, Schedule]]] = {}

    async def schedule_for(self, account_id: int, inbox_id: int | None) -> Schedule | None:
        cached = self._cache.get(account_id)
        if cached is None or time.monotonic() - cached[0] > self.ttl:
            from botkit.chatwoot import ChatwootClient

            async with ChatwootClient.from_settings(self.settings, token=self.settings.chatwoot_admin_token) as cw:
                inboxes = await cw.list_inboxes(account_id)
            cached = (time.monotonic(), {int(i["id"]): Schedule.from_inbox(i, self.holidays) for i in inboxes})
            self._cache[account_id] = cached
        return cached[1].get(inbox_id) if inbox_id is not None else None


def openai_handler(handlers: Iterable[Handler]) -> Any:
    """The bot's first `botkit.adapters.openai.OpenAIHandler` (a KnowledgeHandler's `model` included), or None.
    (Not named in the annotation: that module imports botkit.bot, which imports this one.)"""
    try:
        from botkit.adapters.openai import OpenAIHandler
    except ImportError:  # without the openai package there is no such handler either
        return None
    for handler in handlers:
        for candidate in (handler, getattr(handler, "model", None)):
            if isinstance(candidate, OpenAIHandler):
                return candidate
    return None


@dataclass
class Agents:
    """A bot's settings for working beside agents, and what acts on them."""

    mode: str = "answer"
    suggest_inboxes: frozenset[int] = frozenset()
    prefix: str = "/"
    summary: str = "auto"
    hours: Schedule | ChatwootHours | None = None
    outside_hours: str = "wait"
    clock: Clock = utc_now
    summarizer: ModelSummarizer | None = None
    openings: Openings = field(default_factory=Openings)

    @classmethod
    def from_settings(cls, settings: Settings, *, mode: str | None = None, hours: Schedule | str | None = None,
                      summary: str | None = None, clock: Clock | None = None) -> Agents:
        """The settings, with what the bot's code gave (`Bot(mode=..., hours=..., summary=..., clock=...)`) on top."""
        hours = hours if hours is not None else settings.botkit_hours
        if isinstance(hours, str):
            hours = (ChatwootHours(settings, settings.botkit_holidays) if hours.strip() == "chatwoot"
                     else Schedule.parse(hours, settings.botkit_holidays))
        clock = clock or utc_now
        agents = cls(mode=mode or settings.botkit_mode, suggest_inboxes=settings.suggest_inboxes,
                     prefix=settings.botkit_command_prefix, summary=summary or settings.botkit_summary,
                     hours=hours, outside_hours=settings.botkit_outside_hours, clock=clock,
                     openings=Openings(clock))
        return agents

    def choose_summarizer(self, settings: Settings, handlers: Iterable[Handler]) -> None:
        """Who writes the hand-off summaries, said once at start-up (after the handlers started, so their
        clients exist). A model writes them with BOTKIT_SUMMARY=model, or auto with OPENAI_API_KEY set: the
        bot's own OpenAI handler (its client, model and server: the summaries go where its answers go), or
        without one a client from the OPENAI_* settings. ConfigError: model without a key or without the
        openai package."""
        if self.summary not in ("model", "auto"):
            return
        if self.summary == "auto" and not settings.openai_api_key:
            log.info("hand-off summaries: built without a model (BOTKIT_SUMMARY=auto and OPENAI_API_KEY is not set)")
            return
        handler = openai_handler(handlers)
        if handler is not None and handler.client is not None:
            self.summarizer = ModelSummarizer(handler.client, handler.settings.model,
                                              timeout=handler.settings.timeout, owns_client=False)
            log.info("hand-off summaries: written by the bot's OpenAI handler (model %s at %s)",
                     self.summarizer.model, self.summarizer.server)
            return
        try:
            self.summarizer = ModelSummarizer.from_openai_settings(settings)
        except ImportError:
            if self.summary == "model":
                raise ConfigError("BOTKIT_SUMMARY=model needs the openai package: "
                                  "pip install 'botkit[openai]'.") from None
            log.info("hand-off summaries: built without a model (the openai package is not installed)")
            return
        log.info("hand-off summaries: written by model %s at %s, from the OPENAI_* settings (the bot has no "
                 "OpenAI handler)", self.summarizer.model, self.summarizer.server)

    async def close(self) -> None:
        await self.openings.stop()
        if self.summarizer is not None:
            await self.summarizer.close()

    # modes ----------------------------------------------------------------------------------------------
    def mode_of(self, event: events.Event, state: dict[str, Any]) -> str:
        """suggest or answer: the conversation's own (`/mode`), else its inbox's, else the bot's."""
        own = (state.get(KEY) or {}).get("mode")
        if own in MODES:
            return own
        inbox = event.conversation.inbox_id if event.conversation else None
        return "suggest" if self.mode == "suggest" or inbox in self.suggest_inboxes else "answer"

    def command_in(self, event: events.Event) -> Command | None:
        """The command an event carries: only an agent's private note starting with the prefix."""
        return parse(event.message.content, self.prefix) if is_agent_note(event) else None  # type: ignore[attr-defined]

    # the transcript and suggestions ------------------------------------------------------------------------
    def before_handlers(self, ctx: Context) -> None:
        """A contact message: keep it in the transcript; in suggest mode, start a fresh list of suggestions."""
        if self.summary != "off" and (ctx.event.name == "message_created" or ctx.answer is not None):
            remember(ctx.state, "contact", _as_seen(ctx))
        if ctx.suggesting and ctx.event.name == "message_created":
            _own(ctx.state)["suggestions"] = []

    async def suggest(self, ctx: Context, payload: dict[str, Any], files: list[str] | None = None) -> Any:
        """A reply in suggest mode: a private note numbered for `/send n`, the payload kept for it. Files are
        only named in the note (`/send` posts the text; an agent attaches the files)."""
        suggestions = _own(ctx.state).setdefault("suggestions", [])
        number = len(suggestions) + 1
        suggestions.append({"payload": payload, "sent": False})
        from botkit.channels import numbered_text

        text = payload["content"] if payload["content_type"] == "text" else numbered_text(payload)
        if files:
            text = "\n".join(filter(None, [text, ctx.t_agents(WITH_FILES, names=", ".join(files))]))
        return await ctx.note(ctx.t_agents(SUGGESTION, number=number, prefix=self.prefix) + "\n" + text)

    async def after_handlers(self, ctx: Context) -> None:
        """Suggest mode leaves the conversation to the agents: a pending one is opened for them."""
        conversation = ctx.conversation
        if ctx.suggesting and not ctx.handed_off and conversation is not None and conversation.status == "pending":
            await self._open(ctx, "suggest", None, None)

    # hand-offs ------------------------------------------------------------------------------------------------
    async def handoff(self, ctx: Context, *, team: str | int | None, note: str | None, message: str | None,
                      reason: str) -> None:
        """Context.handoff: see the module docstring."""
        if team is not None:
            ctx.teams.id_of(team)  # a team with no id fails the hand-off before the contact or agents are told
        if message:
            await ctx.reply(message)  # in suggest mode: a suggestion
        if ctx.suggesting:
            if ctx.conversation is not None and ctx.conversation.status == "pending":
                await self._open(ctx, reason, note, team)
            elif team is not None:
                await ctx.assign_team(team)
            ctx.handed_off = True
            return
        schedule = await self._schedule(ctx)
        now = self.clock()
        if schedule is not None and not schedule.is_open(now):
            back = schedule.next_opening(now)
            text = ctx.t(BACK_AT, when=when_text(back, ctx.language)) if back else ctx.t(BACK_LATER)
            await ctx.reply(text)
            if self.outside_hours == "wait" and back is not None:
                await self._wait(ctx, back, reason, note, team)
                ctx.handed_off = True
                return
            outside = (ctx.t_agents(OUTSIDE_HOURS, when=when_text(back, ctx.default_language)) if back
                       else ctx.t_agents(OUTSIDE_HOURS_UNKNOWN))
            note = f"{note}; {outside}" if note else outside
        await self._open(ctx, reason, note, team)

    async def _open(self, ctx: Context, reason: str, note: str | None, team: str | int | None) -> None:
        """One summary note (or the handler's note with the summary off), the team, then open: the hand-off."""
        if self.summary == "off":
            if note:
                await ctx.note(note)
        else:
            await self.summary_note(ctx, reason, note)
        if team is not None:
            await ctx.assign_team(team)
        await ctx.open_for_humans(reason)
        if ctx.handed_off:  # not when the conversation was no longer the bot's (botkit/turn.py)
            _own(ctx.state).pop("opening", None)

    async def summary_note(self, ctx: Context, reason: str, detail: str | None) -> Any:
        facts = HandoffFacts(reason=ctx.t_agents(REASONS[reason]) if reason in REASONS else reason,
                             transcript=transcript_of(ctx.state),
                             contact_name=ctx.contact.name if ctx.contact else None,
                             language=contact_language(ctx), detail=detail)
        text = None
        if self.summarizer is not None:
            summarizer = self.summarizer
            language = ctx.default_language
            text = await ctx.once("summary", lambda: summarizer.write(facts, ctx.t_agents, language))  # once
        return await ctx.note(text or built_summary(facts, ctx.t_agents))

    async def _schedule(self, ctx: Context) -> Schedule | None:
        if isinstance(self.hours, ChatwootHours):
            inbox = ctx.conversation.inbox_id if ctx.conversation else None
            try:
                return await self.hours.schedule_for(ctx.account_id, inbox)
            except Exception as exc:  # Chatwoot's hours unreadable: hand off now rather than hold it
                log.warning("could not read the inbox's working hours (%s); handing off now", type(exc).__name__)
                return None
        return self.hours

    # waiting for opening time ----------------------------------------------------------------------------------
    async def _wait(self, ctx: Context, due: datetime, reason: str, note: str | None, team: str | int | None) -> None:
        stamp = int(due.timestamp())
        _own(ctx.state)["opening"] = {"due": stamp, "reason": reason, "note": note, "team": team}
        await ctx.once("opening", lambda: self._index(ctx, due))

    async def _index(self, ctx: Context, due: datetime) -> bool:
        await self.openings.wait(ctx.job.lane, ctx.account_id, ctx.conversation_id, due)
        return True

    async def opening_due(self, ctx: Context) -> None:
        """The `botkit_opening` event: hand over now, unless the conversation stopped waiting meanwhile."""
        waiting = _own(ctx.state).get("opening")
        if not waiting or waiting.get("due") != ctx.event.raw.get("due"):
            log.info("opening time: the conversation no longer waits for a hand-off")
            return
        await self._open(ctx, waiting.get("reason") or "handler", waiting.get("note"), waiting.get("team"))

    @staticmethod
    def stop_waiting(event: events.Event, state: dict[str, Any]) -> bool:
        """An agent took the conversation (opened) in the meantime: it waits no more. True when changed."""
        if event.name in ("conversation_opened", "conversation_status_changed") and event.conversation is not None \
                and event.conversation.status == "open" and (state.get(KEY) or {}).get("opening"):
            _own(state).pop("opening")
            return True
        return False

    # commands ----------------------------------------------------------------------------------------------
    async def run_command(self, ctx: Context, command: Command) -> None:
        own = _own(ctx.state)
        prefix = self.prefix
        if not command.known or command.name == "help":
            await ctx.note(help_text(prefix, None if command.known else command.name, ctx.t_agents))
        elif command.name == "send":
            await self._send(ctx, command)
        elif command.name in ("pause", "resume", "bot") and _turns(ctx) is None:
            await ctx.note(ctx.t_agents(NEEDS_TURNS, prefix=prefix, command=command.name))
        elif command.name == "pause":
            await _turns(ctx).hold_for_humans(ctx.job.lane, PAUSED, restate=True)  # type: ignore[union-attr]
            await ctx.note(ctx.t_agents(IS_PAUSED, prefix=prefix))
        elif command.name == "resume":
            await _turns(ctx).give_back(ctx.job.lane, "an agent resumed the bot")  # type: ignore[union-attr]
            await ctx.note(ctx.t_agents(RESUMED))
        elif command.name == "bot":
            own["mode"] = "answer"
            await ctx.note(ctx.t_agents(BACK_WITH_BOT))
            await ctx.act("back_to_bot", lambda: ctx.chatwoot.toggle_status(
                ctx.account_id, ctx.conversation_id, "pending"))
            await _turns(ctx).give_back(ctx.job.lane, "an agent handed it back to the bot")  # type: ignore[union-attr]
        elif command.name == "summary":
            await self.summary_note(ctx, "command", None)
        elif command.name == "mode":
            if command.argument not in MODES:
                await ctx.note(ctx.t_agents(MODE_TAKES, prefix=prefix))
            else:
                own["mode"] = command.argument
                await ctx.note(ctx.t_agents(IN_MODE, mode=command.argument))

    async def _send(self, ctx: Context, command: Command) -> None:
        suggestions = _own(ctx.state).get("suggestions") or []
        number = command.number if command.argument else 1
        if number is None or not 1 <= number <= len(suggestions):
            await ctx.note(ctx.t_agents(NO_SUCH_SUGGESTION, number=command.argument or 1, count=len(suggestions)))
            return
        chosen = suggestions[number - 1]
        if chosen.get("sent"):
            await ctx.note(ctx.t_agents(ALREADY_SENT, number=number))
            return
        # as the reply itself would have gone: text as written (no Liquid), a menu remembered for its answer,
        # the transcript kept
        await ctx.send(ctx.render(chosen["payload"]))
        chosen["sent"] = True

    # pause: the turn record's (botkit/turn.py), not a second one ----------------------------------------------
    @staticmethod
    async def paused(ctx: Context) -> bool:
        """Did an agent pause the bot here (`/pause`)? Humans holding the conversation otherwise (an agent
        replied) does not stop suggestions: suggest mode is for conversations agents answer."""
        turns = _turns(ctx)
        if turns is None:
            return False
        record = await turns.get(ctx.job.lane)
        return record.held_by_humans and record.reason == PAUSED


def _turns(ctx: Context) -> Any:
    """The bot's record of who holds each conversation (botkit/turn.py), when its policy keeps one."""
    return ctx.turns


def _own(state: dict[str, Any]) -> dict[str, Any]:
    own = state.get(KEY)
    if not isinstance(own, dict):
        own = state[KEY] = {}
    return own


def is_due_event(event: events.Event) -> bool:
    return event.name == DUE_EVENT


def due_event(event: events.Event) -> events.Event:
    """The internal `botkit_opening` delivery as a conversation event (so a Context can act on it)."""
    raw = event.raw
    return events.ConversationEvent(name=DUE_EVENT, account=raw.get("account") or {},
                                    conversation=raw.get("conversation") or {}, raw=raw)



def _as_seen(ctx: Context) -> str:
    """The contact's message as they saw it, for the transcript: a menu pick is the option's title (the
    handlers' `ctx.text` is its value, which the contact never saw), a form its submitted values."""
    if ctx.answer is not None and ctx.answer.submitted:
        return ", ".join(str(item.get("title") or item.get("value") or "") for item in ctx.answer.submitted)
    return ctx.text
