"""One trace from the webhook to the reply, across the queue and the worker process: `botkit serve` (a real
subprocess, its worker a child process) exports OTLP over HTTP/protobuf to a stand-in collector on
127.0.0.1, and the fake Chatwoot sees the trace context on the reply's request."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from botkit.adapters.keywords import GUIDE_FALLBACK
from botkit.testing.fake_chatwoot import FakeChatwoot
from botkit.testing.server import serve_app
from tests.conftest import message, signed

trace_service_pb2 = pytest.importorskip("opentelemetry.proto.collector.trace.v1.trace_service_pb2",
                                        reason="needs the otel extra (pip install -e '.[otel]')")


@dataclass(frozen=True)
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    pid: int
    attributes: dict


class Collector:
    """What an OpenTelemetry collector's OTLP/HTTP receiver does with POST /v1/traces, keeping the spans."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.arrived = asyncio.Event()
        self.app = Starlette(routes=[Route("/v1/traces", self.traces, methods=["POST"])])

    async def traces(self, request: Request) -> Response:
        export = trace_service_pb2.ExportTraceServiceRequest.FromString(await request.body())
        for resource_spans in export.resource_spans:
            resource = {a.key: a.value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for s in scope_spans.spans:
                    attributes = {a.key: a.value.string_value or a.value.int_value for a in s.attributes}
                    self.spans.append(Span(s.name, s.trace_id.hex(), s.span_id.hex(), s.parent_span_id.hex(),
                                           resource["process.pid"].int_value, attributes))
        self.arrived.set()
        response = trace_service_pb2.ExportTraceServiceResponse()
        return Response(response.SerializeToString(), media_type="application/x-protobuf")

    async def wait_for(self, name: str, trace_id: str | None = None, timeout: float = 30) -> Span:
        """The first span of that name (in that trace), once it has arrived."""
        def found() -> Span | None:
            return next((s for s in self.spans if s.name == name and trace_id in (None, s.trace_id)), None)

        async with asyncio.timeout(timeout):
            while found() is None:
                self.arrived.clear()
                await self.arrived.wait()
        span = found()
        assert span is not None
        return span


async def test_one_trace_from_the_webhook_to_the_chatwoot_call_across_the_worker_process(server_process, tmp_path):
    collector = Collector()
    fake = FakeChatwoot()
    fake.add_conversation(conversation_id=901, status="pending")
    async with serve_app(collector.app, lifespan="off") as collector_url, fake.serve():
        server = await asyncio.to_thread(
            server_process, BOTKIT_STORE=f"sqlite:///{tmp_path}/botkit.db", CHATWOOT_BASE_URL=fake.url,
            CHATWOOT_BOT_TOKEN=fake.bot_token, BOTKIT_TEAMS="billing=3,technical=4", BOTKIT_LOG_FORMAT="json",
            BOTKIT_LOG_LEVEL="DEBUG", OTEL_EXPORTER_OTLP_ENDPOINT=collector_url, OTEL_BSP_SCHEDULE_DELAY="100",
            OTEL_SERVICE_NAME="shop-bot")
        raw, headers = signed(message(901, 55_001, "hello"), delivery_id="trace-1")
        async with httpx.AsyncClient(timeout=10) as client:
            answer = await client.post(f"{server.url}/webhook", content=raw, headers=headers)
        assert answer.status_code == 200

        webhook = await collector.wait_for("botkit.webhook")
        for _ in range(300):  # the reply reaches the fake
            if fake.messages(901):
                break
            await asyncio.sleep(0.05)
        # the reply's request carries the trace context: its parent is a Chatwoot call's span in that trace
        [reply] = fake.requests_to("POST", "/api/v1/accounts/1/conversations/901/messages")
        version, trace_id, parent_id, _flags = reply.headers["traceparent"].split("-")
        assert (version, trace_id) == ("00", webhook.trace_id)
        chatwoot = await collector.wait_for("botkit.chatwoot", trace_id)
        for _ in range(300):
            if any(s.span_id == parent_id for s in collector.spans):
                break
            await asyncio.sleep(0.05)

    assert [m["content"] for m in fake.messages(901) if m["message_type"] == 1] == [GUIDE_FALLBACK]
    by_id = {s.span_id: s for s in collector.spans}
    chatwoot = by_id[parent_id]
    # one trace: webhook -> (the queue) -> event -> handler -> the Chatwoot call that sent the reply
    chain = [chatwoot]
    while chain[-1].parent_id in by_id:
        chain.append(by_id[chain[-1].parent_id])
    assert [s.name for s in chain] == ["botkit.chatwoot", "botkit.handler", "botkit.event", "botkit.webhook"]
    assert chain[-1] == webhook and {s.trace_id for s in chain} == {webhook.trace_id}
    assert webhook.pid == server.process.pid and chatwoot.pid != webhook.pid  # the worker's own process
    assert webhook.attributes["delivery_id"] == "trace-1"
    assert chatwoot.attributes["endpoint"].endswith("/conversations/{conversation_id}/messages")
    # log lines carry the trace id; in JSON mode uvicorn's own lines are JSON too
    lines = [json.loads(line) for line in server.log.read_text().splitlines() if line.startswith("{")]
    assert len(lines) == len(server.log.read_text().splitlines()), "a log line that is not JSON"
    assert any(line["logger"] == "uvicorn.error" and "Started server process" in line["message"] for line in lines)
    handling = [line for line in lines if line.get("delivery_id") == "trace-1" and line["logger"] == "botkit.worker"]
    assert handling and {line.get("trace_id") for line in handling} == {webhook.trace_id}


async def test_tracing_stays_off_without_otel_variables_and_nothing_is_stored(server_process, tmp_path):
    fake = FakeChatwoot()
    fake.add_conversation(conversation_id=902, status="pending")
    async with fake.serve():
        server = await asyncio.to_thread(
            server_process, BOTKIT_STORE=f"sqlite:///{tmp_path}/botkit.db", CHATWOOT_BASE_URL=fake.url,
            CHATWOOT_BOT_TOKEN=fake.bot_token, BOTKIT_TEAMS="billing=3,technical=4")
        raw, headers = signed(message(902, 55_002, "hello"), delivery_id="trace-2")
        async with httpx.AsyncClient(timeout=10) as client:
            assert (await client.post(f"{server.url}/webhook", content=raw, headers=headers)).status_code == 200
        for _ in range(300):
            if fake.messages(902):
                break
            await asyncio.sleep(0.05)
    [reply] = fake.requests_to("POST", "/api/v1/accounts/1/conversations/902/messages")
    assert "traceparent" not in reply.headers
