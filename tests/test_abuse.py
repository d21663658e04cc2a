"""Forged deliveries: limited per client address (429 once over budget), no disk write, real ones unaffected."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from botkit.receiver import AddressLimiter
from botkit.security import signed_headers
from botkit.testing import factories
from botkit.testing.harness import BotServer
from bots.support_router import make_bot

TEAMS = "billing=3,technical=4"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_each_address_has_a_burst_then_a_rate():
    clock = Clock()
    limiter = AddressLimiter(per_second=2, burst=3, clock=clock)
    assert [limiter.allow("10.0.0.1") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("10.0.0.2")  # another address has its own budget
    clock.now += 0.5  # one token back
    assert [limiter.allow("10.0.0.1") for _ in range(2)] == [True, False]
    clock.now += 60  # refills up to the burst, not beyond
    assert [limiter.allow("10.0.0.1") for _ in range(4)] == [True, True, True, False]


def test_the_table_of_addresses_is_bounded_and_forgets_the_least_recent():
    limiter = AddressLimiter(per_second=0.001, burst=1, max_addresses=100, clock=Clock())
    assert not (limiter.allow("keep") and limiter.allow("keep"))  # "keep" is now limited
    for n in range(99):
        limiter.allow(f"10.0.{n // 256}.{n % 256}")
    assert not limiter.allow("keep")  # still remembered (and now the most recent)
    for n in range(1000):
        limiter.allow(f"10.1.{n // 256}.{n % 256}")
    assert len(limiter) == 100
    assert limiter.allow("keep")  # forgotten under the flood: a fresh budget, never an unbounded table


@pytest.fixture
async def server(tmp_path, monkeypatch):
    monkeypatch.setenv("BOTKIT_UNAUTHORIZED_BURST", "5")
    monkeypatch.setenv("BOTKIT_UNAUTHORIZED_PER_SECOND", "0.01")
    async with BotServer(make_bot(), teams=TEAMS, store=f"sqlite:///{tmp_path}/botkit.db") as server:
        server.fake.add_team(1, 3, "billing")
        for n in range(20):
            server.fake.add_conversation(conversation_id=700 + n, status="pending")
        yield server


def forged() -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(factories.contact_message("hello")).encode()
    return raw, {**signed_headers("not-the-secret", raw), "X-Chatwoot-Delivery": "forged"}


def real(server: BotServer, n: int) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(factories.contact_message(f"real {n}", conversation_id=700 + n, message_id=9000 + n)).encode()
    return raw, {**signed_headers(server.fake.bot_secret, raw), "X-Chatwoot-Delivery": f"real-{n}"}


def disk(tmp_path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in tmp_path.glob("botkit.db*")}


async def test_over_budget_forgeries_get_429_and_real_deliveries_still_pass(server, tmp_path):
    await server.settle()
    enqueued = []
    original = server.store.enqueue

    async def counting(**kwargs):
        enqueued.append(kwargs["delivery_id"])
        return await original(**kwargs)

    server.store.enqueue = counting
    before = disk(tmp_path)
    raw, headers = forged()
    answers = [await server.client.post("/webhook", content=raw, headers=headers) for _ in range(8)]
    assert [a.status_code for a in answers] == [401] * 5 + [429] * 3
    assert answers[-1].content == b"" and answers[-1].headers["connection"] == "close"
    assert enqueued == [] and disk(tmp_path) == before  # forged deliveries touch neither the store nor the disk

    raw, headers = real(server, 0)  # the same address: authentic deliveries never meet the limiter
    response = await server.client.post("/webhook", content=raw, headers=headers)
    assert response.json() == {"status": "accepted"}

    metrics = (await server.client.get("/metrics")).text
    assert 'botkit_deliveries_total{bot="default",outcome="rate_limited"} 3.0' in metrics
    assert 'botkit_deliveries_total{bot="default",outcome="unauthorized"} 5.0' in metrics


async def test_another_address_keeps_its_own_budget(server):
    raw, headers = forged()
    for _ in range(6):
        await server.client.post("/webhook", content=raw, headers=headers)
    assert (await server.client.post("/webhook", content=raw, headers=headers)).status_code == 429
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(base_url=server.url, transport=transport) as other:
        assert (await other.post("/webhook", content=raw, headers=headers)).status_code == 401


async def test_a_flood_of_forgeries_does_not_starve_real_deliveries(server):
    raw, headers = forged()
    limits = httpx.Limits(max_connections=20)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=10) as flood:

        async def forge(_: int) -> int:
            try:
                return (await flood.post("/webhook", content=raw, headers=headers)).status_code
            except httpx.TransportError:  # a 429 closes its connection; the flooder's problem
                return 0

        async def deliver(n: int) -> str:
            body, signed = real(server, n)
            return (await server.client.post("/webhook", content=body, headers=signed)).json()["status"]

        results = await asyncio.gather(asyncio.gather(*(forge(n) for n in range(300))),
                                       asyncio.gather(*(deliver(n) for n in range(20))))
    forged_statuses, real_statuses = results
    assert real_statuses == ["accepted"] * 20
    assert set(forged_statuses) <= {401, 429, 0} and forged_statuses.count(429) >= 250
    await server.settle()
    assert len(server.fake.requests_to("POST", "*/messages")) == 20  # each real one was answered


def test_limit_can_be_turned_off(monkeypatch):
    from botkit.config import load_settings
    from botkit.receiver import limiter_from_settings

    monkeypatch.setenv("BOTKIT_UNAUTHORIZED_PER_SECOND", "0")
    assert limiter_from_settings(load_settings(env_file=None)) is None
    monkeypatch.setenv("BOTKIT_UNAUTHORIZED_PER_SECOND", "3")
    monkeypatch.setenv("BOTKIT_UNAUTHORIZED_BURST", "7")
    limiter = limiter_from_settings(load_settings(env_file=None))
    assert (limiter.per_second, limiter.burst) == (3.0, 7.0)
