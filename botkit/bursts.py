"""Burst merging: a contact's messages written within a short window are answered as one turn.

On WhatsApp people write "hi" / "my order" / "it hasn't arrived" in three messages; answering each costs three
model calls and three replies that talk over the contact. With merging on, each contact message adds its text
to the conversation's *burst* (kept in the conversation's state in the store, so it is as durable as the queue)
and then waits, without answering, until one of:

- a newer contact message is queued in the same lane (`Store.queued_after`): this event ends here, answered
  by that one, which carries the burst on;
- the window has passed since this message arrived with nothing newer: the bot answers the whole burst once,
  the texts joined in order (`ctx.text`);
- `max_wait` has passed since the burst's first message: it answers, however the contact keeps writing.

Nothing new is needed from the ack path or the worker: the store already runs one event per lane at a time in
arrival order, on every worker (Redis included), so the waiting event is the only one of its conversation in
flight, and the newer ones queue behind it where it can see them. After a crash (SIGKILL) inside the window the
event in flight runs again: its text is in the burst already (kept once, by message id), its window is over,
and it answers the burst once; the journal keeps a retry from asking the model or replying twice.

A burst whose answer never came (its last event failed for good and the conversation went to a human) is
dropped when the conversation leaves the bot (a status change away from pending), so a later turn does not
answer messages a human has dealt with since.

A reply the contact made stale (they wrote again while the model was answering) is not sent: `ctx.reply`
raises `Stale`, the turn's state changes are dropped, and the burst, kept, is answered with the newer message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botkit import events

if TYPE_CHECKING:
    from botkit.store.base import Job, Store

Admits = Callable[[events.Event], bool]  # the bot's policies: is this event the bot's business?

log = logging.getLogger("botkit.bursts")

STATE_KEY = "burst"  # the conversation's state: [{"id": message id, "text", "at": unix time, "attachments"}, ...]
POLL = 0.05  # seconds between looks at the lane while waiting


class Stale(Exception):
    """A newer contact message arrived before the reply was sent: the turn is answered with it instead."""

    handler_error = False  # not counted in botkit_handler_errors_total


@dataclass(frozen=True)
class BurstPolicy:
    window: float = 2.0  # seconds of quiet after a message that end a burst
    max_wait: float = 8.0  # seconds from a burst's first message after which it is answered anyway


def is_contact_message(event: events.Event, admits: Admits) -> bool:
    """A public message the contact wrote that the bot would answer (message_created, admitted)."""
    return (isinstance(event, events.MessageEvent) and event.name == "message_created"
            and event.message.message_type == events.MessageType.incoming and not event.message.private
            and (event.sender is None or event.sender.kind == "contact") and admits(event))


async def newer_contact_message(store: Store, job: Job, admits: Admits) -> bool:
    """Is a contact message the bot would answer queued after `job` in its lane?"""
    for name, body in await store.queued_after(job) or []:  # None: the store cannot tell
        if name != "message_created":
            continue
        try:
            event = events.parse_json(body)
        except events.MalformedEvent:
            continue
        if is_contact_message(event, admits):
            return True
    return False


async def drop(store: Store, lane: str) -> None:
    """Forget a conversation's unanswered burst (it left the bot's hands)."""
    state = await store.get_state(lane)
    if state.pop(STATE_KEY, None) is not None:
        await store.set_state(lane, state)


@dataclass(frozen=True)
class Turn:
    """What a burst says, to answer as one turn: its texts joined in order, and every attachment."""

    text: str
    attachments: list[events.Attachment]
    messages: int


async def gather(policy: BurstPolicy, store: Store, job: Job, admits: Admits, state: dict[str, Any],
                 message: events.Message, text: str, *,
                 save: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
                 clock: Any = time.time) -> Turn | None:
    """Add this message to the burst, wait out the window; the burst to answer now, or None when a newer
    contact message will answer it. The burst is saved before waiting; the caller drops it from the state
    (`state.pop(STATE_KEY)`) when the turn is answered. `save` stores the state (the store's set_state
    by default; the Bot adds its own memory to it)."""
    burst: list[dict[str, Any]] = list(state.get(STATE_KEY) or [])
    if all(part.get("id") != message.id for part in burst):
        burst.append({"id": message.id, "text": text, "at": job.enqueued_at,
                      "attachments": [a.model_dump() for a in message.attachments]})
        state[STATE_KEY] = burst
        await (save(state) if save is not None else store.set_state(job.lane, state))
    first = min(part["at"] for part in burst)
    deadline = min(job.enqueued_at + policy.window, first + policy.max_wait)
    while True:
        if await newer_contact_message(store, job, admits):
            log.debug("the contact wrote again within the window; answered with the next message",
                      extra={"delivery_id": job.delivery_id, "lane": job.lane})
            return None
        left = deadline - clock()
        if left <= 0:
            break
        await asyncio.sleep(min(POLL, left))
    if len(burst) > 1:
        log.info("answering %d messages as one turn", len(burst), extra={"delivery_id": job.delivery_id,
                                                                         "lane": job.lane})
    return Turn("\n".join(part["text"] for part in burst if part.get("text")),
                [events.Attachment.model_validate(a) for part in burst for a in part.get("attachments") or []],
                len(burst))
