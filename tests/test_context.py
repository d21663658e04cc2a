"""`Context` built by hand, without a server or a socket: a MemoryStore for the journal and a stand-in for the
Chatwoot actions (botkit.runtime.ChatwootActions) that records each call."""

from __future__ import annotations

from typing import Any

import pytest

from botkit import Context, GiveUp
from botkit.context import ActionRefused
from botkit.events import parse
from botkit.journal import Journal
from botkit.metrics import NullMetrics
from botkit.runtime import ChatwootActions
from botkit.store.base import Job
from botkit.store.memory import MemoryStore
from botkit.teams import Teams
from botkit.testing import factories


class Actions:
    """The Chatwoot actions, recorded; `fail_on` names a call that raises once."""

    dry_run = False
    busy = False

    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.fail_on = fail_on
        self.metrics = NullMetrics()

    def _call(self, name: str, *args: Any) -> dict[str, Any]:
        if name == self.fail_on:
            self.fail_on = None
            raise ConnectionError(f"{name} failed")
        self.calls.append((name, args))
        return {"id": len(self.calls), "content": "never kept in the journal"}

    async def send_message(self, account_id, conversation_id, content=None, *, private=False, content_type="text",
                           content_attributes=None, echo_id=None):
        return self._call("note" if private else "reply", content)

    async def toggle_status(self, account_id, conversation_id, status, *, snoozed_until=None):
        return self._call("status", status)

    async def toggle_typing(self, account_id, conversation_id, on):
        self.calls.append(("typing", (on,)))

    async def toggle_priority(self, account_id, conversation_id, priority):
        return self._call("priority", priority)

    async def assign_team(self, account_id, conversation_id, team_id):
        return self._call("team", team_id)

    async def assign_agent(self, account_id, conversation_id, agent_id):
        return self._call("agent", agent_id)

    async def add_labels(self, account_id, conversation_id, labels):
        return self._call("add_labels", *labels)

    async def remove_labels(self, account_id, conversation_id, labels):
        return self._call("remove_labels", *labels)

    async def set_custom_attributes(self, account_id, conversation_id, attributes, *, merge=True, known=None):
        return self._call("attributes", attributes)

    async def aclose(self):
        return None


class Counted(NullMetrics):
    def __init__(self) -> None:
        self.handoffs: list[str] = []

    def handoff(self, reason: str) -> None:
        self.handoffs.append(reason)


JOB = Job(id="1", key="delivery-1", lane="bot/1:128", event="message_created", body=b"{}", delivery_id="d-1",
          attempts=0, enqueued_at=0.0)


async def context(store: MemoryStore, actions: ChatwootActions, payload: dict[str, Any] | None = None,
                  **kwargs: Any) -> Context:
    event = parse(payload or factories.contact_message("hello"))
    return Context(event, JOB, chatwoot=actions, journal=await Journal.open(store, JOB.key), **kwargs)


async def test_a_retried_event_skips_the_actions_that_already_succeeded():
    store, actions = MemoryStore(), Actions(fail_on="status")
    first = await context(store, actions, teams=Teams({"billing": 3}))
    with pytest.raises(ConnectionError):
        await first.handoff(message="One moment.", team="billing")
    assert actions.calls == [("reply", ("One moment.",)), ("team", (3,))]

    again = await context(store, actions, teams=Teams({"billing": 3}))
    await again.handoff(message="One moment.", team="billing")
    assert actions.calls == [("reply", ("One moment.",)), ("team", (3,)), ("status", ("open",))]
    assert (await store.journal(JOB.key))[0] == {"id": 1}  # identifiers only, never the message's text


async def test_once_gives_a_retry_the_first_attempts_value():
    store, actions = MemoryStore(), Actions()
    answers = iter(["first answer", "second answer"])

    async def ask() -> str:
        return next(answers)

    assert await (await context(store, actions)).once("model", ask) == "first answer"
    assert await (await context(store, actions)).once("model", ask) == "first answer"


