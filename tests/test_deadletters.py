"""`botkit deadletters`: a handler fails for good, the event is listed, the handler is fixed, replay runs it once."""

from __future__ import annotations

import asyncio
import time

import pytest

from botkit import Bot, GiveUp, Handler, cli
from botkit.testing import factories
from botkit.testing.harness import BotServer
from botkit.testing.redis_server import RedisServer, skip_unless_redis_server


class Broken(GiveUp):
    """Retrying cannot help: dead-lettered at once."""


class Fixable(Handler):
    name = "fixable"

    def __init__(self) -> None:
        self.broken = True
        self.handled: list[str] = []

    async def handle(self, ctx) -> bool:
        if self.broken:
            raise Broken("the price list is missing")
        self.handled.append(ctx.text)
        await ctx.reply(f"fixed: {ctx.text}")
        return True


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/botkit.db"
        return
    skip_unless_redis_server()
    with RedisServer(tmp_path / "redis") as redis:
        yield redis.url


async def botkit(capsys, *argv: str) -> tuple[int, str, str]:
    """Run the `botkit` command as a user would (in a thread: it runs its own event loop)."""
    capsys.readouterr()
    code = await asyncio.to_thread(cli.main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def dead_letters(server: BotServer) -> int:
    return (await server.store.stats()).dead_letters


async def test_list_show_fix_replay_once(store_url, capsys):
    handler = Fixable()
    async with BotServer(Bot("fixable", [handler]), store=store_url) as server:
        server.fake.add_conversation(conversation_id=128, status="pending")
        body = factories.contact_message("how much is the gold plan?", message_id=4242)
        await server.deliver(body, delivery_id="d-dead")
        await wait_for(lambda: _ready(server, 1))
        # the fallback handed the conversation to humans with a note
        await wait_for(lambda: _async(server.fake.conversation(128).status == "open"))

        code, out, _ = await botkit(capsys, "deadletters", "list", "--store", store_url)
        assert code == 0
        lines = out.splitlines()
        assert len(lines) == 1
        dead_id, event, lane, delivery, attempts, age, error = lines[0].split("\t")
        assert (event, lane, delivery, attempts) == ("message_created", "default/1:128", "d-dead", "1")
        assert age.endswith("s") and error == "Broken: the price list is missing"

        code, out, _ = await botkit(capsys, "deadletters", "show", dead_id, "--store", store_url)
        assert code == 0 and "how much is the gold plan?" in out and '"id": 4242' in out
        assert server.fake.bot_token not in out and server.fake.bot_secret not in out

        handler.broken = False
        # humans hold it since the hand-off: an agent gives it back to the bot before the replay
        server.fake.conversation(128).status = "pending"
        await server.deliver(factories.conversation_event(
            "conversation_status_changed", status="pending", conversation_id=128,
            changed_attributes=[{"status": {"previous_value": "open", "current_value": "pending"}}]))
        await server.settle()
        code, out, _ = await botkit(capsys, "deadletters", "replay", dead_id, "--store", store_url)
        assert (code, out.strip()) == (0, f"replayed 1 {dead_id}")
        await wait_for(lambda: _async(len(handler.handled) == 1))
        await server.settle()
        await asyncio.sleep(0.3)  # anything that would run it a second time has had its chance
        assert handler.handled == ["how much is the gold plan?"]
        sent = server.fake.requests_to("POST", "*/128/messages")
        replies = [r.json["content"] for r in sent if not r.json["private"]]
        assert replies == ["fixed: how much is the gold plan?"]
        assert await dead_letters(server) == 0

        code, out, err = await botkit(capsys, "deadletters", "replay", dead_id, "--store", store_url)
        assert code == 1 and "no dead letter" in err
        code, out, err = await botkit(capsys, "deadletters", "list", "--store", store_url)
        assert (code, out) == (0, "") and "no dead letters" in err


async def test_replay_all_and_drop(store_url, capsys):
    handler = Fixable()
    async with BotServer(Bot("fixable", [handler], handoff_on_failure=False), store=store_url) as server:
        for n in range(3):
            server.fake.add_conversation(conversation_id=300 + n, status="pending")
            await server.deliver(factories.contact_message(f"question {n}", message_id=500 + n,
                                                           conversation_id=300 + n))
        await wait_for(lambda: _ready(server, 3))
        code, out, _ = await botkit(capsys, "deadletters", "list", "--store", store_url)
        ids = [line.split("\t")[0] for line in out.splitlines()]
        assert len(ids) == 3

        # the three conversations fail concurrently: which question the first dead letter holds varies
        code, out, _ = await botkit(capsys, "deadletters", "show", ids[0], "--store", store_url)
        [dropped] = [f"question {n}" for n in range(3) if f"question {n}" in out]
        code, out, _ = await botkit(capsys, "deadletters", "drop", ids[0], "--store", store_url)
        assert (code, out.strip()) == (0, f"dropped {ids[0]}")
        code, _, err = await botkit(capsys, "deadletters", "show", ids[0], "--store", store_url)
        assert code == 1 and "no dead letter" in err

        handler.broken = False
        code, out, _ = await botkit(capsys, "deadletters", "replay", "--all", "--store", store_url)
        assert code == 0 and out.split()[:2] == ["replayed", "2"] and sorted(out.split()[2:]) == sorted(ids[1:])
        await wait_for(lambda: _async(len(handler.handled) == 2))
        await server.settle()
        # the dropped one never runs again
        assert sorted(handler.handled) == sorted({"question 0", "question 1", "question 2"} - {dropped})


@pytest.mark.parametrize("action", [["list"], ["show", "1"], ["replay", "--all"], ["drop", "1"]])
async def test_where_there_is_no_store_say_so_and_make_none(capsys, tmp_path, action):
    # `botkit deadletters list` in another folder made an empty botkit.db there and said "no dead letters".
    code, _, err = await botkit(capsys, "deadletters", *action, "--store", f"sqlite:///{tmp_path}/botkit.db")
    assert (code, err) == (2, f"botkit: there is no store at {tmp_path}/botkit.db: run botkit deadletters where "
                              "botkit serve runs, or name the store with --store or BOTKIT_STORE.\n")
    assert list(tmp_path.iterdir()) == []


async def test_replay_needs_an_id_or_all(capsys, tmp_path):
    code, _, err = await botkit(capsys, "deadletters", "replay", "--store", f"sqlite:///{tmp_path}/x.db")
    assert code == 2 and "--all" in err


async def _ready(server: BotServer, count: int) -> bool:
    return await dead_letters(server) >= count


async def _async(value: bool) -> bool:
    return value
