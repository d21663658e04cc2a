"""Outcomes: the facts each delivery yields, the figures computed from them, and `botkit report`.

A scripted run with known numbers of answered, handed-off, resolved and reopened conversations goes through
the real server and worker into a SQLite file (and a real Redis); `botkit report` then prints exactly those
numbers. The figures' edge cases (percentiles, the week of a reopening, costs) run on facts with known times.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from botkit.cli import main
from botkit.figures import DAY, WEEK, percentile, report
from botkit.store.base import Record
from botkit.testing.flow import BotFlow
from botkit.testing.redis_server import RedisServer, skip_unless_redis_server
from tests.support.browser import screenshot
from tests.support.menu_bot import make_bot

T0 = 1_780_000_000.0  # a Saturday, 2026-05-28T20:26:40Z


def fact(at: float, type_: str, lane: str = "menu/1:1", **data: Any) -> Record:
    return Record("outcome", at, {"type": type_, "lane": lane, "bot": lane.split("/")[0], "inbox": 1,
                                  "handler": "h", **data})


# the figures, from facts with known times ------------------------------------------------------------------
def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 21)]  # 1..20
    assert percentile(values, 50) == 10.0 and percentile(values, 95) == 19.0
    assert percentile([3.0], 95) == 3.0 and percentile([], 50) is None
    assert percentile([5.0, 1.0], 50) == 1.0


def test_figures_from_known_facts() -> None:
    facts = [
        # conversation 1: replied after 2 s, then again; answered without a hand-off
        fact(T0, "taken", "menu/1:1"), fact(T0, "reply", "menu/1:1", seconds=2.0),
        fact(T0 + 60, "reply", "menu/1:1", seconds=9.0),
        # conversation 2: replied after 4 s, then handed off (so not "answered without")
        fact(T0, "taken", "menu/1:2"), fact(T0, "reply", "menu/1:2", seconds=4.0),
        fact(T0 + 5, "handoff", "menu/1:2", reason="handler"),
        # conversation 3: resolved by the bot; the contact writes again exactly a week later: reopened
        fact(T0, "taken", "menu/1:3"), fact(T0, "reply", "menu/1:3", seconds=1.0), fact(T0, "resolved", "menu/1:3"),
        fact(T0 + WEEK, "contact_message", "menu/1:3"),
        # conversation 4: resolved; the contact comes back a week and a second later: not reopened
        fact(T0, "taken", "menu/1:4"), fact(T0, "reply", "menu/1:4", seconds=3.0), fact(T0, "resolved", "menu/1:4"),
        fact(T0 + WEEK + 1, "contact_message", "menu/1:4"),
        # conversation 5: dead letter, handed off; a knowledge-base gap and two model calls
        fact(T0, "taken", "menu/1:5", handler="(dead letter)"), fact(T0, "handoff", "menu/1:5", reason="dead_letter"),
        fact(T0, "kb_gap", "menu/1:5"),
        fact(T0, "model", "menu/1:5", model="gpt-4o-mini", tokens_in=1000, tokens_out=500),
        fact(T0, "model", "menu/1:5", model="local-llm", tokens_in=100, tokens_out=0),
        # outside the period: not counted
        fact(T0 - 1, "taken", "menu/1:6"), fact(T0 + 3600, "taken", "other/1:7"),
    ]
    result = report(facts, since=T0, until=T0 + 3600, prices={"gpt-4o-mini": (0.15, 0.60)})
    total = result.total
    assert (total.conversations, total.answered_without_handoff, total.resolved_by_bot, total.handed_off,
            total.reopened_within_week) == (5, 3, 2, 2, 1)
    assert total.handoff_reasons == {"dead_letter": 1, "handler": 1}
    assert (total.first_reply_p50, total.first_reply_p95) == (2.0, 4.0)  # first replies 2, 4, 1, 3
    assert total.kb_gaps == 1 and total.tokens == 1600 and total.tokens_per_conversation == 320.0
    assert total.cost == pytest.approx((1000 * 0.15 + 500 * 0.60) / 1e6)  # 0.00045 USD
    assert total.cost_per_conversation == pytest.approx(0.00009)
    assert total.unpriced_models == ["local-llm"]
    assert list(result.by_handler) == ["(dead letter)", "h"]
    assert result.by_handler["h"].conversations == 4 and result.by_handler["(dead letter)"].handed_off == 1
    assert list(result.by_bot) == ["menu"]
    assert [day for day, _ in result.daily] == ["2026-05-28"]


def test_each_day_of_the_trend_counts_its_own_conversations() -> None:
    day = 24 * 3600.0
    start = (T0 // day) * day
    facts = [fact(start + 10, "taken", "b/1:1"), fact(start + 10, "reply", "b/1:1", seconds=1.0),
             fact(start + day + 10, "taken", "b/1:2"), fact(start + day + 10, "handoff", "b/1:2", reason="handler"),
             fact(start + day + 20, "taken", "b/1:3")]
    result = report(facts, since=start, until=start + 3 * day)
    assert [(d, f.conversations, f.answered_without_handoff, f.handed_off) for d, f in result.daily] == [
        ("2026-05-28", 1, 1, 0), ("2026-05-29", 2, 0, 1), ("2026-05-30", 0, 0, 0)]


# a scripted run through the real server, then `botkit report` ------------------------------------------------
ANSWERED, HANDED_OFF, RESOLVED, REOPENED, DEAD_LETTERS = 3, 2, 2, 1, 1


async def scripted_run(store: str) -> None:
    """3 conversations answered (menu, then "track"), 2 handed off (menu, then "refund"), 2 resolved by the
    bot ("done") of which 1 is reopened by the contact, and 1 whose reply fails for good (a dead letter,
    handed off by the fallback)."""
    async with BotFlow.start(make_bot(), teams="billing=3", store=store, botkit_max_attempts=1) as first:
        flows = [first] + [first.new_conversation() for _ in range(7)]
        for flow in flows[:3]:
            (await flow.send("hi")).expect_reply(options=["Track my order", "Get a refund"])
            (await flow.choose("track")).expect_reply("Your order is on its way.")
        for flow in flows[3:5]:
            await flow.send("hi")
            (await flow.choose("refund")).expect_note().expect_team("billing").expect_handoff()
        for flow in flows[5:7]:
            (await flow.send("done")).expect_reply("Glad I could help.").expect_status("resolved")
        await flows[5].send("one more thing")  # back within the week: reopened
        dead = flows[7]
        dead.fake.fail_next("POST", f"/api/v1/accounts/1/conversations/{dead.conversation_id}/messages", 422)
        (await dead.send("hi")).expect_note().expect_handoff()


async def run_report(*args: str) -> str:
    """`botkit report ...` as a user runs it (its own event loop, so in a thread), and what it printed."""
    def run() -> str:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            assert main(["report", *args]) == 0
        return out.getvalue()

    return await asyncio.to_thread(run)


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'botkit.db'}"
        return
    skip_unless_redis_server()
    with RedisServer(tmp_path / "redis") as server:
        yield server.url


async def test_botkit_report_prints_exactly_what_the_scripted_run_did(store_url: str, monkeypatch: Any,
                                                                       tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    await scripted_run(store_url)
    figures = json.loads(await run_report("--store", store_url, "--format", "json"))
    total = figures["total"]
    assert total["conversations"] == ANSWERED + HANDED_OFF + RESOLVED + DEAD_LETTERS == 8
    assert total["answered_without_handoff"] == ANSWERED + RESOLVED == 5
    assert total["resolved_by_bot"] == RESOLVED
    assert total["handed_off"] == HANDED_OFF + DEAD_LETTERS
    assert total["handoff_reasons"] == {"handler": HANDED_OFF, "dead_letter": DEAD_LETTERS}
    assert total["reopened_within_week"] == REOPENED
    assert 0 <= total["first_reply_p50"] <= total["first_reply_p95"] < 30
    assert total["tokens"] == 0 and total["cost"] is None and total["kb_gaps"] == 0
    # the dead letter's conversation counts under the handler that failed on it
    assert {k: v["conversations"] for k, v in figures["by_handler"].items()} == {"done": 2, "menu": 6}
    assert figures["by_handler"]["menu"]["handoff_reasons"] == {"handler": 2, "dead_letter": 1}
    assert {k: v["conversations"] for k, v in figures["by_bot"].items()} == {"default": 8}
    assert figures["daily"][-1]["conversations"] == 8

    text = await run_report("--store", store_url)
    for label, number in (("Conversations taken", 8), ("Answered without a hand-off", 5),
                          ("Resolved by the bot", 2), ("Handed off", 3), ("Reopened within a week", 1)):
        assert re.search(rf"^{label} +{number}$", text, re.M), (label, text)
    assert "  handler              2\n  dead_letter          1\n" in text


# retention ------------------------------------------------------------------------------------------------
async def test_prune_deletes_facts_older_than_the_days_kept_in_batches() -> None:
    from botkit.outcomes import prune
    from botkit.store.memory import MemoryStore

    store = MemoryStore()
    now = T0 + 100 * DAY
    await store.add_records([fact(now - 91 * DAY - n, "taken") for n in range(2500)])
    await store.add_records([fact(now - 89 * DAY, "reply", seconds=1.0), fact(now, "taken"),
                             Record("delivery", now - 200 * DAY, {"d": 1})])
    assert await prune(store, 90, now=now, batch=1000) == 2500
    assert [r.data["type"] for r in await store.records("outcome")] == ["reply", "taken"]
    assert len(await store.records("delivery")) == 1  # timelines have their own bound (BOTKIT_TIMELINE_KEEP)


async def wait_for(predicate: Any, what: str) -> None:
    for _ in range(200):
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never: {what}")


async def test_the_server_prunes_old_outcomes_at_start_up_and_keeps_the_days_set(tmp_path: Path) -> None:
    import time

    from botkit.store.sqlite import SQLiteStore

    path = tmp_path / "botkit.db"
    now = time.time()
    async with SQLiteStore(str(path)) as store:
        await store.add_records([fact(now - 31 * DAY, "taken", "menu/1:1"), fact(now - 95 * DAY, "taken", "menu/1:2"),
                                 fact(now - DAY, "taken", "menu/1:3")])
    async with BotFlow.start(make_bot(), store=f"sqlite:///{path}", botkit_outcomes_keep_days=30) as flow:
        store = flow.server.store

        async def pruned() -> bool:
            return [r.data["lane"] for r in await store.records("outcome")] == ["menu/1:3"]

        await wait_for(pruned, "the facts older than 30 days were pruned")
        await flow.send("hi")  # the bot goes on recording
        await wait_for(lambda: _count(store, 2), "the new conversation was recorded")


async def _count(store: Any, at_least: int) -> bool:
    return len({r.data["lane"] for r in await store.records("outcome")}) >= at_least


async def test_retention_prunes_again_each_round_and_stops() -> None:
    from botkit.outcomes import Retention
    from botkit.store.memory import MemoryStore

    store = MemoryStore()
    retention = Retention(store, 90, every=0.05)  # hourly in the server; a round every 50 ms here
    import time

    await store.add_records([fact(time.time() - 91 * DAY, "taken")])
    retention.start()
    try:
        await wait_for(lambda: _empty(store), "the first round pruned the old fact")
        await store.add_records([fact(time.time() - 91 * DAY, "taken")])
        await wait_for(lambda: _empty(store), "a later round pruned the next old fact")
    finally:
        await retention.stop()
    assert not retention.running
    off = Retention(store, 0)
    off.start()
    assert not off.running  # BOTKIT_OUTCOMES_KEEP_DAYS=0 keeps everything: no task at all
    await off.stop()


async def _empty(store: Any) -> bool:
    return await store.records("outcome") == []


async def test_the_html_report_opens_in_the_browser(browser_page: Any, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    store = f"sqlite:///{tmp_path / 'botkit.db'}"
    await scripted_run(store)
    target = tmp_path / "report.html"
    await run_report("--store", store, "--format", "html", "--output", str(target))
    page = browser_page
    await page.goto(target.as_uri())
    assert await page.title() == "botkit outcomes"
    assert await page.locator('[data-figure="conversations"] .value').inner_text() == "8"
    assert await page.locator('[data-figure="handed_off"] .value').inner_text() == "3"
    assert await page.locator('[data-figure="reopened_within_week"] .value').inner_text() == "1"
    assert await page.locator('svg rect.bar[data-label="handler"]').count() == 1
    assert await page.locator('svg polyline.series[data-series="taken"]').count() == 1
    await screenshot(page, tmp_path, "outcomes", readme=True)


def test_botkit_report_where_there_is_no_store_says_so(tmp_path: Path, monkeypatch: Any, capsys: Any) -> None:
    # A new user's `botkit report` in another directory made an empty botkit.db there and reported 0 of all.
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--store", "sqlite:///./botkit.db"]) == 2
    assert capsys.readouterr().err.startswith("botkit: there is no store at ./botkit.db: run botkit report where ")
    assert not (tmp_path / "botkit.db").exists()


def test_botkit_report_to_a_file_it_cannot_write_says_so(tmp_path: Path, monkeypatch: Any, capsys: Any) -> None:
    # --output in a folder that does not exist stopped with a FileNotFoundError traceback.
    monkeypatch.chdir(tmp_path)
    asyncio.run(_open_store("sqlite:///./botkit.db"))  # the store botkit serve made
    target = tmp_path / "missing" / "report.html"
    assert main(["report", "--store", "sqlite:///./botkit.db", "--format", "html", "--output", str(target)]) == 2
    assert capsys.readouterr().err == (f"botkit: the report cannot be written to {target} (No such file or "
                                       "directory); name another --output.\n")


async def _open_store(url: str) -> None:
    from botkit.store import store_from_url

    async with store_from_url(url):
        pass
