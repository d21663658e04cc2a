"""Bot: policies decide whether an event is the bot's business, then middleware wraps the handler chain.

Chatwoot sends a bot everything (`app/listeners/agent_bot_listener.rb`): its own replies, agents' replies,
private notes, templates, delivery-status updates, and events of conversations a human already owns. The
policies drop all of that before any handler runs, each switchable per bot. Handlers run in order under one
rule (botkit.router): returning `False` passes the event on, anything else ends the chain, so "keywords
first, then the LLM" is a list of two. The bot's decorated functions (`@bot.on_message`, ...) sit in its own
router, which runs before that list; a handler after a catch-all stops start-up (`check_order`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from botkit import channels, events, i18n, outcomes, turn
from botkit.agents import Agents, due_event, is_due_event
from botkit.bursts import STATE_KEY, BurstPolicy, Stale, gather, is_contact_message, newer_contact_message
from botkit.bursts import drop as drop_burst
from botkit.config import ConfigError
from botkit.context import Context
from botkit.delivery import DeliveryFailure, failure_of
from botkit.hours import Clock, Schedule
from botkit.journal import Journal
from botkit.media import Media
from botkit.menus import KEY, Memory
from botkit.openings import INDEX_EVENT
from botkit.router import MESSAGES, Handler, Router, check_order, passes
from botkit.store.base import Finish, Job
from botkit.teams import Teams
from botkit.templates import template_of
from botkit.timeline import Timeline

if TYPE_CHECKING:
    from botkit.runtime import Runtime

log = logging.getLogger("botkit.bot")

REPLAYED = -1  # the journal step that marks an event made a dead letter: replayed, it may be stale

Next = Callable[[Context], Awaitable[bool]]
Middleware = Callable[[Context, Next], Awaitable[bool]]


@dataclass
class Policies:
    """The gate in front of the handlers. Each is on by default."""

    incoming_only: bool = True  # message_created: only the contact's public messages
    pending_only: bool = True  # only while the conversation is the bot's (pending, no human assignee)
    answers_only: bool = True  # message_updated: only when it carries the contact's answer to a rich message
    yield_to_humans: bool = True  # a human's public message hands the conversation to humans (botkit.turn)
    look_before_acting: bool = True  # a stale or slow turn checks with Chatwoot that it is still the bot's


class Bot:
    """A bot: policies, middleware and an ordered chain of handlers, bound to a store and a Chatwoot client."""

    def __init__(
        self,
        name: str = "bot",
        handlers: Sequence[Handler] = (),
        *,
        middleware: Sequence[Middleware] = (),
        policies: Policies | None = None,
        teams: dict[str, int] | None = None,
        typing_after: float | None = 1.0,
        when_cannot_reply: str = "skip",
        handoff_on_failure: bool = True,
        language: str | None = None,
        locales: str | Sequence[str] = (),
        mode: str | None = None,
        hours: Schedule | str | None = None,
        summary: str | None = None,
        clock: Clock | None = None,
        resend_failed_as_text: bool = True,
        merge_bursts: bool | None = None,
    ) -> None:
        """`mode` (answer, suggest), `hours` (a Schedule, its text, or "chatwoot") and `summary` (auto, model,
        built, off) override BOTKIT_MODE, BOTKIT_HOURS and BOTKIT_SUMMARY; `clock` (an aware datetime now)
        is for tests that move time."""
        if when_cannot_reply not in ("skip", "handoff"):
            raise ValueError("when_cannot_reply must be 'skip' or 'handoff'")
        self.name = name
        self.handlers: list[Handler] = list(handlers)
        for handler in self.handlers:  # a bare function failed at start-up with an AttributeError on `leaves`
            if not isinstance(handler, Handler):
                raise TypeError(f"Bot({name!r}, [...]) takes handlers: {handler!r} is not one; register a function "
                                "with a router's decorator (@router.on_message(...), @bot.fallback) and give the "
                                "router")
        self.router = Router(name)  # where @bot.on_message and the other decorators register
        self.middleware: list[Middleware] = list(middleware)
        self.policies = policies or Policies()
        self.teams = Teams(teams)  # the bot's own ids win over BOTKIT_TEAMS
        self.typing_after = typing_after
        self.when_cannot_reply = when_cannot_reply
        self.handoff_on_failure = handoff_on_failure
        # botkit's catalogue plus the bot's own (`locales`: directories of <lang>/LC_MESSAGES/messages.mo)
        self.catalogue = i18n.Catalogue([locales] if isinstance(locales, str) else locales)
        self.language = _language_setting(language, "Bot(language=...)")  # every contact in this one, if set
        self.default_language = self.language or i18n.DEFAULT_LANGUAGE  # BOTKIT_LANGUAGE once bound
        self.media = Media()  # attachments: fetched, inlined, transcribed (settings once bound)
        self.resend_failed_as_text = resend_failed_as_text  # a rich message the channel refused, sent again as text
        self.delivery_hooks: list[Callable[[Context], Awaitable[Any]]] = []
        self.menu_ttl = 24 * 3600.0  # seconds a sent menu can be answered (BOTKIT_MENU_TTL)
        # None: merge when a handler asks for whole turns (the model handlers do); the window once bound
        self.merge_bursts = merge_bursts
        self.bursts: BurstPolicy | None = None
        self.runtime: Runtime | None = None
        self.turns: turn.Turns | None = None  # who holds each conversation (set by bind)
        self.looks = turn.LookSwitch()
        self.bot_id: int | None = None  # the agent bot's id in Chatwoot, when known (CHATWOOT_BOT_ID)
        self.look_after = 5.0  # seconds (BOTKIT_LOOK_AFTER)
        self._agent_options = {"mode": mode, "hours": hours, "summary": summary, "clock": clock}
        self.agents = Agents()  # replaced from the settings by bind()

    # decorators: they register into the bot's own router, which runs before the handlers given here -------
    @property
    def chain(self) -> list[Handler]:
        """The handler chain, in order: the bot's own router (its decorated functions), then `handlers`."""
        return [self.router, *self.handlers]

    def on_message(self, *keywords: str, regex: str | None = None,
                   when: Callable[[Context], bool] | None = None) -> Callable[[Any], Any]:
        """Run the function for the contact's messages matching any keyword, the regex, or the predicate."""
        return self.router.on_message(*keywords, regex=regex, when=when)

    def on_event(self, *names: str) -> Callable[[Any], Any]:
        """Run the function for these events (conversation_resolved, webwidget_triggered, ...)."""
        return self.router.on_event(*names)

    def on_answer(self, *values: str) -> Callable[[Any], Any]:
        """Run the function when the contact picks one of these values in a rich message (any, if none given)."""
        return self.router.on_answer(*values)

    def fallback(self, fn: Callable[[Context], Awaitable[Any]]) -> Callable[[Context], Awaitable[Any]]:
        """Run the function for any message no earlier handler took (a catch-all: nothing may come after it)."""
        return self.router.fallback(fn)

    def on_csat(self, fn: Callable[[Context], Awaitable[Any]]) -> Callable[[Context], Awaitable[Any]]:
        """Run the function when the contact rates the conversation in Chatwoot's CSAT survey (see Router.on_csat)."""
        return self.router.on_csat(fn)

    def on_template(self, fn: Callable[[Context], Awaitable[Any]]) -> Callable[[Context], Awaitable[Any]]:
        """Run the function for Chatwoot's own template messages and answers to them (see Router.on_template)."""
        return self.router.on_template(fn)

    def on_delivery_failed(self, fn: Callable[[Context], Awaitable[Any]]) -> Callable[[Context], Awaitable[Any]]:
        """Run the function when the channel refused one of the bot's messages (`ctx.failure`: message_id,
        error, window_closed). It runs before botkit's own answer (a rich message sent again as numbered
        text; `when_cannot_reply` for a closed window), whatever it returns."""
        self.delivery_hooks.append(fn)
        return fn

    def use(self, middleware: Middleware) -> Middleware:
        """Add a middleware: `async def mw(ctx, call_next) -> bool`. Usable as a decorator."""
        self.middleware.append(middleware)
        return middleware

    # lifecycle ----------------------------------------------------------------------------------------
    def bind(self, runtime: Runtime) -> None:
        """Called by the server once, before `startup`: the settings, the store, the Chatwoot actions, the metrics."""
        self.runtime = runtime
        self.turns = turn.Turns(runtime.store)
        settings = runtime.settings
        self.bot_id, self.look_after = settings.chatwoot_bot_id, settings.botkit_look_after
        self.teams.add_defaults(settings.teams)
        self.teams.dry_run = runtime.chatwoot.dry_run
        if self.language is None:
            self.default_language = settings.botkit_language
        self.media = Media.from_settings(settings)
        self.agents = Agents.from_settings(settings, **self._agent_options)
        self.agents.openings.bind(runtime.store, runtime.name)
        self.menu_ttl = float(settings.botkit_menu_ttl)
        merging = self.merge_bursts
        if merging is None:
            merging = any(getattr(h, "merges_bursts", False) for h in self._leaves())
        if merging and settings.botkit_burst_window > 0:
            self.bursts = BurstPolicy(settings.botkit_burst_window, settings.botkit_burst_max_wait)

    async def startup(self) -> None:
        """Check the chain's order (ConfigError: a handler after a catch-all), then start every handler."""
        check_order(self.name, self._leaves())
        for handler in self.chain:
            await handler.startup(self)
        if self.runtime is not None:
            self.agents.choose_summarizer(self.runtime.settings, self._leaves())
        self.agents.openings.start()

    async def shutdown(self) -> None:
        await self.agents.close()
        for handler in self.chain:
            with contextlib.suppress(Exception):
                await handler.shutdown()
        await self.media.aclose()

    def _leaves(self) -> list[Handler]:
        return [leaf for handler in self.chain for leaf in handler.leaves()]

    @property
    def dry_run(self) -> bool:
        return self.teams.dry_run

    def team_id(self, team: str | int) -> int | str:
        """The team's Chatwoot id (botkit.teams.Teams.id_of)."""
        return self.teams.id_of(team)

    def check_teams(self, names: Iterable[str]) -> None:
        """Stop start-up when a team the bot assigns by name has no id (a dry run prints names and needs none)."""
        self.teams.check(names)

    # the gate -----------------------------------------------------------------------------------------
    def _bots_turn(self, conversation: events.Conversation | None) -> bool:
        """The conversation is the bot's (botkit.turn), or the bot does not care (pending_only off)."""
        return not self.policies.pending_only or turn.is_the_bots(conversation, self.bot_id)

    def admits(self, event: events.Event, *, suggesting: bool = False) -> bool:
        """Is this event the bot's business? (Policies; logged at debug when not.) In suggest mode the bot
        suggests in any conversation that is not resolved, whoever holds it."""
        conversation = event.conversation
        if isinstance(event, events.MessageEvent):
            if event.name == "message_created" and self.policies.incoming_only:
                sender = event.sender
                if (event.message.message_type != events.MessageType.incoming or event.message.private
                        or (sender is not None and sender.kind != "contact")):
                    return False
            if event.name == "message_updated" and self.policies.answers_only:
                message = event.message
                if not (message.submitted_values or message.submitted_email):
                    return False
            if suggesting and conversation is not None:
                return conversation.status != "resolved"
            if self.policies.pending_only and not turn.is_the_bots(conversation, self.bot_id):
                return False
        return True

    # running ------------------------------------------------------------------------------------------
    async def handle(self, event: events.Event, job: Job) -> Finish:
        """Run the event through the policies and the handlers, recording its timeline (botkit/timeline.py).

        Returns what the worker saves with the event's done (`botkit.store.Finish`): the conversation's state
        when the turn changed it, and the delivery's timeline and outcomes. A turn that raises saves its
        timeline itself before the exception goes on (the event is retried or dead-lettered, not done)."""
        timeline = outcomes.timeline_for(self, event, job)
        token = timeline.bind()
        try:
            state = await self._handle(event, job, timeline)
        except BaseException as exc:
            timeline.error = type(exc).__name__
            Timeline.unbind(token)
            await outcomes.save(self.runtime, timeline, event)
            raise
        Timeline.unbind(token)
        records, keep = outcomes.records_of(self.runtime, timeline, event)
        return Finish(state=state, records=records, keep=keep)

    async def _handle(self, event: events.Event, job: Job, timeline: Timeline) -> dict[str, Any] | None:
        """The turn; returns the lane's state to save with the event's done, or None when it did not change."""
        runtime = self._bound()
        store = runtime.store
        if event.name == "conversation_resolved":
            await store.clear_state(job.lane)  # a resolved conversation starts afresh
        elif (self.bursts is not None and event.name == "conversation_status_changed"
              and event.conversation is not None and event.conversation.status != "pending"):
            await drop_burst(store, job.lane)  # humans have it now
        if event.name == INDEX_EVENT:  # the index of hand-offs waiting for opening time (botkit/openings.py)
            await self.agents.openings.update_index(event.raw)
            return None
        if is_due_event(event):
            event = due_event(event)
        template = template_of(event)  # Chatwoot's own message, or the contact's answer to one
        failure = failure_of(event) if template is None else None  # the channel refused a bot's message
        own = template is not None or failure is not None
        command = None if own else self.agents.command_in(event)  # an agent's note: runs whoever holds it
        held = waiting = False  # waiting: a turn on the contact's message that waited for the conversation
        if (command is None and not own and not is_due_event(event) and self.policies.yield_to_humans
                and self.turns is not None):
            taken = await self._whose_turn(event, job)
            held, waiting = taken is None, taken is not None and taken is not event
            event = taken or event
        if template is not None:  # only for handlers that asked for them
            admitted = any(getattr(h, "templates", False) and event.name in h.events for h in self._leaves())
            maybe_suggest = watch = False
        else:
            admitted = (failure is not None or command is not None or is_due_event(event)
                        or (not held and self.admits(event)))
            maybe_suggest = not admitted and self.admits(event, suggesting=True)  # the conversation's mode decides
            watch = self.agents.hours is not None and event.name in ("conversation_opened",
                                                                     "conversation_status_changed")
        if not (admitted or maybe_suggest or watch):  # watch: an agent may take a conversation waiting for opening
            log.debug("not the bot's business: %s", event.name, extra={"delivery_id": job.delivery_id})
            timeline.add("policy", "humans have this conversation: the bot stays silent" if held
                         else "not the bot's business")
            return None
        timeline.add("policy", "an agent's command" if command is not None else "admitted" if admitted
                     else "suggesting to the agents" if maybe_suggest else "watching for opening time")
        state = await store.get_state(job.lane)
        memory = Memory.take(state, now=time.time(), ttl=self.menu_ttl)
        before = _fingerprint([state, memory.dump()])  # handlers may change nested values in place
        journal = await Journal.open(store, job.key)
        ctx = self._context(event, job, runtime, state, journal, timeline)
        ctx.suggesting = self.agents.mode_of(event, state) == "suggest"
        ctx.memory, ctx.template, ctx.failure = memory, template, failure
        if failure is not None:
            await self._delivery_failed(ctx, failure)
        elif template is not None:
            await self._run(ctx, templates=True)
        elif command is not None:
            await self.agents.run_command(ctx, command)
        elif is_due_event(event):
            await self.agents.opening_due(ctx)
        elif self.agents.stop_waiting(event, state):
            pass  # an agent took the conversation before opening time
        elif admitted or (ctx.suggesting and not await self.agents.paused(ctx)):
            if self.policies.look_before_acting and self.looks.on and not ctx.suggesting:
                stale = waiting or job.attempts > 0 or REPLAYED in journal.recorded
                waited = not stale and time.time() - job.enqueued_at > self.look_after
                # an inbox bot hears of every change as a delivery: the queue behind the event tells (botkit/turn.py)
                told = waited and turn.assigned_bot(event.conversation) is None
                ctx.lookout = turn.Lookout(
                    runtime.chatwoot, ctx.account_id, ctx.conversation_id, bot_id=self.bot_id,
                    stale=stale or waited, look_after=self.look_after, after_message=turn.message_id(event),
                    switch=self.looks, waiting=waiting, queued=(lambda: store.queued_after(job)) if told else None)
            if self._take_answer(ctx, memory):
                await self._run(ctx)
        if ctx.burst == "stale":
            return None  # the state as saved: the burst stays for the newer message, which answers it
        changed = _fingerprint([ctx.state, memory.dump()]) != before or ctx.burst == "answering"
        if waiting and ctx.dropped is None and self.turns is not None:
            # its message_created, if it comes later, is not answered again
            await self.turns.answered(job.lane, turn.message_id(event) or 0)
        if event.name != "conversation_resolved" and changed:
            return {**ctx.state, KEY: memory.dump()}  # saved with the event's done
        return None

    async def _run(self, ctx: Context, *, templates: bool = False) -> None:
        """The handler chain for one admitted event, with typing shown while it runs (`templates`: only the
        handlers that asked for Chatwoot's template messages)."""
        handlers = [h for h in self._leaves() if ctx.event.name in h.events
                    and (not templates or getattr(h, "templates", False))]
        if not handlers:
            return
        await self._transcribe(ctx)
        if self.bursts is not None and is_contact_message(ctx.event, self.admits):
            assert ctx.message is not None
            store = self.runtime.store
            memory = ctx.memory
            burst = await gather(self.bursts, store, ctx.job, self.admits, ctx.state, ctx.message, ctx.text,
                                 save=lambda state: store.set_state(
                                     ctx.job.lane, {**state, KEY: memory.dump()} if memory is not None else state))
            if burst is None:
                ctx.burst = "absorbed"  # a newer message of the contact answers this one with it
                return
            ctx.state.pop(STATE_KEY, None)  # answered now: dropped from the state saved after the turn
            ctx.burst = "answering"
            ctx.merged_text, ctx.merged_attachments = burst.text, burst.attachments
            ctx.newer_message = lambda: newer_contact_message(store, ctx.job, self.admits)
        if ctx.event.name in MESSAGES:
            self.agents.before_handlers(ctx)
        typing = self._typing_later(ctx) if ctx.event.name in MESSAGES and not ctx.suggesting else None
        try:
            await self._chain(ctx, handlers)
            await self.agents.after_handlers(ctx)
        except Stale:
            log.info("the contact wrote again before the answer went out; it is dropped and the messages are "
                     "answered with the newer one", extra={"delivery_id": ctx.job.delivery_id, "lane": ctx.job.lane})
            ctx.burst = "stale"
        finally:
            if typing is not None:
                typing()  # cancel the typing not shown yet
            await ctx.typing(False)  # a no-op unless this event showed typing

    async def _whose_turn(self, event: events.Event, job: Job) -> events.Event | None:
        """Keep the conversation's turn record (botkit.turn) and decide what this event is for the bot: itself,
        the contact's message waiting in a conversation that just became the bot's, or None (stay silent)."""
        assert self.turns is not None
        extra = {"delivery_id": job.delivery_id}
        human = turn.human_message(event)
        if human is not None:
            await self.turns.hold_for_humans(job.lane, human)
            return None
        back = turn.given_back(event, self.bot_id)
        if back is not None:
            record = await self.turns.give_back(job.lane, back)
            waiting = turn.waiting_message(event)
            if waiting is not None and waiting.message.id is not None:
                if job.attempts == 0 and (record.has_answered(waiting.message.id)
                                          or record.newer_answered(waiting.message.id)):
                    log.info("the contact's last message was answered already", extra=extra)
                    return event
                log.info("answering the contact's message that waited for the bot (%s)", back, extra=extra)
                return waiting
            return event
        if not self.admits(event):
            return event  # dropped by the policies anyway: no need to read the record
        record = await self.turns.get(job.lane)
        if record.held_by_humans:
            level = logging.INFO if event.name in MESSAGES else logging.DEBUG
            log.log(level, "humans hold this conversation (%s); the bot stays silent", record.reason, extra=extra)
            return None
        answering = turn.message_id(event)
        if answering is not None and record.has_answered(answering):
            log.info("message %d was answered already; not answering it twice", answering, extra=extra)
            return None
        return event


    def _bound(self) -> Runtime:
        if self.runtime is None:
            raise RuntimeError(f"bot {self.name!r} was not bound to a runtime (the server calls bind())")
        return self.runtime

    def _context(self, event: events.Event, job: Job, runtime: Runtime, state: dict[str, Any],
                 journal: Journal, timeline: Timeline) -> Context:
        return Context(event, job, chatwoot=runtime.chatwoot, journal=journal, teams=self.teams, state=state,
                       metrics=runtime.metrics, when_cannot_reply=self.when_cannot_reply, catalogue=self.catalogue,
                       language=self.language, default_language=self.default_language, media=self.media,
                       turns=self.turns if self.policies.yield_to_humans else None, agents=self.agents,
                       timeline=timeline)

    def _take_answer(self, ctx: Context, memory: Memory) -> bool:
        """Match the contact's message to a menu the bot sent (`ctx.answer`); False when it answers a menu
        that was answered already (the handlers must not see it twice)."""
        event, message = ctx.event, ctx.message
        if message is None:
            return True
        if event.name == "message_updated":
            ctx.answer = memory.submitted(message.id, message.submitted_values)
            if ctx.answer is None:
                log.info("the contact answered message %s again; it was answered already", message.id,
                         extra=ctx._log_extra())
                return False
            return True
        if message.message_type == events.MessageType.incoming:
            memory.window_closed = False  # the contact wrote: the channel's window is open again
            ctx.answer = memory.typed(message.content or "", message.content_attributes.get("in_reply_to"))
        return True

    async def _delivery_failed(self, ctx: Context, failure: DeliveryFailure) -> None:
        """The channel refused one of the bot's messages: a warning, a metric, the bot's hooks, then botkit's
        own answer while the conversation is the bot's: outside the messaging window `when_cannot_reply`;
        a rich message it refused, once more as numbered text."""
        where = channels.channel(ctx.channel)
        log.warning("%s refused message %s: %s", where.title, failure.message_id, failure.error,
                    extra=ctx._log_extra())
        ctx.metrics.delivery_failed(where.key, "window" if failure.window_closed else "refused")
        for hook in self.delivery_hooks:
            with ctx.metrics.handling(getattr(hook, "__name__", "on_delivery_failed")):
                await hook(ctx)
        if not self._bots_turn(ctx.event.conversation):
            return
        if failure.window_closed:
            ctx.memory.window_closed = True  # type: ignore[union-attr]
            await ctx.cannot_reply()
            return
        record = ctx.memory.find(failure.message_id) if ctx.memory is not None else None
        if not self.resend_failed_as_text or record is None or record.get("resent") or not record.get("numbered"):
            return
        if record.get("form") in ("numbered", "text"):
            return  # it was text already: sending it again would fail again
        record["resent"], record["answered"] = True, True
        text = {"content": record["numbered"], "content_type": "text", "content_attributes": None}
        await ctx.send(channels.Rendered(text, "numbered" if record.get("options") else "text",
                                         list(record.get("options") or []), numbered=record["numbered"]))

    async def _transcribe(self, ctx: Context) -> None:
        """Voice notes become text (`ctx.text`) before any handler runs; once per event, so a retry reuses it."""
        message = ctx.message
        if not self.media.transcribes or message is None or ctx.event.name != "message_created":
            return
        voices = [a for a in message.attachments if a.file_type == "audio"]
        if voices:
            async def transcribe() -> list[str]:
                return [text for a in voices if (text := await self.media.transcribe(a))]

            ctx.transcripts = await ctx.once("transcribe", transcribe)

    def _typing_later(self, ctx: Context) -> Callable[[], None] | None:
        """Show typing once a handler has run for `typing_after` seconds; returns what cancels it. A timer,
        not a sleeping task: most turns end before it fires, and a task per message cost the worker CPU."""
        if self.typing_after is None or ctx.conversation_id == 0:
            return None
        shown: list[asyncio.Task[None]] = []
        timer = asyncio.get_running_loop().call_later(
            self.typing_after, lambda: shown.append(asyncio.create_task(ctx.typing(True))))

        def cancel() -> None:
            timer.cancel()
            for task in shown:
                task.cancel()

        return cancel

    async def _chain(self, ctx: Context, handlers: list[Handler]) -> bool:
        observed = self._bound().metrics

        async def run_handlers(ctx: Context) -> bool:
            for handler in handlers:
                started = time.perf_counter()
                try:
                    with observed.handling(handler.label):  # times, counts errors, names it in logs
                        handled = await handler.handle(ctx)
                except Exception:
                    if ctx.timeline is not None:  # it took the event and failed: its outcome is its own
                        ctx.timeline.handler = handler.label
                        ctx.timeline.add("handler", handler.label, (time.perf_counter() - started) * 1000,
                                         failed=True)
                    raise
                ms = (time.perf_counter() - started) * 1000
                log.debug("%s %s in %.1f ms", handler.label, "passed" if passes(handled) else "handled the event", ms,
                          extra={"delivery_id": ctx.job.delivery_id, "handler": handler.label})
                if ctx.timeline is not None:
                    ctx.timeline.add("handler", handler.label, ms, handled=not passes(handled))
                if not passes(handled):
                    if ctx.timeline is not None:
                        ctx.timeline.handler = handler.label
                    return True
            return False

        call: Next = run_handlers
        for middleware in reversed(self.middleware):
            call = _bind(middleware, call)
        return await call(ctx)

    async def on_dead_letter(self, event: events.Event, job: Job, error: BaseException) -> None:
        """The event failed for good: hand a pending conversation to humans, with a note saying why."""
        runtime = self._bound()
        await runtime.store.record(job.key, REPLAYED, True)  # a replay of it looks before acting
        conversation = event.conversation
        if not self.handoff_on_failure or conversation is None or conversation.id is None:
            return
        if not isinstance(event, events.MessageEvent) or not self.admits(event):
            return
        if self.turns is not None and self.policies.yield_to_humans \
                and (await self.turns.get(job.lane)).held_by_humans:
            return  # humans hold it already
        store = runtime.store
        state = await store.get_state(job.lane)  # the transcript so far, for the summary
        # the fallback's own steps start at 1000, apart from the failed attempt's
        timeline = outcomes.timeline_for(self, event, job)
        timeline.handler = "(dead letter)"
        timeline.add("policy", "dead letter: hand-off to humans")
        ctx = self._context(event, job, runtime, state, await Journal.open(store, job.key, first_step=1000), timeline)
        self.agents.before_handlers(ctx)  # the failed message, which its own attempts never saved
        try:
            await ctx.handoff(note=ctx.t_agents(i18n.N_("The bot could not handle this conversation ({error}); "
                                                       "it is yours now."), error=type(error).__name__),
                              reason="dead_letter")
        finally:
            await outcomes.save(runtime, timeline, event)
        await store.set_state(job.lane, ctx.state)


def _fingerprint(value: Any) -> bytes:
    """The JSON of a state, keys sorted, to tell whether a turn changed it (orjson: a tenth of json.dumps'
    time on a conversation's transcript); json's for what orjson refuses (an integer over 64 bits)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(value, sort_keys=True).encode()


def _language_setting(language: str | None, where: str) -> str | None:
    if language is None:
        return None
    normalized = i18n.normalize(language)
    if normalized is None:
        raise ConfigError(f"{where} must be a language such as en, pt_BR, es, fr or de (it is {language!r}).")
    return normalized


def _bind(middleware: Middleware, call_next: Next) -> Next:
    async def call(ctx: Context) -> bool:
        return await middleware(ctx, call_next)

    return call
