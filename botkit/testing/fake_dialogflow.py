"""FakeDialogflow: an in-process gRPC server that answers DetectIntent for Dialogflow ES (v2) and CX (v3).

The real `SessionsAsyncClient` of google-cloud-dialogflow or google-cloud-dialogflow-cx talks to it over a
loopback channel, so a test exercises the real client library, its serialization and its error mapping:

    fake = FakeDialogflow()
    fake.on("track my order", "Which order?", dialogflow_payload(InputSelect(...).to_payload()))
    fake.on("agent", handoff(team="billing"))
    fake.fail_next(grpc.StatusCode.UNAVAILABLE, times=2)
    async with fake.serve():
        handler = DialogflowHandler(project_id="p", client=fake.es_client())

Create the fake's server, channel and clients inside the running event loop (grpc.aio binds to it).
A query nobody scripted matches the fallback intent, as a real agent does. Every request is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.cloud.dialogflow_v2 import types as es
from google.cloud.dialogflowcx_v3 import types as cx
from google.protobuf import struct_pb2

ES_SERVICE = "google.cloud.dialogflow.v2.Sessions"
CX_SERVICE = "google.cloud.dialogflow.cx.v3.Sessions"
FALLBACK_TEXT = "Sorry, could you say that another way?"


@dataclass(frozen=True)
class Text:
    """A text fulfillment message."""

    text: str


@dataclass(frozen=True)
class Payload:
    """A custom-payload fulfillment message (a Struct on the wire)."""

    payload: dict[str, Any]


@dataclass(frozen=True)
class LiveAgentHandoff:
    """CX only: the agent asks for a human (ES has no such message; it is left out of ES answers)."""

    metadata: dict[str, Any] = field(default_factory=dict)


def dialogflow_payload(message: dict[str, Any]) -> Payload:
    """A custom payload carrying a Chatwoot message as-is, e.g. InputSelect(...).to_payload()."""
    return Payload({k: v for k, v in message.items() if v is not None})


def handoff(team: str | int | None = None) -> Payload:
    """The payload Chatwoot's integration reads as a hand-off; `team` is botkit's extension."""
    return Payload({"action": "handoff", **({"team": team} if team is not None else {})})


def resolve() -> Payload:
    return Payload({"action": "resolve"})


@dataclass
class Answer:
    """What the agent answers to one query: messages in order, the intent, and how sure it is."""

    messages: list[Text | Payload | LiveAgentHandoff]
    intent: str = "scripted"
    confidence: float = 1.0
    fallback: bool = False


@dataclass(frozen=True)
class Query:
    """One DetectIntent request as the fake received it."""

    api: str  # "es" or "cx"
    session: str
    text: str
    language_code: str

    @property
    def session_id(self) -> str:
        return self.session.rsplit("/", 1)[-1]


@dataclass
class _Fault:
    code: grpc.StatusCode
    details: str
    times: int


class FakeDialogflow:
    def __init__(self) -> None:
        self.answers: dict[str, Answer] = {}
        self.fallback = Answer([Text(FALLBACK_TEXT)], intent="Default Fallback Intent", confidence=0.0,
                               fallback=True)
        self.requests: list[Query] = []
        self.address: str | None = None
        self.delay = 0.0  # seconds before each answer
        self._faults: list[_Fault] = []
        self._server: grpc.aio.Server | None = None
        self._channels: list[grpc.aio.Channel] = []

    # scripting --------------------------------------------------------------------------------------
    def on(self, text: str, *messages: str | Text | Payload | LiveAgentHandoff, intent: str | None = None,
           confidence: float = 1.0, fallback: bool = False) -> Answer:
        """Answer the query `text` (exact, case-insensitive) with these messages (str means Text)."""
        answer = Answer([Text(m) if isinstance(m, str) else m for m in messages], intent=intent or text,
                        confidence=confidence, fallback=fallback)
        self.answers[text.casefold()] = answer
        return answer

    def fail_next(self, code: grpc.StatusCode, times: int = 1, details: str = "") -> None:
        """The next `times` requests end with this gRPC status instead of an answer."""
        self._faults.append(_Fault(code, details or f"fake {code.name}", times))

    def queries(self, api: str | None = None) -> list[str]:
        return [q.text for q in self.requests if api is None or q.api == api]

    # serving ----------------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator[FakeDialogflow]:
        server = grpc.aio.server()
        server.add_generic_rpc_handlers([
            grpc.method_handlers_generic_handler(ES_SERVICE, {"DetectIntent": grpc.unary_unary_rpc_method_handler(
                self._detect_es, request_deserializer=es.DetectIntentRequest.deserialize,
                response_serializer=es.DetectIntentResponse.serialize)}),
            grpc.method_handlers_generic_handler(CX_SERVICE, {"DetectIntent": grpc.unary_unary_rpc_method_handler(
                self._detect_cx, request_deserializer=cx.DetectIntentRequest.deserialize,
                response_serializer=cx.DetectIntentResponse.serialize)}),
        ])
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        self._server, self.address = server, f"127.0.0.1:{port}"
        try:
            yield self
        finally:
            for channel in self._channels:
                await channel.close()
            self._channels.clear()
            await server.stop(None)
            self._server = self.address = None

    def channel(self) -> grpc.aio.Channel:
        """A loopback channel to the fake, closed when the fake stops."""
        assert self.address is not None, "use `async with fake.serve()` first"
        channel = grpc.aio.insecure_channel(self.address)
        self._channels.append(channel)
        return channel

    def es_client(self) -> Any:
        """The real ES SessionsAsyncClient, talking to this fake."""
        from google.cloud.dialogflow_v2.services.sessions import SessionsAsyncClient
        from google.cloud.dialogflow_v2.services.sessions.transports import SessionsGrpcAsyncIOTransport

        return SessionsAsyncClient(transport=SessionsGrpcAsyncIOTransport(channel=self.channel()))

    def cx_client(self) -> Any:
        """The real CX SessionsAsyncClient, talking to this fake."""
        from google.cloud.dialogflowcx_v3.services.sessions import SessionsAsyncClient
        from google.cloud.dialogflowcx_v3.services.sessions.transports import SessionsGrpcAsyncIOTransport

        return SessionsAsyncClient(transport=SessionsGrpcAsyncIOTransport(channel=self.channel()))

    # the service ------------------------------------------------------------------------------------
    async def _answer(self, query: Query, context: grpc.aio.ServicerContext) -> Answer:
        self.requests.append(query)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self._faults:
            fault = self._faults[0]
            fault.times -= 1
            if fault.times <= 0:
                self._faults.pop(0)
            await context.abort(fault.code, fault.details)
        return self.answers.get(query.text.casefold(), self.fallback)

    async def _detect_es(self, request: es.DetectIntentRequest, context: grpc.aio.ServicerContext) -> Any:
        text = request.query_input.text
        answer = await self._answer(Query("es", request.session, text.text, text.language_code), context)
        messages = []
        for m in answer.messages:
            if isinstance(m, Text):
                messages.append(es.Intent.Message(text=es.Intent.Message.Text(text=[m.text])))
            elif isinstance(m, Payload):
                messages.append(es.Intent.Message(payload=_struct(m.payload)))
        return es.DetectIntentResponse(response_id="fake", query_result=es.QueryResult(
            query_text=text.text, language_code=text.language_code, fulfillment_messages=messages,
            fulfillment_text=next((m.text for m in answer.messages if isinstance(m, Text)), ""),
            intent=es.Intent(display_name=answer.intent, is_fallback=answer.fallback),
            intent_detection_confidence=answer.confidence))

    async def _detect_cx(self, request: cx.DetectIntentRequest, context: grpc.aio.ServicerContext) -> Any:
        text = request.query_input.text.text
        language = request.query_input.language_code
        answer = await self._answer(Query("cx", request.session, text, language), context)
        messages = []
        for m in answer.messages:
            if isinstance(m, Text):
                messages.append(cx.ResponseMessage(text=cx.ResponseMessage.Text(text=[m.text])))
            elif isinstance(m, Payload):
                messages.append(cx.ResponseMessage(payload=_struct(m.payload)))
            else:
                messages.append(cx.ResponseMessage(
                    live_agent_handoff=cx.ResponseMessage.LiveAgentHandoff(metadata=_struct(m.metadata))))
        match_type = cx.Match.MatchType.NO_MATCH if answer.fallback else cx.Match.MatchType.INTENT
        return cx.DetectIntentResponse(response_id="fake", query_result=cx.QueryResult(
            text=text, language_code=language, response_messages=messages,
            match=cx.Match(match_type=match_type, confidence=answer.confidence,
                           intent=cx.Intent(display_name=answer.intent))))


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(value)
    return struct
