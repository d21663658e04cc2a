"""/metrics after a known sequence of deliveries: each counter has the value the sequence must give."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest
from prometheus_client.parser import text_string_to_metric_families

from botkit import Bot, Handler
from botkit.security import signed_headers
from botkit.store.base import StoreUnavailable
from botkit.testing import factories
from botkit.testing.harness import BotServer
from bots.support_router import make_bot
from tests.conftest import ROOT

TEAMS = "billing=3,technical=4"


async def scrape(server: BotServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} from the server's /metrics."""
    response = await server.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape_when(server: BotServer, name: str, expected: float, timeout: float = 10.0, **labels: str):
    """Scrape until `name` reaches `expected` (the dead-letter fallback runs after the queue is empty)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        samples = await scrape(server)
        if value(samples, name, **labels) >= expected or asyncio.get_running_loop().time() > deadline:
            return samples
        await asyncio.sleep(0.02)


async def post_raw(server: BotServer, raw: bytes, headers: dict[str, str]) -> int:
    return (await server.client.post("/webhook", content=raw, headers=headers)).status_code


def signed(server: BotServer, raw: bytes) -> dict[str, str]:
    return signed_headers(server.fake.bot_secret, raw)


@pytest.fixture
async def server():
    async with BotServer(make_bot(), teams=TEAMS, botkit_max_body_bytes=1024 * 1024) as server:
        server.fake.add_team(1, 3, "billing")
        server.fake.add_team(1, 4, "technical")
        server.fake.add_conversation(conversation_id=128, status="pending")
        server.fake.add_conversation(conversation_id=129, status="pending")
        yield server


async def test_a_known_sequence_gives_known_counts(server):
    billing = factories.contact_message("I have a billing question", message_id=1)
    assert await server.deliver(billing, delivery_id="d-1") == "accepted"
    assert await server.deliver(billing, delivery_id="d-1") == "duplicate"  # Chatwoot's retry
    assert await server.deliver(billing, delivery_id="d-2") == "duplicate"  # Chatwoot issue #11901
    hello = factories.contact_message("hello", message_id=2, conversation_id=129)
    assert await server.deliver(hello, delivery_id="d-3") == "accepted"
    assert await server.deliver({"event": "contact_updated", "id": 5}) == "ignored"
    raw = json.dumps(billing).encode()
    assert await post_raw(server, raw, {"content-type": "application/json"}) == 401
    assert await post_raw(server, raw, {**signed(server, raw), "X-Chatwoot-Signature": "sha256=" + "0" * 64}) == 401
    assert await post_raw(server, b"not json", signed(server, b"not json")) == 400
    big = b"x" * (1024 * 1024 + 1)
    assert await post_raw(server, big, signed(server, big)) == 413
    assert (await server.client.post("/webhooks/nobody", content=raw, headers=signed(server, raw))).status_code == 404
    await server.settle()

    samples = await scrape(server)
    deliveries = {labels: v for (name, labels), v in samples.items() if name == "botkit_deliveries_total"}
    assert deliveries == {
        (("bot", "default"), ("outcome", "accepted")): 2,
        (("bot", "default"), ("outcome", "duplicate")): 2,
        (("bot", "default"), ("outcome", "ignored")): 1,
        (("bot", "default"), ("outcome", "unauthorized")): 2,
        (("bot", "default"), ("outcome", "malformed")): 1,
        (("bot", "default"), ("outcome", "too_large")): 1,
        (("bot", "-"), ("outcome", "not_found")): 1,  # the path's name is never a label: no cardinality attack
    }
    # Ack latency: only what came from Chatwoot (2 accepted + 2 duplicates + 1 ignored + 1 malformed)
    assert value(samples, "botkit_ack_seconds_count", bot="default") == 6
    assert value(samples, "botkit_ack_seconds_bucket", bot="default", le="5.0") == 6
    assert value(samples, "botkit_ack_seconds_bucket", bot="default", le="+Inf") == 6

    assert value(samples, "botkit_events_total", outcome="done") == 2
    assert value(samples, "botkit_event_seconds_count", outcome="done") == 2
    assert value(samples, "botkit_handler_seconds_count", handler="keywords") == 2
    assert value(samples, "botkit_handler_errors_total", handler="keywords") == 0
    assert value(samples, "botkit_handoffs_total", reason="keywords") == 1  # billing; "hello" got the prompt

    messages = "POST /api/v1/accounts/{account_id}/conversations/{conversation_id}/messages"
    assignments = "POST /api/v1/accounts/{account_id}/conversations/{conversation_id}/assignments"
    status = "POST /api/v1/accounts/{account_id}/conversations/{conversation_id}/toggle_status"
    assert value(samples, "botkit_chatwoot_requests_total", endpoint=messages, status="200") == 3  # + the summary
    assert value(samples, "botkit_chatwoot_requests_total", endpoint=assignments, status="200") == 1
    assert value(samples, "botkit_chatwoot_requests_total", endpoint=status, status="200") == 1
    assert value(samples, "botkit_chatwoot_retries_total", endpoint=status) == 0

    assert value(samples, "botkit_store_up") == 1
    assert value(samples, "botkit_queue_waiting") == 0
    assert value(samples, "botkit_queue_in_flight") == 0
    assert value(samples, "botkit_dead_letters_stored") == 0
    assert server.fake.bot_token not in (await server.client.get("/metrics")).text


async def test_queue_gauges_show_waiting_events_and_their_age():
    bot = make_bot()
    async with BotServer(bot, teams=TEAMS) as server:
        await server.app.state.worker.stop(1)  # nothing is handled: the events wait
        for n in range(3):
            await server.deliver(factories.contact_message("hello", message_id=10 + n, conversation_id=200 + n))
        samples = await scrape(server)
    assert value(samples, "botkit_queue_waiting") == 3
    assert value(samples, "botkit_queue_in_flight") == 0
    assert value(samples, "botkit_queue_oldest_age_seconds") > 0


class Broken(Handler):
    async def handle(self, ctx) -> bool:
        raise RuntimeError("the handler is broken")


async def test_retries_dead_letters_and_the_fallback_hand_off_are_counted():
    async with BotServer(Bot("broken", [Broken()]), botkit_max_attempts=3) as server:
        server.fake.add_conversation(conversation_id=128, status="pending")
        await server.deliver(factories.contact_message("hello"))
        await server.settle()
        samples = await scrape_when(server, "botkit_events_total", 1, outcome="dead_letter")
    assert value(samples, "botkit_events_total", outcome="retry") == 2
    assert value(samples, "botkit_events_total", outcome="dead_letter") == 1
    assert value(samples, "botkit_events_total", outcome="done") == 0
    assert value(samples, "botkit_dead_letters_total", event="message_created") == 1
    assert value(samples, "botkit_handler_errors_total", handler="Broken") == 3
    assert value(samples, "botkit_handler_seconds_count", handler="Broken") == 3
    assert value(samples, "botkit_handoffs_total", reason="dead_letter") == 1
    assert value(samples, "botkit_dead_letters_stored") == 1


async def test_chatwoot_retries_and_429s_are_counted(server):
    server.fake.rate_limit_next("POST", "*/toggle_status", times=2)
    await server.deliver(factories.contact_message("I want a human"))
    await server.settle()
    samples = await scrape(server)
    status = "POST /api/v1/accounts/{account_id}/conversations/{conversation_id}/toggle_status"
    assert value(samples, "botkit_chatwoot_requests_total", endpoint=status, status="429") == 2
    assert value(samples, "botkit_chatwoot_requests_total", endpoint=status, status="200") == 1
    assert value(samples, "botkit_chatwoot_retries_total", endpoint=status) == 2
    assert value(samples, "botkit_handoffs_total", reason="keywords") == 1


async def test_store_errors_are_counted_and_the_store_down_is_shown(server, monkeypatch):
    async def unavailable(*args, **kwargs):
        raise StoreUnavailable("disk full")

    monkeypatch.setattr(server.store, "enqueue", unavailable)
    raw = json.dumps(factories.contact_message("hello")).encode()
    assert await post_raw(server, raw, signed(server, raw)) == 500
    monkeypatch.setattr(server.store, "stats", unavailable)
    samples = await scrape(server)
    assert value(samples, "botkit_deliveries_total", bot="default", outcome="store_error") == 1
    assert value(samples, "botkit_store_up") == 0
    assert ("botkit_queue_waiting", ()) not in samples


async def test_each_app_counts_alone():
    async with BotServer(make_bot(), teams=TEAMS) as first, BotServer(make_bot(), teams=TEAMS) as second:
        await first.deliver(factories.contact_message("hello", message_id=1))
        await first.settle()
        assert value(await scrape(first), "botkit_deliveries_total", bot="default", outcome="accepted") == 1
        assert value(await scrape(second), "botkit_deliveries_total", bot="default", outcome="accepted") == 0


async def test_metrics_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("BOTKIT_METRICS", "false")
    async with BotServer(make_bot(), teams=TEAMS) as server:
        assert (await server.client.get("/metrics")).status_code == 404
        assert await server.deliver(factories.contact_message("hello")) == "accepted"


PROCESS = textwrap.dedent("""
    import sys
    from botkit.metrics import Metrics
    metrics = Metrics()
    for _ in range(int(sys.argv[1])):
        metrics.delivery("default", "accepted", 0.002)
    if len(sys.argv) > 2:
        sys.stdout.write(metrics.render(None)[0].decode())
