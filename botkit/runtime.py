"""The contracts between botkit's layers, as typed protocols: what a bot is given when the server starts
(`Runtime`), the Chatwoot actions a `Context` takes (`ChatwootActions`: `ChatwootClient` and the dry run's
`ConsoleChatwoot` both offer them), and what the server and the worker ask of a served bot (`ServedBot`).

`served(obj)` makes any object with an async `handle(event, job)` a `ServedBot`, once, when the app is
assembled, so nothing on the event's path asks an object what it can do.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from botkit.metrics import NULL, NullMetrics

if TYPE_CHECKING:
    from botkit.config import Settings
    from botkit.events import Event
    from botkit.store.base import Finish, Job, Store


class ChatwootActions(Protocol):
    """Every Chatwoot call the bot layer makes: a Context's actions, and the looks of botkit/turn.py before a stale
    action and after an unclear create (botkit/chatwoot/client.py documents each; the dry run prints the actions
    and, having no Chatwoot to look at, shows every conversation as the bot's). tests/test_chatwoot_actions.py
    checks that each implementation offers them all."""

    dry_run: bool  # True: nothing reaches a Chatwoot (team names need no ids)
    metrics: NullMetrics  # where request counts go; `botkit serve` sets its Metrics

    @property
    def busy(self) -> bool:
        """Requests are queueing: cosmetic calls (typing) should skip."""
        ...

    async def version(self) -> str | None:
        """Chatwoot's version ("4.15.1"), or None when it cannot be told."""
        ...

    async def get_conversation(self, account_id: int, conversation_id: int, *,
                               retry_500: bool = True) -> dict[str, Any]:
        """The conversation as Chatwoot shows it now (`GET …/conversations/{id}`; bot tokens since 4.14.2);
        `retry_500=False` raises a 500 at once."""
        ...

    async def send_message(self, account_id: int, conversation_id: int, content: str | None = None, *,
                           private: bool = False, content_type: str = "text",
                           content_attributes: dict | None = None, echo_id: str | None = None) -> Any: ...

    async def toggle_status(self, account_id: int, conversation_id: int, status: str, *,
                            snoozed_until: datetime | int | None = None) -> Any: ...

    async def toggle_typing(self, account_id: int, conversation_id: int, on: bool) -> None: ...

    async def toggle_priority(self, account_id: int, conversation_id: int, priority: str | None) -> Any: ...

    async def assign_team(self, account_id: int, conversation_id: int, team_id: int) -> Any: ...

    async def assign_agent(self, account_id: int, conversation_id: int, agent_id: int) -> Any: ...

    async def add_labels(self, account_id: int, conversation_id: int, labels: Iterable[str]) -> Any: ...

    async def remove_labels(self, account_id: int, conversation_id: int, labels: Iterable[str]) -> Any: ...

    async def set_custom_attributes(self, account_id: int, conversation_id: int, attributes: dict, *,
                                    merge: bool = True, known: dict | None = None) -> Any: ...

    async def aclose(self) -> None: ...


@dataclass
class Runtime:
    """What a bot is given when the server starts: its settings, the store, its Chatwoot, the app's metrics,
    and its name (`/webhooks/<name>`, the prefix of its lanes)."""

    settings: Settings
    store: Store
    chatwoot: ChatwootActions
    metrics: NullMetrics = field(default=NULL)  # botkit.metrics.Metrics, or the no-op hooks (BOTKIT_METRICS=false)
    name: str = "default"  # the bot's name on this server: its lanes are lane_for(name, ...)


@runtime_checkable
class ServedBot(Protocol):
    """What the server (receiver.py, app.py) and the worker (worker.py) ask of a bot; `botkit.Bot` is one."""

    def bind(self, runtime: Runtime) -> None:
        """Given its runtime once, before `startup`."""

    async def startup(self) -> None:
        """Check settings and open clients; a ConfigError stops start-up with its one sentence."""

    async def shutdown(self) -> None: ...

    async def handle(self, event: Event, job: Job) -> Finish | None:
        """Handle one event; an exception fails the attempt (retried, or a dead letter: botkit.worker).
        What it returns (`botkit.store.Finish`: the lane's state, the delivery's records) is saved with the
        event's done."""

    async def on_dead_letter(self, event: Event, job: Job, error: BaseException) -> None:
        """The event failed for good (it is a dead letter): e.g. hand the conversation to humans."""


class _Bare:
    """A `ServedBot` around an object that has only some of its methods (at least `handle`)."""

    def __init__(self, bot: Any) -> None:
        self.bot = bot
        self.handle = bot.handle
        for name in ("bind", "startup", "shutdown", "on_dead_letter"):
            if callable(getattr(bot, name, None)):
                setattr(self, name, getattr(bot, name))

    def bind(self, runtime: Runtime) -> None: ...

    async def startup(self) -> None: ...

    async def shutdown(self) -> None: ...

    async def on_dead_letter(self, event: Event, job: Job, error: BaseException) -> None: ...


def served(bot: Any) -> ServedBot:
    """`bot` as a ServedBot: itself when it is one, else wrapped (the methods it lacks do nothing)."""
    return bot if isinstance(bot, ServedBot) else _Bare(bot)  # type: ignore[return-value]
