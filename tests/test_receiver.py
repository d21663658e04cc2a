"""The receiver over a real socket: uvicorn on 127.0.0.1, the real httpx client."""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from botkit.app import build_app
from botkit.config import load_settings
from botkit.store.base import StoreUnavailable
from botkit.testing.server import serve_app
from tests.conftest import SECRET, load_payload, message, signed


class Recorder:
    def __init__(self) -> None:
        self.events = []

    async def handle(self, event, job) -> None:
        self.events.append(event)


def make_settings(**overrides):
    values = {"chatwoot_webhook_secret": SECRET, "botkit_store": "memory://", "botkit_max_body_bytes": 64 * 1024}
    return load_settings(env_file=None, **{**values, **overrides})


@pytest.fixture
async def server():
    bot = Recorder()
    app = build_app(make_settings(), bot, run_worker=False)
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url) as client:
        yield client


async def post(client, body, **kwargs):
    raw, headers = signed(body, **kwargs)
    return await client.post("/webhook", content=raw, headers=headers)


async def test_accepted_then_duplicate_by_delivery_id(server):
    body = load_payload("message_created")
    first = await post(server, body, delivery_id="d-1")
    again = await post(server, body, delivery_id="d-1")
    assert (first.status_code, first.json()) == (200, {"status": "accepted"})
    assert (again.status_code, again.json()) == (200, {"status": "duplicate"})


async def test_same_message_under_a_new_delivery_id_is_a_duplicate(server):  # Chatwoot issue #11901
    body = load_payload("message_created")
    assert (await post(server, body, delivery_id="a")).json() == {"status": "accepted"}
    assert (await post(server, body, delivery_id="b")).json() == {"status": "duplicate"}


async def test_the_contacts_answer_is_not_a_duplicate_of_a_status_update(server):
    status_update = load_payload("message_updated")
    del status_update["content_attributes"]["submitted_values"]
    answer = load_payload("message_updated")
    assert (await post(server, status_update, delivery_id="a")).json() == {"status": "accepted"}
    assert (await post(server, answer, delivery_id="b")).json() == {"status": "accepted"}


async def test_unknown_event_is_acked_and_ignored(server):
    response = await post(server, {"event": "contact_updated", "id": 4})
    assert (response.status_code, response.json()) == (200, {"status": "ignored"})


@pytest.mark.parametrize("raw", [b"not json", b"[1,2]", b'{"no_event": 1}', b'{"event": 5}', b"\xff\xfe"])
async def test_malformed_bodies_are_400(server, raw):
    response = await post(server, raw)
    assert response.status_code == 400
    assert response.json() == {"error": "the body is not a Chatwoot event"}


async def test_oversize_body_is_413_before_and_after_reading(server):
    big = json.dumps({**load_payload("message_created"), "pad": "x" * 70_000}).encode()
    assert (await post(server, big)).status_code == 413

    async def chunks():  # no Content-Length: the cap holds while streaming
        for _ in range(80):
            yield b"x" * 1024

    raw, headers = signed(b"ignored")
    response = await server.post("/webhook", content=chunks(), headers=headers)
    assert response.status_code == 413


@pytest.mark.parametrize("case", ["no headers", "bad signature", "stale", "wrong secret", "body alone"])
async def test_every_rejection_is_the_same_bare_401(server, case, caplog):
    body = json.dumps(load_payload("message_created")).encode()
    raw, headers = signed(body)
    if case == "no headers":
        headers = {"Content-Type": "application/json"}
    elif case == "bad signature":
        headers["X-Chatwoot-Signature"] = "sha256=" + "0" * 64
    elif case == "stale":
        raw, headers = signed(body, timestamp=1_000_000_000)
    elif case == "wrong secret":
        raw, headers = signed(body, secret="not-the-secret")
    elif case == "body alone":
        import hashlib
        import hmac
        headers["X-Chatwoot-Signature"] = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    with caplog.at_level(logging.DEBUG):
        response = await server.post("/webhook", content=raw, headers=headers)
    assert (response.status_code, response.content) == (401, b"")
    assert SECRET not in caplog.text and headers.get("X-Chatwoot-Signature", "§") not in caplog.text


async def test_unknown_bot_path_is_404(server):
    raw, headers = signed(load_payload("message_created"))
    assert (await server.post("/webhooks/nobody", content=raw, headers=headers)).status_code == 404