async def test_a_hand_off_is_counted_once_across_retries():
    store, actions, metrics = MemoryStore(), Actions(), Counted()
    await (await context(store, actions, metrics=metrics)).handoff(reason="handler")
    await (await context(store, actions, metrics=metrics)).handoff(reason="handler")
    assert metrics.handoffs == ["handler"]
    assert actions.calls == [("status", ("open",))]


async def test_a_journal_from_a_later_first_step_does_not_skip_the_failed_attempts_steps():
    store, actions = MemoryStore(), Actions()
    await (await context(store, actions)).reply("hi")
    fallback = Context(parse(factories.contact_message("hello")), JOB, chatwoot=actions,
                       journal=await Journal.open(store, JOB.key, first_step=1000))
    await fallback.reply("handing you over")
    assert [args for _, args in actions.calls] == [("hi",), ("handing you over",)]
    assert set(await store.journal(JOB.key)) == {0, 1000}


async def test_an_unknown_team_is_refused_for_good_and_a_dry_run_keeps_the_name():
    store = MemoryStore()
    ctx = await context(store, Actions())
    with pytest.raises(ActionRefused, match="add sales=<team id> to BOTKIT_TEAMS") as refused:
        await ctx.assign_team("sales")
    assert isinstance(refused.value, GiveUp)

    dry = Actions()
    dry.dry_run = True
    await (await context(store, dry)).assign_team("sales")
    assert dry.calls == [("team", ("sales",))]


async def test_a_closed_reply_window_hands_off_when_the_bot_says_so():
    store, actions = MemoryStore(), Actions()
    closed = factories.contact_message("hi", channel="Channel::Whatsapp", can_reply=False)
    skipped = await context(store, actions, closed)
    assert await skipped.reply("hello") is None and actions.calls == []

    handed = await context(MemoryStore(), actions, closed, when_cannot_reply="handoff")
    await handed.reply("hello")
    assert [name for name, _ in actions.calls] == ["note", "status"] and handed.handed_off


async def test_typing_is_skipped_while_chatwoot_is_busy_and_state_is_the_one_given():
    actions = Actions()
    actions.busy = True
    state = {"step": "menu"}
    ctx = await context(MemoryStore(), actions, state=state)
    await ctx.typing(True)
    assert actions.calls == [] and ctx.state is state


async def test_act_and_post_are_the_journaled_seam_for_a_call_context_has_no_method_for():
    """What botkit/agents.py (an agent's `/bot`, `/send`) and a plugin use: retried, both are skipped."""
    store, actions = MemoryStore(), Actions(fail_on="agent")
    for attempt in (1, 2):
        ctx = await context(store, actions)
        await ctx.act("back to pending", lambda ctx=ctx: actions.toggle_status(ctx.account_id, ctx.conversation_id,
                                                                              "pending"))
        sent = await ctx.post("Your parcel left today.", content_type="text", name="send")
        assert sent == {"id": 2}  # what the journal keeps: the id, never the text
        if attempt == 1:
            with pytest.raises(ConnectionError):
                await ctx.assign_agent(7)
        else:
            await ctx.assign_agent(7)
    assert actions.calls == [("status", ("pending",)), ("reply", ("Your parcel left today.",)), ("agent", (7,))]


def test_adapters_and_bots_use_only_the_public_context():
    """A handler shipped with botkit reaches Context through its public members only (its private helpers may
    change with the worker's hot path): no `ctx._name` in botkit/adapters or bots/."""
    import ast

    from tests.conftest import ROOT

    reached = [f"{path.relative_to(ROOT)}:{node.lineno} ctx.{node.attr}"
               for path in sorted([*(ROOT / "botkit" / "adapters").rglob("*.py"), *(ROOT / "bots").rglob("*.py")])
               for node in ast.walk(ast.parse(path.read_text()))
               if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "ctx"
               and node.attr.startswith("_") and not node.attr.startswith("__")]
    assert reached == []
