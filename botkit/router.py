"""Handlers and routers: the steps of a bot's handler chain, under one rule.

The rule, the same for a decorated function and a `Handler` class: **returning `False` passes the event on to
the next handler; anything else (`None` included) ends the chain.** So a handler that replies and returns
nothing has handled the event, and nothing after it answers the same message a second time.

A `Router` is a handler made of handlers: decorators register functions into it, and it runs its handlers
in the order they were added. Routers nest (`router.include(other)`, like aiogram's `include_router`), so a
bot's order is written in one place: `Bot("shop", [menu_router, OpenAIHandler()])`.

A *catch-all* takes every event of some kinds it is given (a `KeywordRouter` with a fallback reply, an LLM
handler, `@fallback`): a handler after it that wants those events would never see them, and `check_order`
says so in one sentence at start-up.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from botkit import events
from botkit.config import ConfigError
from botkit.text import fold, keyword_pattern

if TYPE_CHECKING:
    from botkit.context import Context

MESSAGES = frozenset({"message_created", "message_updated"})


def passes(result: object) -> bool:
    """The one rule: only `False` passes the event on; anything else (None included) means handled."""
    return result is False


class Handler:
    """A step of a bot's handler chain. Override `handle`: return `False` to pass the event on to the next
    handler; return anything else (or nothing) when the event was handled, and the chain ends."""

    name: ClassVar[str] = ""
    events: ClassVar[frozenset[str]] = MESSAGES  # the events this handler wants to see
    # True: also see Chatwoot's own template messages (greeting, out of office, e-mail collect, CSAT) and the
    # contact's answers to them, which no other handler is shown (botkit.templates)
    templates: ClassVar[bool] = False
    # answer a burst of the contact's messages as one turn (botkit/bursts.py) when the bot does not say
    merges_bursts: ClassVar[bool] = False

    async def startup(self, bot: Any) -> None:
        """Called once when the server starts (open clients, check settings); `bot` is the `Bot` serving it."""

    async def shutdown(self) -> None:
        """Called once when the server stops."""

    async def handle(self, ctx: Context) -> bool | None:
        raise NotImplementedError

    @property
    def takes_all(self) -> frozenset[str]:
        """The events this handler handles whatever they say (a catch-all for them); none by default."""
        return frozenset()

    @property
    def label(self) -> str:
        return self.name or type(self).__name__

    def leaves(self) -> Iterator[Handler]:
        """The handlers this one runs, in order: itself, or a router's handlers, flattened."""
        yield self


class FunctionHandler(Handler):
    """A handler made from a decorated function and a matcher; the function follows the one rule."""

    def __init__(self, fn: Callable[[Context], Awaitable[Any]], matches: Callable[[Context], bool],
                 wanted: Iterable[str], name: str, *, catch_all: bool = False, templates: bool = False) -> None:
        self.fn = fn
        self.matches = matches
        self.events = frozenset(wanted)  # type: ignore[misc]
        self.templates = templates  # type: ignore[misc]  # on_csat, on_template: Chatwoot's template messages only
        self._name = name
        self._takes_all = self.events if catch_all else frozenset()

    @property
    def label(self) -> str:
        return self._name

    @property
    def takes_all(self) -> frozenset[str]:
        return self._takes_all

    async def handle(self, ctx: Context) -> bool:
        if not self.matches(ctx):
            return False
        return not passes(await self.fn(ctx))


