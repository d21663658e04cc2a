"""Hand-offs held until opening time, durably: they survive a restart and run once.

Outside business hours (BOTKIT_OUTSIDE_HOURS=wait) a hand-off tells the contact when people are back and
leaves the conversation pending; at opening time the conversation is handed over (summary note, team, open).
Three kinds of queued event carry that, so the store's promises (durable, deduped, one lane at a time) keep it:

- `botkit_openings` in the bot's index lane `<bot>/botkit:openings`: add or remove one waiting conversation.
  Only jobs of that lane write the index, and a lane runs one job at a time across every worker process,
  so two conversations deferring at once never lose each other's entry.
- `botkit_opening` in the conversation's own lane, enqueued by the sweep when the time has come: the
  hand-off itself, in order with the conversation's other events, journaled like any event.
- The sweep (every `interval` seconds, on the bot's clock) reads the index and enqueues the due ones. Its
  dedupe keys name the conversation and the time, so several processes sweeping enqueue each hand-off once.

A conversation an agent opens or resolves in the meantime is no longer waiting (Bot.handle drops the entry
from its state); the due event then finds nothing to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import UTC, datetime
from typing import Any

from botkit.hours import Clock, utc_now
from botkit.store.base import StoreUnavailable

log = logging.getLogger("botkit.openings")

INDEX_LANE = "botkit:openings"
INDEX_EVENT = "botkit_openings"
DUE_EVENT = "botkit_opening"
LANE_SEPARATOR = "/"  # as botkit.worker.lane_for writes lanes: <bot>/<account>:<conversation>


class Openings:
    """The waiting hand-offs of one bot. `bind(store, endpoint)` once the server knows both."""

    def __init__(self, clock: Clock = utc_now, interval: float = 30.0) -> None:
        self.clock = clock
        self.interval = interval
        self.store: Any = None
        self.endpoint = "default"
        self._task: asyncio.Task[None] | None = None

    def bind(self, store: Any, endpoint: str) -> None:
        self.store = store
        self.endpoint = endpoint

    @property
    def index_lane(self) -> str:
        return f"{self.endpoint}{LANE_SEPARATOR}{INDEX_LANE}"

    async def _enqueue(self, key: str, lane: str, body: dict[str, Any]) -> bool:
        return await self.store.enqueue(keys=[key], lane=lane, event=body["event"],
                                        body=json.dumps(body).encode(), delivery_id=None)

    async def wait(self, lane: str, account_id: int, conversation_id: int, due: datetime) -> None:
        """Add a conversation (its store lane) to the index, to be handed over at `due`."""
        stamp = int(due.timestamp())
        await self._enqueue(f"openings:add:{lane}:{stamp}", self.index_lane, {
            "event": INDEX_EVENT, "op": "add", "lane": lane, "due": stamp,
            "account": {"id": account_id}, "conversation_id": conversation_id})

    async def update_index(self, raw: dict[str, Any]) -> None:
        """Run an index job (only ever in the index lane)."""
        state = await self.store.get_state(self.index_lane)
        waiting = dict(state.get("waiting") or {})
        lane, due = str(raw.get("lane")), int(raw.get("due") or 0)
        if raw.get("op") == "add":
            waiting[lane] = {"due": due, "account_id": (raw.get("account") or {}).get("id"),
                             "conversation_id": raw.get("conversation_id")}
        elif waiting.get(lane, {}).get("due") == due:
            waiting.pop(lane)
        await self.store.set_state(self.index_lane, {"waiting": waiting})

    async def sweep(self) -> int:
        """Enqueue the hand-offs whose time has come; returns how many were due."""
        now = self.clock().astimezone(UTC).timestamp()
        state = await self.store.get_state(self.index_lane)
        due = [(lane, entry) for lane, entry in (state.get("waiting") or {}).items() if entry["due"] <= now]
        for lane, entry in due:
            account = {"id": entry["account_id"]}
            conversation = {"id": entry["conversation_id"], "account_id": entry["account_id"], "status": "pending"}
            await self._enqueue(f"opening:{lane}:{entry['due']}", lane, {
                "event": DUE_EVENT, "due": entry["due"], "account": account, "conversation": conversation})
            await self._enqueue(f"openings:remove:{lane}:{entry['due']}", self.index_lane, {
                "event": INDEX_EVENT, "op": "remove", "lane": lane, "due": entry["due"]})
        if due:
            log.info("opening time: %d waiting conversations handed over", len(due))
        return len(due)

    # the sweep's own loop -----------------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None and self.store is not None:
            self._task = asyncio.create_task(self._run(), name="botkit-openings")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.sweep()
            except StoreUnavailable as exc:  # the next sweep tries again; nothing is lost meanwhile
                log.warning("could not sweep the waiting hand-offs (%s)", exc)
            except Exception:
                log.exception("the sweep of waiting hand-offs failed")
