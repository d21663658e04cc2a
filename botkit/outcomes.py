"""Outcomes: what each delivery's turn came to, kept in the bot's own store for `botkit report` and the console.

When the bot is done with a delivery (botkit/bot.py), its event's done writes (`botkit.store.Finish`), or `save`
writes when the turn failed, in one store write, the delivery's
timeline (a `delivery` record, the newest BOTKIT_TIMELINE_KEEP kept) and the facts it yields (`outcome`
records, kept BOTKIT_OUTCOMES_KEEP_DAYS: `Retention` prunes older ones). Each fact is a dict with `type`,
`bot`, `lane` (the conversation, as `<bot>/<account>:<conversation>`), `inbox` and `handler`:

| type | when |
|---|---|
| taken | a handler took the event (handled it, or failed at it), or the dead-letter fallback handed off |
| reply | the bot's first reply of the delivery reached Chatwoot; `seconds` from the receiver's ack of the delivery |
| handoff | the bot handed the conversation to humans; `reason` (handler, dead_letter, reply_window, ...) |
| resolved | the bot resolved the conversation |
| contact_message | the contact wrote (a public incoming message), whoever then handled it |
| reopened | the conversation left `resolved` (conversation_status_changed / _updated), e.g. an agent reopened it |
| model | a model call: `model`, `tokens_in`, `tokens_out` |
| kb_gap | the knowledge base had no answer to the contact's question |

A retried delivery's actions already journaled are skipped, not done again, so they yield no second fact;
actions dropped because the conversation was no longer the bot's (botkit/turn.py) yield none.
How the report turns facts into figures is botkit/figures.py and docs/outcomes.md. A failure to save is
logged and never fails the event: the outcomes are a record of the work, not part of it.

Retention runs beside the worker, never on an event's path: at start-up and then hourly it deletes the facts
older than BOTKIT_OUTCOMES_KEEP_DAYS (90 by default; 0 keeps them forever), PRUNE_BATCH at a time, each batch
its own short store write through the (kind, time) index, so a year of backlog never holds the store for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from botkit import events
from botkit.figures import DAY
from botkit.store.base import Job, Record, bot_of
from botkit.timeline import Timeline

log = logging.getLogger("botkit.outcomes")

DEFAULT_TIMELINE_KEEP = 1000
PRUNE_EVERY = 3600.0  # seconds between prunings of old outcome facts
PRUNE_BATCH = 1000  # facts deleted per store write


def timeline_for(bot: Any, event: events.Event, job: Job) -> Timeline:
    """A fresh timeline for `bot` handling `event` (the contact's words only with BOTKIT_CONSOLE_CONTENTS)."""
    conversation = event.conversation
    inbox = event.inbox.id if event.inbox is not None else None
    if inbox is None and conversation is not None:
        inbox = conversation.inbox_id
    settings = getattr(getattr(bot, "runtime", None), "settings", None)
    text = None
    if getattr(settings, "botkit_console_contents", False) and isinstance(event, events.MessageEvent):
        text = event.message.content
        if event.name == "message_updated" and event.message.submitted_values:
            text = ", ".join(str(v.get("title") or v.get("value")) for v in event.message.submitted_values)
    return Timeline(bot=bot_of(job.lane), key=job.key, lane=job.lane, event=event.name,
                    received_at=job.enqueued_at, delivery_id=job.delivery_id,
                    conversation_id=event.conversation_id, inbox_id=inbox, attempt=job.attempts + 1, text=text)


def facts(timeline: Timeline, event: events.Event) -> list[dict[str, Any]]:
    """The outcome facts one delivery yields (see the module docstring)."""
    base = {"bot": timeline.bot, "lane": timeline.lane, "inbox": timeline.inbox_id, "handler": timeline.handler}
    found: list[dict[str, Any]] = []
    if _contact_wrote(event):
        found.append({"type": "contact_message"})
    if _left_resolved(event):
        found.append({"type": "reopened"})
    if timeline.handler is not None:
        found.append({"type": "taken"})
    replied = False
    for step in timeline.steps:
        if step.kind == "action" and not step.detail.get("skipped") and not step.detail.get("dropped"):
            if step.name == "reply" and not replied:
                replied = True
                found.append({"type": "reply", "seconds": round(timeline.seconds_since_received(step), 3)})
            elif step.name == "handoff":
                found.append({"type": "handoff", "reason": step.detail.get("reason", "handler")})
            elif step.name == "resolve":
                found.append({"type": "resolved"})
        elif step.kind == "model":
            found.append({"type": "model", "model": step.name, "tokens_in": step.detail.get("tokens_in", 0),
                          "tokens_out": step.detail.get("tokens_out", 0)})
        elif step.kind == "kb" and step.detail.get("answered") is False:
            found.append({"type": "kb_gap"})
    return [{**base, **fact} for fact in found]


def _contact_wrote(event: events.Event) -> bool:
    if not isinstance(event, events.MessageEvent) or event.name != "message_created":
        return False
    message = event.message
    sender = event.sender
    return (message.message_type == events.MessageType.incoming and not message.private
            and (sender is None or sender.kind == "contact"))


def _left_resolved(event: events.Event) -> bool:
    if not isinstance(event, events.ConversationEvent):
        return False
    change = event.changed("status")
    return change is not None and change[0] == "resolved" and change[1] != "resolved"


def records_of(runtime: Any, timeline: Timeline, event: events.Event) -> tuple[list[Record], dict[str, int] | None]:
    """The delivery's records (its facts, then its timeline unless BOTKIT_TIMELINE_KEEP is 0) and the `keep`
    that bounds the timelines: what `save` writes, or what the worker saves with the event's done
    (`botkit.store.Finish`)."""
    settings = getattr(runtime, "settings", None)
    keep = getattr(settings, "botkit_timeline_keep", DEFAULT_TIMELINE_KEEP)
    now = time.time()
    records = [Record("outcome", now, fact) for fact in facts(timeline, event)]
    if keep > 0:
        records.append(Record("delivery", now, timeline.to_json()))
    return records, ({"delivery": keep} if keep > 0 else None)


async def save(runtime: Any, timeline: Timeline, event: events.Event) -> None:
    """Write the delivery's timeline and its facts in one store write; a failure is logged, never raised."""
    store = getattr(runtime, "store", None)
    if store is None:
        return
    records, keep = records_of(runtime, timeline, event)
    if not records:
        return
    try:
        await store.add_records(records, keep=keep)
    except Exception as exc:  # the outcomes record the work; they must never fail it
        log.warning("could not save the delivery's timeline and outcomes: %s", type(exc).__name__,
                    extra={"delivery_id": timeline.delivery_id})


async def prune(store: Any, keep_days: float, *, now: float | None = None, batch: int = PRUNE_BATCH) -> int:
    """Delete the outcome facts older than `keep_days` days, `batch` per store write, yielding to the loop
    between writes; returns how many went. Raises what the store raises (StoreUnavailable)."""
    before = (time.time() if now is None else now) - keep_days * DAY
    total = 0
    while True:
        gone = await store.prune_records("outcome", before, at_most=batch)
        total += gone
        if gone < batch:
            return total
        await asyncio.sleep(0)


class Retention:
    """Prunes old outcome facts (`prune`) in a background task: at `start`, then every `every` seconds, until
    `stop`. Off when `keep_days` is 0. A failed pruning is logged and tried again at the next round."""

    def __init__(self, store: Any, keep_days: float, *, every: float = PRUNE_EVERY) -> None:
        self.store = store
        self.keep_days = keep_days
        self.every = every
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        if self.keep_days > 0 and self._task is None:
            self._task = asyncio.create_task(self._run(), name="botkit-outcomes-retention")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                gone = await prune(self.store, self.keep_days)
            except Exception as exc:  # the store may be down for a while; the worker says so on its own
                log.warning("could not prune old outcomes: %s", type(exc).__name__)
            else:
                if gone:
                    log.info("pruned %d outcome facts older than %g days", gone, self.keep_days)
            await asyncio.sleep(self.every)