class Router(Handler):
    """Handlers in order, itself a handler: the first that does not return `False` ends the chain.

        menu = Router("menu")

        @menu.on_message("order")
        async def order(ctx): ...

        bot = Bot("shop", [menu, OpenAIHandler()])
    """

    def __init__(self, name: str = "router", handlers: Sequence[Handler] = ()) -> None:
        self._name = name
        self.handlers: list[Handler] = list(handlers)

    @property
    def label(self) -> str:
        return self._name

    @property
    def events(self) -> frozenset[str]:  # type: ignore[override]
        return frozenset().union(*(h.events for h in self.handlers))

    @property
    def takes_all(self) -> frozenset[str]:
        return frozenset().union(*(h.takes_all for h in self.handlers))

    def leaves(self) -> Iterator[Handler]:
        for handler in self.handlers:
            yield from handler.leaves()

    def include(self, handler: Handler) -> Handler:
        """Add a handler or another router after the ones already here; returns it."""
        self.handlers.append(handler)
        return handler

    async def startup(self, bot: Any) -> None:
        for handler in self.handlers:
            await handler.startup(bot)

    async def shutdown(self) -> None:
        for handler in self.handlers:
            with contextlib.suppress(Exception):  # one handler's failing shutdown must not skip the others'
                await handler.shutdown()

    async def handle(self, ctx: Context) -> bool:
        name = ctx.event.name
        for handler in self.leaves():
            if name in handler.events and not passes(await handler.handle(ctx)):
                return True
        return False

    # decorators ---------------------------------------------------------------------------------------
    def on_message(self, *keywords: str, regex: str | None = None,
                   when: Callable[[Context], bool] | None = None) -> Callable[[Any], Any]:
        """Run the function for the contact's messages matching any keyword, the regex, or the predicate."""
        pattern = keyword_pattern(keywords) if keywords else None
        compiled = re.compile(regex, re.IGNORECASE) if regex else None

        def matches(ctx: Context) -> bool:
            text = ctx.text
            return ((pattern is None or bool(pattern.search(fold(text))))
                    and (compiled is None or bool(compiled.search(text)))
                    and (when is None or when(ctx)))

        return self._register(matches, MESSAGES)

    def on_event(self, *names: str) -> Callable[[Any], Any]:
        """Run the function for these events (conversation_resolved, webwidget_triggered, ...)."""
        unknown = set(names) - events.KNOWN_EVENTS
        if unknown:
            raise ValueError(f"Chatwoot sends bots no event named {', '.join(sorted(unknown))}")
        return self._register(lambda ctx: True, names)

    def on_answer(self, *values: str) -> Callable[[Any], Any]:
        """Run the function when the contact picks one of these values in the bot's menu or form (any, if none
        given), on any channel: the widget's answer, a tapped button or list row, a number typed back."""
        wanted = {fold(v) for v in values}

        def matches(ctx: Context) -> bool:
            answers = {fold(str(a.get("value", a.get("title", "")))) for a in ctx.submitted}
            if ctx.event.name == "message_updated" and ctx.message is not None and ctx.message.submitted_email:
                answers.add(fold(ctx.message.submitted_email))
            return bool(answers) and (not wanted or bool(answers & wanted))

        return self._register(matches, MESSAGES)

    def on_csat(self, fn: Callable[[Context], Awaitable[Any]]) -> Callable[[Context], Awaitable[Any]]:
        """Run the function when the contact rates the conversation in Chatwoot's CSAT survey: `ctx.csat` is
        `{rating: 1-5, feedback_message}`. It may come twice (the widget, then the survey page)."""
        return self._register(lambda ctx: ctx.csat is not None, {"message_updated"}, templates=True)(fn)

    def on_template(self, fn: Callable[[Context], Awaitable[Any]]) -> Callable[[Context], Awaitable[Any]]:
        """Run the function for Chatwoot's own template messages (greeting, out of office, e-mail collect, CSAT)
        and the contact's answers to them (`ctx.template`: kind, email, csat), which other handlers never see."""
        return self._register(lambda ctx: ctx.template is not None, MESSAGES, templates=True)(fn)

    def fallback(self, fn: Callable[[Context], Awaitable[Any]]) -> Callable[[Context], Awaitable[Any]]:
        """Run the function for any message no earlier handler took (a catch-all: nothing may come after it)."""
        return self._register(lambda ctx: True, MESSAGES, catch_all=True)(fn)

    def _register(self, matches: Callable[[Context], bool], wanted: Iterable[str],
                  catch_all: bool = False, templates: bool = False) -> Callable[[Any], Any]:
        def decorate(fn: Callable[[Context], Awaitable[Any]]) -> Callable[[Context], Awaitable[Any]]:
            self.handlers.append(FunctionHandler(fn, matches, wanted, fn.__name__, catch_all=catch_all,
                                                 templates=templates))
            return fn

        return decorate


def check_order(bot_name: str, handlers: Iterable[Handler]) -> None:
    """Stop start-up when a handler comes after a catch-all that takes events it wants (it would never run).

    Raises ConfigError, one sentence naming both handlers."""
    taken: dict[str, Handler] = {}  # event -> the first handler that takes all of them
    for handler in handlers:
        if isinstance(handler, FunctionHandler) and handler.templates:
            continue  # it sees only Chatwoot's template messages, which no catch-all is shown
        shadowed = sorted(handler.events & taken.keys())
        if shadowed:
            catch_all = taken[shadowed[0]]
            raise ConfigError(
                f"bot {bot_name!r}: handler {handler.label!r} comes after {catch_all.label!r}, which answers every "
                f"{shadowed[0]} event, so it would never run; put {handler.label!r} before {catch_all.label!r} "
                "in the bot's handler list.")
        for name in handler.takes_all:
            taken.setdefault(name, handler)
