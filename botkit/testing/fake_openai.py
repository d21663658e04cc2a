"""FakeOpenAI: a small server speaking the OpenAI wire format, scripted per test, on a loopback port.

The official `openai` client (3.x uses its own HTTP package, so respx cannot intercept it) talks to it as to
any OpenAI-compatible server:

    fake = FakeOpenAI()
    fake.reply("Hello!")                                   # the next answer
    fake.call_tool("handoff_to_human", {"reason": "angry"})
    fake.fail(429, times=3)                                # three rate-limit errors
    fake.reply("late", delay=5)                            # an answer that comes after 5 s
    async with fake.serve():
        client = AsyncOpenAI(base_url=fake.base_url, api_key="test")
        ...
    fake.requests[0].retry_count                           # from the x-stainless-retry-count header
    fake.requests[0].images                                # the image parts the model was given
    fake.transcribe("where is my parcel")                  # the next /v1/audio/transcriptions answer
    fake.transcriptions[0].data                            # the audio it was sent

Each request to /v1/chat/completions or /v1/responses takes the next scripted answer and renders it in that
API's shape. `/v1/embeddings` answers unscripted, with `embed()`: words hashed into EMBEDDING_DIMENSIONS
dimensions, so texts sharing words are close and others are not (as floats, or base64 as the SDK asks).
With the script empty it answers `default` (when set) or 400, which the client does not retry,
so a test that forgot an answer fails plainly.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import math
import re
import struct
import time
import zlib
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from botkit.testing.server import LoopbackFake

ERRORS = {  # status -> (type, code, message), as OpenAI answers them
    400: ("invalid_request_error", None, "Bad request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
    500: ("server_error", None, "The server had an error while processing your request."),
    503: ("server_error", None, "The engine is currently overloaded."),
}


@dataclass
class ToolCall:
    name: str
    arguments: dict[str, Any]
    id: str = ""


@dataclass
class Answer:
    """One scripted answer: text and/or tool calls, or an error status; `delay` seconds before it."""

    text: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    status: int = 200
    code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    prompt_tokens: int = 20
    completion_tokens: int = 10


@dataclass
class TranscriptionRequest:
    """One `/v1/audio/transcriptions` request: the model named and the file sent."""

    model: str
    name: str
    content_type: str
    data: bytes


@dataclass
class ModelRequest:
    """One request as the fake received it."""

    path: str
    headers: dict[str, str]
    json: Any
    time: float

    @property
    def api(self) -> str:
        return "responses" if self.path.endswith("/responses") else "chat"

    @property
    def retry_count(self) -> int:
        """0 on the first attempt; the SDK counts its own retries in this header."""
        return int(self.headers.get("x-stainless-retry-count", "0"))

    @property
    def tool_names(self) -> list[str]:
        tools = (self.json or {}).get("tools") or []
        return [t.get("name") or t.get("function", {}).get("name") for t in tools]

    @property
    def conversation(self) -> list[dict[str, Any]]:
        """The messages sent: chat `messages`, or the Responses `instructions` as a system message plus `input`."""
        body = self.json or {}
        if self.api == "chat":
            return list(body.get("messages", []))
        items = body.get("input", [])
        items = [{"role": "user", "content": items}] if isinstance(items, str) else list(items)
        return ([{"role": "system", "content": body["instructions"]}] if body.get("instructions") else []) + items

    @property
    def images(self) -> list[str]:
        """The image URLs (or data URLs) the request gave the model, in order, in either API's shape."""
        found = []
        for item in self.conversation:
            content = item.get("content")
            for part in content if isinstance(content, list) else []:
                if part.get("type") == "image_url":
                    found.append(part["image_url"]["url"])
                elif part.get("type") == "input_image":
                    found.append(part["image_url"])
        return found


