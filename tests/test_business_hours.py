"""Business hours over real sockets: outside them the contact hears when people are back and the hand-off waits
for opening time (a test clock moved forward); inside them the hand-off is immediate."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from botkit import Bot, KeywordRouter
from botkit.adapters.keywords import GUIDE_FALLBACK, GUIDE_RULES
from botkit.testing.clock import FakeClock
from botkit.testing.fake_chatwoot import FakeChatwoot
from botkit.testing.flow import BotFlow

PARIS = ZoneInfo("Europe/Paris")
HOURS = "Europe/Paris; mon-fri 09:00-17:00"
SATURDAY = datetime(2026, 12, 5, 10, 0, tzinfo=PARIS)
MONDAY_OPENING = datetime(2026, 12, 7, 9, 0, tzinfo=PARIS)
BACK = ("Our team is away right now and back on Monday 7 December, 09:00 (Europe/Paris). I've passed your "
        "conversation on; meanwhile I can still help with anything else.")
TEAMS = "billing=3,technical=4"


def support_bot(clock: FakeClock, hours: str | None = HOURS) -> Bot:
    return Bot("support", [KeywordRouter(GUIDE_RULES, fallback=GUIDE_FALLBACK)], hours=hours, clock=clock)


async def test_outside_hours_the_contact_hears_when_people_are_back_and_the_handoff_waits_for_opening(bot_flow):
    clock = FakeClock(SATURDAY)
    flow = await bot_flow(support_bot(clock), teams=TEAMS)
    await flow.send("I need billing help")
    flow.expect_reply("I'm transferring you to our billing team.").expect_reply(BACK).expect_no_action()
    assert flow.status == "pending"
    # the bot keeps answering what it can meanwhile
    await flow.send("hello there")
    flow.expect_reply(re.compile(r"^How can I help you today\?")).expect_no_action()
    # Sunday evening: not yet
    clock.set(datetime(2026, 12, 6, 20, 0, tzinfo=PARIS))
    await flow.run_timers()
    flow.expect_no_action()
    # opening time: the hand-off happens, with its summary, the team the rule named, then open
    clock.set(MONDAY_OPENING)
    await flow.run_timers()
    flow.expect_summary("Why: a keyword rule", "Wants: I need billing help").expect_team("billing")
    flow.expect_handoff().expect_no_action()
    assert flow.status == "open"
    await flow.run_timers()  # once only
    flow.expect_no_action()


async def test_inside_hours_the_handoff_is_immediate(bot_flow):
    clock = FakeClock(datetime(2026, 12, 7, 11, 0, tzinfo=PARIS))  # Monday morning
    flow = await bot_flow(support_bot(clock), teams=TEAMS)
    await flow.send("I want a human")
    flow.expect_reply("Let me connect you with a human agent.").expect_summary().expect_handoff().expect_no_action()


async def test_outside_hours_open_now_with_a_note(bot_flow):
    clock = FakeClock(SATURDAY)
    flow = await bot_flow(support_bot(clock), teams=TEAMS, botkit_outside_hours="open")
    await flow.send("I want a human")
    flow.expect_reply("Let me connect you with a human agent.").expect_reply(BACK)
    flow.expect_summary("outside business hours: the contact was told people are back Monday 7 December, 09:00")
    flow.expect_handoff().expect_no_action()


async def test_an_agent_who_takes_the_conversation_before_opening_time_keeps_it(bot_flow):
    from botkit.testing import factories

    clock = FakeClock(SATURDAY)
    flow = await bot_flow(support_bot(clock), teams=TEAMS)
    await flow.send("I want a human")
    flow.conversation.status = "open"  # an agent on weekend duty opens it
    await flow.deliver(factories.conversation_event("conversation_status_changed", status="open",
                                                    changed_attributes=[{"status": {"previous_value": "pending",
                                                                                    "current_value": "open"}}]))
    clock.set(MONDAY_OPENING)
    await flow.run_timers()
    flow.expect_no_action()


async def test_a_waiting_handoff_survives_a_restart(tmp_path):
    clock = FakeClock(SATURDAY)
    fake = FakeChatwoot()
    store = f"sqlite:///{tmp_path / 'botkit.db'}"
    async with fake.serve():
        async with BotFlow.start(support_bot(clock), teams=TEAMS, fake=fake, store=store) as flow:
            await flow.send("I want a human")
            flow.expect_reply("Let me connect you with a human agent.").expect_reply(BACK).expect_no_action()
        clock.set(MONDAY_OPENING)
        async with BotFlow.start(support_bot(clock), teams=TEAMS, fake=fake, store=store) as flow:
            await flow.run_timers()
            flow.expect_summary("Wants: I want a human").expect_handoff().expect_no_action()


async def test_the_inboxs_working_hours_in_chatwoot(bot_flow):
    clock = FakeClock(SATURDAY)
    fake = FakeChatwoot()
    fake.inbox.working_hours_enabled = True
    fake.inbox.timezone = "Europe/Paris"  # Chatwoot's default week: Monday to Friday, 09:00-17:00
    flow = await bot_flow(support_bot(clock, hours="chatwoot"), teams=TEAMS, fake=fake,
                          chatwoot_admin_token=fake.admin_token)
    await flow.send("I want a human")
    flow.expect_reply("Let me connect you with a human agent.").expect_reply(BACK).expect_no_action()
    assert fake.requests_to("GET", "/api/v1/accounts/1/inboxes")[0].token == fake.admin_token
    fake.inbox.working_hours_enabled = False  # switched off in Chatwoot: inside hours (after the cache's life)
    flow.server.bot.agents.hours.ttl = 0
    other = flow.new_conversation()
    await other.send("I want a human")
    other.expect_reply().expect_summary().expect_handoff()


async def test_the_contact_hears_it_in_their_language(bot_flow):
    clock = FakeClock(SATURDAY)
    flow = await bot_flow(support_bot(clock), teams=TEAMS)
    await flow.send("human", browser_language="fr-FR")
    flow.expect_reply().expect_reply("Notre équipe est absente pour le moment et revient le lundi 7 décembre, 09:00 "
                                     "(Europe/Paris). J'ai transmis votre conversation ; en attendant, je peux encore "
                                     "vous aider pour autre chose.")