async def test_health_and_readiness(server):
    assert (await server.get("/healthz")).json() == {"status": "ok"}
    await post(server, message(5, 500))
    ready = await server.get("/readyz")
    # run_worker=False: this server only receives, so readiness does not ask for a worker
    assert ready.status_code == 200 and ready.json()["queue"]["waiting"] == 1


async def test_store_failure_is_500_so_chatwoot_retries():
    class BrokenStore:
        url = "broken://"

        async def open(self):
            pass

        async def close(self):
            pass

        async def enqueue(self, **kwargs):
            raise StoreUnavailable("disk full")

    bot = Recorder()
    app = build_app(make_settings(), bot, run_worker=False)
    app.state.receiver.store = BrokenStore()
    async with serve_app(app, lifespan="off") as url, httpx.AsyncClient(base_url=url) as client:
        response = await post(client, load_payload("message_created"))
    assert response.status_code == 500


async def test_concurrent_duplicates_are_accepted_once(server):
    body = message(9, 900, "same message")
    answers = await asyncio.gather(*(post(server, body, delivery_id=f"d{i}") for i in range(5)))
    assert sorted(a.json()["status"] for a in answers) == ["accepted"] + ["duplicate"] * 4


# Hypothesis: mutated bodies and headers never give a 5xx and never queue an unverified event ------------
headers_strategy = st.dictionaries(
    st.sampled_from(["X-Chatwoot-Signature", "X-Chatwoot-Timestamp", "X-Chatwoot-Delivery", "Content-Length",
                     "Authorization", "Content-Type"]),
    # h11 refuses to send a value with leading or trailing whitespace, so the client would fail, not the server
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80).map(str.strip),
    max_size=4,
)
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                       max_size=3), max_leaves=10)


def mutate(body: dict, data) -> dict:
    if not body:  # an earlier mutation may have left an empty object here
        return body
    key = data.draw(st.sampled_from(sorted(body)))
    body[key] = data.draw(json_values)
    return body


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
async def test_fuzzed_unsigned_requests_never_5xx_and_never_queue(server, data):
    raw = data.draw(st.one_of(st.binary(max_size=300),
                              st.builds(lambda b: json.dumps(b).encode(), json_values)))
    headers = {k: v for k, v in data.draw(headers_strategy).items() if k != "Content-Length"}
    response = await server.post("/webhook", content=raw, headers=headers)
    assert response.status_code == 401
    stats = (await server.get("/readyz")).json()["queue"]
    assert stats["waiting"] == 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
async def test_fuzzed_signed_real_shapes_never_5xx(server, data):
    name = data.draw(st.sampled_from(["message_created", "message_updated", "conversation_updated",
                                      "webwidget_triggered"]))
    body = mutate(load_payload(name), data)
    if data.draw(st.booleans()) and isinstance(body.get("conversation"), dict):
        mutate(body["conversation"], data)
    response = await post(server, body)
    assert response.status_code in (200, 400), response.text


# Readiness: the store answers, the worker runs, the queue moves ------------------------------------------
class NeverClaims:
    """A store wrapper for the worker only: it claims nothing, as a wedged worker would."""

    def __init__(self, store) -> None:
        self.store = store
        self.lease = None

    async def claim(self, limit):
        return []

    async def wait(self, timeout):
        await asyncio.sleep(timeout)

    def __getattr__(self, name):
        return getattr(self.store, name)


async def test_readiness_reports_a_stuck_queue_a_stopped_worker_and_a_silent_store():
    from botkit.receiver import Endpoint, Receiver, create_app
    from botkit.security import Verifier
    from botkit.store.memory import MemoryStore
    from botkit.worker import Worker

    store = MemoryStore()
    receiver = Receiver(store, {"default": Endpoint("default", Verifier([SECRET.encode()]), Recorder())},
                        default="default")
    worker = Worker(NeverClaims(store), {"default": receiver.endpoints["default"].bot}, poll_interval=0.05)
    app = create_app(receiver, worker=worker, stuck_after=0.2)
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/readyz")).status_code == 200
        await post(client, message(5, 500))
        await asyncio.sleep(0.3)
        stuck = await client.get("/readyz")
        assert stuck.status_code == 503
        assert stuck.json()["problems"][0].startswith("the oldest queued event has waited")

        await worker.stop(1)
        stopped = (await client.get("/readyz")).json()
        assert "the worker is not running" in stopped["problems"]

        async def silent():
            raise StoreUnavailable("connection refused")

        store.ping = silent
        down = await client.get("/readyz")
        assert (down.status_code, down.json()["problems"]) == (503, ["the store does not answer"])
        assert (await client.get("/healthz")).status_code == 200  # alive, though not ready