""")


def test_several_processes_add_up_with_prometheus_multiproc_dir(tmp_path):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}

    def run(*args: str) -> str:
        return subprocess.run([sys.executable, "-c", PROCESS, *args], env=env, check=True, capture_output=True,
                              text=True, timeout=60).stdout

    run("2")
    run("3")
    text = run("1", "render")  # a third process answers the scrape
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(text) for s in f.samples}
    assert value(samples, "botkit_deliveries_total", bot="default", outcome="accepted") == 6
    assert value(samples, "botkit_ack_seconds_count", bot="default") == 6


def test_serve_empties_the_multiprocess_directory(tmp_path, monkeypatch):
    from botkit.metrics import prepare_multiprocess_dir

    (tmp_path / "counter_123.db").write_bytes(b"old")
    (tmp_path / "keep.txt").write_text("not ours")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    prepare_multiprocess_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]



TRACING = textwrap.dedent("""
    from botkit import tracing
    on = tracing.setup()
    first, second = tracing.span("botkit.webhook", delivery_id="d-1"), tracing.span("botkit.event", lane=None)
    with first, second:
        parent = tracing.traceparent()
    print(on, first is second, parent is None)
""")


@pytest.mark.parametrize(("otel_env", "expected"), [
    ({}, "False True True"),  # not configured: no tracer, one shared no-op for every span, nothing stored
    # configured: real spans if the otel extra is installed, else still the no-op
    ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"},
     "False True True" if importlib.util.find_spec("opentelemetry.sdk") is None else "True False False"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_SDK_DISABLED": "true"}, "False True True"),
    ({"OTEL_TRACES_EXPORTER": "none"}, "False True True"),
])
def test_tracing_only_when_opentelemetry_is_configured(otel_env, expected):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(otel_env, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", TRACING], env=env, check=True, capture_output=True, text=True,
                         timeout=60).stdout
    assert out.strip() == expected
