"""The journal of one event: which of its actions already succeeded, so a retried event skips them.

The n-th action (or `ctx.once` decision) of an event is step n. A step is recorded in the store under the
event's key once it succeeds; when the event runs again (a retry after a later action failed, a restart
after a crash, a replayed dead letter) the recorded steps return what they returned the first time instead
of acting again. That is only right if a retried event takes its actions in the same order: handlers must
not branch on anything but the event, the conversation's state and `ctx.once` results (docs/guide.md).
"""

from __future__ import annotations

from typing import Any, Protocol


class JournalStore(Protocol):
    """The two store calls a journal needs (botkit.store.Store has them)."""

    async def journal(self, key: str) -> dict[int, Any]: ...

    async def record(self, key: str, step: int, result: Any) -> None: ...


class Journal:
    """Steps of one event (`key`), counted from `first_step`; `recorded` is what earlier attempts kept."""

    def __init__(self, store: JournalStore, key: str, recorded: dict[int, Any] | None = None, *,
                 first_step: int = 0) -> None:
        self.store = store
        self.key = key
        self.recorded = recorded if recorded is not None else {}
        self.step = first_step  # the next step's number

    @classmethod
    async def open(cls, store: JournalStore, key: str, *, first_step: int = 0) -> Journal:
        """The event's journal as the store has it."""
        return cls(store, key, await store.journal(key), first_step=first_step)

    @property
    def next_is_recorded(self) -> bool:
        """Did an earlier attempt already take the next step?"""
        return self.step in self.recorded

    def take(self) -> tuple[int, bool, Any]:
        """Claim the next step: (its number, whether it is recorded, the recorded result or None)."""
        step = self.step
        self.step += 1
        return step, step in self.recorded, self.recorded.get(step)

    async def record(self, step: int, result: Any) -> None:
        """Keep a step's result (JSON) in the store and here."""
        await self.store.record(self.key, step, result)
        self.recorded[step] = result
