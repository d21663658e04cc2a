"""The worker behind a real receiver: order per conversation, concurrency across them, retries, dead letters."""

from __future__ import annotations

import asyncio
import random
import time

import httpx
import pytest

from botkit import GiveUp
from botkit.app import build_app
from botkit.chatwoot import DeliveryUnknown, NotFound, ServerError
from botkit.config import load_settings
from botkit.testing.server import serve_app
from tests.conftest import SECRET, message, signed


def make_settings(**overrides):
    values = {"chatwoot_webhook_secret": SECRET, "botkit_store": "memory://", "botkit_retry_backoff": 0.01}
    return load_settings(env_file=None, **{**values, **overrides})


class SlowRecorder:
    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.handled: list[tuple[int, int, float, float]] = []  # conversation, message, start, end
        self.done = asyncio.Event()
        self.expected = 0

    async def handle(self, event, job) -> None:
        started = time.monotonic()
        await asyncio.sleep(self.delay * random.uniform(0.5, 1.5))
        self.handled.append((event.conversation_id, event.message.id, started, time.monotonic()))
        if len(self.handled) >= self.expected:
            self.done.set()


async def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.01)


async def post(client, body, **kwargs):
    raw, headers = signed(body, **kwargs)
    response = await client.post("/webhook", content=raw, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["status"]


@pytest.mark.parametrize("store", ["memory://", "sqlite"])
async def test_order_per_conversation_and_overlap_across_conversations(tmp_path, store):
    url = f"sqlite:///{tmp_path}/botkit.db" if store == "sqlite" else store
    bot = SlowRecorder(delay=0.01)
    bot.expected = 200
    app = build_app(make_settings(botkit_store=url), bot)
    # 20 conversations x 10 messages, interleaved as Chatwoot would deliver them
    deliveries = [(c, c * 100 + n) for n in range(10) for c in range(1, 21)]
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base) as client:
        for conversation, message_id in deliveries:
            assert await post(client, message(conversation, message_id), delivery_id=str(message_id)) == "accepted"
        await asyncio.wait_for(bot.done.wait(), 30)
    assert len(bot.handled) == 200
    for conversation in range(1, 21):
        mine = [h for h in bot.handled if h[0] == conversation]
        assert [h[1] for h in mine] == [conversation * 100 + n for n in range(10)]
        assert all(a[3] <= b[2] for a, b in zip(mine, mine[1:], strict=False))  # one at a time
    # conversations overlapped: some event started before another conversation's event ended
    overlapping = sum(1 for a in bot.handled for b in bot.handled if a[0] != b[0] and a[2] < b[3] and b[2] < a[3])
    assert overlapping > 0


async def test_five_concurrent_deliveries_of_one_message_are_handled_once():
    bot = SlowRecorder()
    bot.expected = 1
    app = build_app(make_settings(), bot)
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base) as client:
        statuses = await asyncio.gather(*(post(client, message(3, 333), delivery_id=f"d-{i}") for i in range(5)))
        await asyncio.wait_for(bot.done.wait(), 10)
        await asyncio.sleep(0.2)  # room for a wrongful second run to show up
    assert sorted(statuses) == ["accepted"] + ["duplicate"] * 4
    assert [h[1] for h in bot.handled] == [333]