class FakeOpenAI(LoopbackFake):
    def __init__(self, *, api_key: str | None = None, default: str | None = None, delay: float = 0.0) -> None:
        self.api_key = api_key  # when set, other keys get 401
        self.default = default
        self.default_delay = delay
        self.script: deque[Answer] = deque()
        self.requests: list[ModelRequest] = []
        self.transcripts: deque[str] = deque()
        self.transcriptions: list[TranscriptionRequest] = []
        self.url: str | None = None
        self._ids = itertools.count(1)
        self.stopping = asyncio.Event()
        self.app = Starlette(routes=[
            Route("/v1/chat/completions", self._chat, methods=["POST"]),
            Route("/v1/responses", self._responses, methods=["POST"]),
            Route("/v1/models", self._models, methods=["GET"]),
            Route("/v1/audio/transcriptions", self._transcriptions, methods=["POST"]),
            Route("/v1/embeddings", self._embeddings, methods=["POST"]),
        ])

    # scripting ----------------------------------------------------------------------------------------
    def reply(self, text: str, *, delay: float = 0.0, times: int = 1, **tokens: int) -> Answer:
        return self._add(Answer(text=text, delay=delay, **tokens), times)

    def call_tool(self, name: str, arguments: dict[str, Any] | None = None, *, text: str | None = None,
                  delay: float = 0.0, **tokens: int) -> Answer:
        return self.call_tools([(name, arguments or {})], text=text, delay=delay, **tokens)

    def call_tools(self, calls: list[tuple[str, dict[str, Any]]], *, text: str | None = None, delay: float = 0.0,
                   **tokens: int) -> Answer:
        tool_calls = [ToolCall(name, args) for name, args in calls]
        return self._add(Answer(text=text, tool_calls=tool_calls, delay=delay, **tokens), 1)

    def fail(self, status: int, *, times: int = 1, code: str | None = None, retry_after_ms: int | None = None,
             delay: float = 0.0) -> Answer:
        """Answer the next `times` requests with an OpenAI-shaped error (429, 500, 401, ...)."""
        headers = {"retry-after-ms": str(retry_after_ms)} if retry_after_ms is not None else {}
        return self._add(Answer(status=status, code=code, headers=headers, delay=delay), times)

    def transcribe(self, text: str) -> None:
        """The text of the next transcription (with none scripted, a transcription gets 400)."""
        self.transcripts.append(text)

    def _add(self, answer: Answer, times: int) -> Answer:
        self.script.extend([answer] * times)
        return answer

    def requests_to(self, api: str) -> list[ModelRequest]:
        return [r for r in self.requests if r.api == api]

    # serving ------------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        assert self.url is not None, "use `async with fake.serve()` first"
        return self.url + "/v1"

    # endpoints ----------------------------------------------------------------------------------------
    async def _models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": "fake-model", "object": "model", "owned_by": "fake"}]})

    async def _embeddings(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        self.requests.append(ModelRequest(request.url.path, dict(request.headers), body, time.time()))
        if self.api_key is not None and request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401)
        if not isinstance(body, dict) or "model" not in body or "input" not in body:
            return _error(400, message="The request needs a JSON body with a model and an input.")
        texts = [body["input"]] if isinstance(body["input"], str) else list(body["input"])
        data = []
        for number, text in enumerate(texts):
            vector = embed(str(text))
            value: Any = (base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
                          if body.get("encoding_format") == "base64" else vector)
            data.append({"object": "embedding", "index": number, "embedding": value})
        tokens = sum(len(str(t).split()) for t in texts)
        return JSONResponse({"object": "list", "data": data, "model": body["model"],
                             "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    async def _chat(self, request: Request) -> Response:
        body, answer = await self._take(request)
        if isinstance(answer, Response):
            return answer
        usage = {"prompt_tokens": answer.prompt_tokens, "completion_tokens": answer.completion_tokens,
                 "total_tokens": answer.prompt_tokens + answer.completion_tokens}
        message: dict[str, Any] = {"role": "assistant", "content": answer.text, "refusal": None}
        if answer.tool_calls:
            message["tool_calls"] = [
                {"id": c.id or f"call_{next(self._ids)}", "type": "function",
                 "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
                for c in answer.tool_calls]
        completion = {
            "id": f"chatcmpl-{next(self._ids)}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "fake-model"),
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": "tool_calls" if answer.tool_calls else "stop"}],
            "usage": usage,
        }
        if body.get("stream"):
            return StreamingResponse(self._chunks(completion), media_type="text/event-stream")
        return JSONResponse(completion)

    async def _chunks(self, completion: dict[str, Any]) -> AsyncIterator[bytes]:
        """Streaming chat: the whole answer in one delta, then the finish reason and [DONE]."""
        choice = completion["choices"][0]
        delta = dict(choice["message"])
        for number, call in enumerate(delta.get("tool_calls", [])):
            call["index"] = number
        base = {k: completion[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
        for part in ({"delta": delta, "finish_reason": None}, {"delta": {}, "finish_reason": choice["finish_reason"]}):
            yield f"data: {json.dumps(base | {'choices': [{'index': 0, **part}]})}\n\n".encode()
        yield b"data: [DONE]\n\n"

    async def _responses(self, request: Request) -> Response:
        body, answer = await self._take(request)
        if isinstance(answer, Response):
            return answer
        output: list[dict[str, Any]] = []
        if answer.text is not None:
            output.append({"type": "message", "id": f"msg_{next(self._ids)}", "status": "completed",
                           "role": "assistant",
                           "content": [{"type": "output_text", "text": answer.text, "annotations": []}]})
        for call in answer.tool_calls:
            output.append({"type": "function_call", "id": f"fc_{next(self._ids)}",
                           "call_id": call.id or f"call_{next(self._ids)}", "name": call.name,
                           "arguments": json.dumps(call.arguments), "status": "completed"})
        return JSONResponse({
            "id": f"resp_{next(self._ids)}", "object": "response", "created_at": int(time.time()),
            "status": "completed", "model": body.get("model", "fake-model"), "output": output,
            "parallel_tool_calls": True, "tool_choice": "auto", "tools": body.get("tools", []),
            "usage": {"input_tokens": answer.prompt_tokens, "output_tokens": answer.completion_tokens,
                      "total_tokens": answer.prompt_tokens + answer.completion_tokens,
                      "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}},
        })

    async def _transcriptions(self, request: Request) -> Response:
        """`POST /v1/audio/transcriptions`: multipart `file` and `model`; answers `{"text": ...}` (json format)."""
        from botkit.testing.fake_chatwoot import parse_multipart

        if self.api_key is not None and request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401)
        fields, files = parse_multipart(await request.body(), request.headers.get("content-type", ""))
        upload = next((f for f in files if f.field == "file"), None)
        if upload is None or "model" not in fields:
            return _error(400, message="The request needs a file and a model.")
        self.transcriptions.append(TranscriptionRequest(fields["model"], upload.name, upload.content_type,
                                                        upload.data))
        if not self.transcripts:
            return _error(400, message="FakeOpenAI has no scripted transcript left for this request.")
        return JSONResponse({"text": self.transcripts.popleft()})

    async def _take(self, request: Request) -> tuple[dict[str, Any], Answer | Response]:
        """Record the request, take the next answer, wait its delay; an error or auth failure as a Response."""
        try:
            body = await request.json()
        except ValueError:
            body = None
        self.requests.append(ModelRequest(request.url.path, dict(request.headers), body, time.time()))
        if self.api_key is not None and request.headers.get("authorization") != f"Bearer {self.api_key}":
            return {}, _error(401)
        if not isinstance(body, dict) or "model" not in body:
            return {}, _error(400, message="The request needs a JSON body with a model.")
        if self.script:
            answer = self.script.popleft()
        elif self.default is not None:
            answer = Answer(text=self.default, delay=self.default_delay)
        else:
            return body, _error(400, message="FakeOpenAI has no scripted answer left for this request.")
        if answer.delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), answer.delay)
        if answer.status != 200:
            return body, _error(answer.status, code=answer.code, headers=answer.headers)
        return body, answer


EMBEDDING_DIMENSIONS = 256


def embed(text: str) -> list[float]:
    """The fake's embedding: each word (lowercase, a trailing s dropped) adds 1 to a dimension chosen by its
    hash, then the vector is scaled to unit length (as OpenAI's are)."""
    vector = [0.0] * EMBEDDING_DIMENSIONS
    for word in re.findall(r"\w+", text.lower()):
        word = word[:-1] if len(word) > 3 and word.endswith("s") else word
        vector[zlib.crc32(word.encode()) % EMBEDDING_DIMENSIONS] += 1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


def _error(status: int, *, code: str | None = None, message: str | None = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    kind, default_code, default_message = ERRORS.get(status, ("server_error", None, "Error."))
    if code == "insufficient_quota":
        kind, default_message = "insufficient_quota", "You exceeded your current quota."
    error = {"message": message or default_message, "type": kind, "param": None, "code": code or default_code}
    return JSONResponse({"error": error}, status_code=status, headers=headers)
