"""The timeline of one delivery: what the bot did with it, step by step, and how long each step took.

The bot opens a `Timeline` when the worker hands it an event and closes it when the handlers are done; the
steps in between add to it: the policies' decision, the handler that took the event, each action with its
journal step, and the calls to a model or a knowledge base (`model_call`, `kb_gap`, through the context
variable, so an adapter records without being handed anything). On close the bot saves it in the store as a
`delivery` record (the console's timeline) and derives its `outcome` records (botkit/outcomes.py).

Recording costs a list append per step and one store write per delivery, in the worker; the receiver's ack
path records nothing. Message contents are kept only when asked (`BOTKIT_CONSOLE_CONTENTS`), never tokens.
"""

from __future__ import annotations

import contextvars
import time
from dataclasses import dataclass, field
from typing import Any

_current: contextvars.ContextVar[Timeline | None] = contextvars.ContextVar("botkit_timeline", default=None)


@dataclass
class Step:
    """One step: `kind` is policy, handler, action, model or kb; `ms` how long it took (None: instant)."""

    kind: str
    name: str
    ms: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    end_ms: float = 0.0  # when it ended, in ms from the start of the handling

    def to_json(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"kind": self.kind, "name": self.name, **self.detail, "end_ms": round(self.end_ms, 2)}
        if self.ms is not None:
            shown["ms"] = round(self.ms, 2)
        return shown


@dataclass
class Timeline:
    """The steps of one delivery (`key` is the event's identity, `lane` `<bot>/<account>:<conversation>`)."""

    bot: str
    key: str
    lane: str
    event: str
    received_at: float  # unix time the receiver accepted the delivery
    delivery_id: str | None = None
    conversation_id: int | None = None
    inbox_id: int | None = None
    attempt: int = 1
    text: str | None = None  # the contact's words: only with BOTKIT_CONSOLE_CONTENTS
    started: float = field(default_factory=time.perf_counter)
    handling_started_at: float = field(default_factory=time.time)  # unix time the bot got the event
    steps: list[Step] = field(default_factory=list)
    handler: str | None = None  # the handler that took the event
    error: str | None = None

    def add(self, kind: str, name: str, ms: float | None = None, **detail: Any) -> None:
        self.steps.append(Step(kind, name, ms, detail, (time.perf_counter() - self.started) * 1000))

    def seconds_since_received(self, step: Step) -> float:
        """Seconds from the receiver's ack of the delivery to the end of `step` (queue wait included)."""
        return max(0.0, self.handling_started_at - self.received_at) + step.end_ms / 1000

    def action(self, name: str, step: int, ms: float, *, skipped: bool = False, **detail: Any) -> None:
        """An action of the context (reply, note, handoff, ...) and its journal step."""
        self.add("action", name, ms, step=step, **({"skipped": True} if skipped else {}), **detail)

    def bind(self) -> contextvars.Token[Timeline | None]:
        return _current.set(self)

    @staticmethod
    def unbind(token: contextvars.Token[Timeline | None]) -> None:
        _current.reset(token)

    def to_json(self) -> dict[str, Any]:
        return {"bot": self.bot, "key": self.key, "lane": self.lane, "event": self.event,
                "delivery_id": self.delivery_id, "conversation_id": self.conversation_id,
                "inbox_id": self.inbox_id, "attempt": self.attempt, "received_at": self.received_at,
                "waited_ms": round(max(0.0, self.handling_started_at - self.received_at) * 1000, 2),
                "handler": self.handler, "error": self.error, "text": self.text,
                "ms": round((time.perf_counter() - self.started) * 1000, 2),
                "steps": [step.to_json() for step in self.steps]}


def describe(step: dict[str, Any]) -> str:
    """One saved step as a line for people: "action: reply (journal step 0) · 2.1 ms"."""
    text = f"{step.get('kind')}: {step.get('name')}"
    if "step" in step:
        text += f" (journal step {step['step']})"
    if step.get("reason"):
        text += f" — {step['reason']}"
    if step.get("skipped"):
        text += " — skipped, done in an earlier attempt"
    if step.get("dropped"):
        text += " — dropped: the conversation is no longer the bot's"
    if "tokens_in" in step:
        text += f" — {step['tokens_in']} + {step.get('tokens_out', 0)} tokens"
    if step.get("answered") is False:
        text += " — no answer"
    if step.get("handled") is False:
        text += " — passed"
    if step.get("failed"):
        text += " — failed"
    if "ms" in step:
        text += f" · {step['ms']} ms"
    return text


def current() -> Timeline | None:
    """The timeline of the delivery being handled in this task, if any."""
    return _current.get()


def model_call(model: str, *, ms: float, tokens_in: int = 0, tokens_out: int = 0) -> None:
    """A call to a language model (the OpenAI handler calls this); a no-op outside a delivery."""
    timeline = _current.get()
    if timeline is not None:
        timeline.add("model", model, ms, tokens_in=tokens_in, tokens_out=tokens_out)


def kb_call(name: str, *, ms: float, answered: bool) -> None:
    """A knowledge-base lookup; `answered` False is a gap: the knowledge base had no answer."""
    timeline = _current.get()
    if timeline is not None:
        timeline.add("kb", name, ms, answered=answered)