class Flaky:
    """Fails the first `failures` attempts of every event."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts: dict[int, int] = {}
        self.handled: list[int] = []
        self.dead: list[tuple[int, str]] = []

    async def handle(self, event, job) -> None:
        n = self.attempts[event.message.id] = self.attempts.get(event.message.id, 0) + 1
        assert job.attempts == n - 1
        if n <= self.failures:
            raise RuntimeError(f"boom {n}")
        self.handled.append(event.message.id)

    async def on_dead_letter(self, event, job, error) -> None:
        self.dead.append((event.message.id, str(error)))


async def test_a_failing_event_is_retried_then_succeeds_and_keeps_its_lane_in_order():
    bot = Flaky(failures=2)
    app = build_app(make_settings(botkit_max_attempts=3), bot)
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base) as client:
        await post(client, message(1, 10))
        await post(client, message(1, 11))
        await wait_for(lambda: len(bot.handled) == 2)
    assert bot.handled == [10, 11] and bot.attempts == {10: 3, 11: 3}
    assert bot.dead == []


async def test_retries_run_out_into_a_dead_letter_and_the_fallback_runs():
    bot = Flaky(failures=99)
    app = build_app(make_settings(botkit_max_attempts=3), bot)
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base) as client:
        await post(client, message(1, 10))
        await post(client, message(1, 11))
        await wait_for(lambda: len(bot.dead) == 2)
        ready = (await client.get("/readyz")).json()
        letters = await app.state.receiver.store.dead_letters()
    assert bot.attempts == {10: 3, 11: 3}
    assert [d[0] for d in bot.dead] == [10, 11] and bot.dead[0][1] == "boom 3"
    assert ready["queue"]["dead_letters"] == 2
    assert [(d.attempts, d.error) for d in letters] == [(3, "RuntimeError: boom 3")] * 2


async def test_an_error_that_says_retrying_cannot_help_is_dead_lettered_at_once():
    from botkit import GiveUp

    class Hopeless(GiveUp):
        pass

    class Bot(Flaky):
        async def handle(self, event, job):
            self.attempts[event.message.id] = self.attempts.get(event.message.id, 0) + 1
            raise Hopeless("token revoked")

    bot = Bot(0)
    app = build_app(make_settings(botkit_max_attempts=5), bot)
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base) as client:
        await post(client, message(1, 10))
        await wait_for(lambda: bot.dead)
    assert bot.attempts == {10: 1}


class MarkedFalse(Exception):
    transient = False  # not botkit's rule: only GiveUp and the Chatwoot client's own errors fail for good


# The one rule (botkit/errors.py): GiveUp, or a Chatwoot error a retry would meet again, fails for good.
FAILURES = {
    "GiveUp": (lambda: GiveUp("no order with this number"), 1),
    "Chatwoot's 404": (lambda: NotFound("no such conversation", status=404), 1),
    "an unclear create": (lambda: DeliveryUnknown("no answer came"), 1),
    "Chatwoot's 503": (lambda: ServerError("Service Unavailable", status=503), 3),
    "a KeyError": (lambda: KeyError("price"), 3),
    "another exception marked transient = False": (MarkedFalse, 3),
}


@pytest.mark.parametrize("failure", FAILURES)
async def test_one_rule_says_which_failures_are_for_good(failure):
    error, attempts = FAILURES[failure]

    class Bot(Flaky):
        async def handle(self, event, job):
            self.attempts[event.message.id] = self.attempts.get(event.message.id, 0) + 1
            raise error()

    bot = Bot(0)
    app = build_app(make_settings(botkit_max_attempts=3), bot)
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base) as client:
        await post(client, message(1, 10))
        await wait_for(lambda: bot.dead)
    assert bot.attempts == {10: attempts}


async def test_an_event_for_a_bot_not_served_here_is_a_dead_letter_at_once():
    app = build_app(make_settings(botkit_max_attempts=3), Flaky(0))
    async with serve_app(app):
        store = app.state.receiver.store
        await store.enqueue(keys=["d-1"], lane="elsewhere/1:1", event="message_created",
                            body=b'{"event": "message_created"}', delivery_id="d-1")
        letters = []
        while not letters:
            letters = await store.dead_letters()
            await asyncio.sleep(0.01)
    [letter] = letters
    assert letter.attempts == 1 and "no bot named 'elsewhere' is served here" in letter.error


async def test_a_signed_body_the_worker_cannot_read_is_a_dead_letter_at_once_with_one_line(caplog):
    # The receiver looks at a few keys only (the ack path); a message whose id is not a number passes it and
    # failed the full parse in the worker 3 times, each with a traceback, then "the dead-letter fallback
    # failed too" (it parsed the same body again).
    bot = Flaky(0)
    app = build_app(make_settings(botkit_max_attempts=3), bot)
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base) as client:
        assert await post(client, message(1, 10, id="abc")) == "accepted"
        await post(client, message(1, 11))
        await wait_for(lambda: bot.handled)
        letters = await app.state.receiver.store.dead_letters()
    [letter] = letters
    assert letter.attempts == 1 and letter.error.startswith("MalformedEvent: ")
    assert "message.id" in letter.error
    assert bot.handled == [11] and bot.dead == []  # no conversation to hand over: no fallback
    worker_errors = [r for r in caplog.records if r.name == "botkit.worker" and r.levelname == "ERROR"]
    assert len(worker_errors) == 1 and worker_errors[0].exc_info is None
    assert "fallback" not in caplog.text


async def test_shutdown_hands_unfinished_events_back(tmp_path):
    url = f"sqlite:///{tmp_path}/botkit.db"
    stuck = SlowRecorder(delay=30)
    app = build_app(make_settings(botkit_store=url, botkit_shutdown_timeout=0.2), stuck)
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base) as client:
        await post(client, message(1, 10))
        await wait_for(lambda: app.state.worker.in_flight == 1)
    # after a restart on the same store, the event runs (it was never finished)
    bot = SlowRecorder()
    bot.expected = 1
    app = build_app(make_settings(botkit_store=url), bot)
    async with serve_app(app):
        await asyncio.wait_for(bot.done.wait(), 10)
    assert [h[1] for h in bot.handled] == [10] and stuck.handled == []
