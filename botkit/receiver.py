"""The receiver: the Starlette app Chatwoot posts to.

`POST /webhook` (and `/webhooks/<bot>` when one server runs several bots) reads the raw body under a size cap,
checks it came from Chatwoot, classifies it, and makes it durable in one store operation that also dedupes;
only then does it answer 200. Nothing on this path waits on the network: Chatwoot gives a bot 5 seconds,
then hands the conversation to humans. Answers:

- 200 `{"status": "accepted" | "duplicate" | "ignored"}`: queued, already seen, or an event botkit does not know;
- 401 with no body for anything not from Chatwoot (the same for every reason);
- 400 for a body that is not a Chatwoot event, 413 for one over the cap;
- 500 when the store cannot take the event: Chatwoot retries only 429 and 500.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from botkit import events
from botkit.security import DELIVERY_HEADER, Verifier
from botkit.store.base import Store, StoreUnavailable
from botkit.worker import Worker, lane_for

log = logging.getLogger("botkit.receiver")

ACCEPTED = b'{"status":"accepted"}'
DUPLICATE = b'{"status":"duplicate"}'
IGNORED = b'{"status":"ignored"}'
NOT_AN_EVENT = b'{"error":"the body is not a Chatwoot event"}'


@dataclass
class Endpoint:
    """One bot as the receiver sees it: where deliveries for it arrive and how they are checked."""

    name: str
    verifier: Verifier
    bot: Any  # has `async handle(event, job)`; optional `startup()`, `shutdown()`, `on_dead_letter(...)`


@dataclass
class Receiver:
    store: Store
    endpoints: Mapping[str, Endpoint]
    default: str | None = None  # the bot served at plain /webhook
    max_body_bytes: int = 1024 * 1024
    observe: Callable[[str, str, float], None] = field(default=lambda bot, outcome, seconds: None)

    async def webhook(self, request: Request) -> Response:
        started = time.perf_counter()
        name = request.path_params.get("bot", self.default)
        endpoint = self.endpoints.get(name) if name is not None else None
        outcome, response = await self._receive(request, endpoint)
        self.observe(name or "-", outcome, time.perf_counter() - started)
        return response

    async def _receive(self, request: Request, endpoint: Endpoint | None) -> tuple[str, Response]:
        if endpoint is None:
            return "not_found", Response(status_code=404)
        body = await _read_capped(request, self.max_body_bytes)
        if body is None:
            return "too_large", Response(status_code=413)
        if not endpoint.verifier.verify(request.headers, body):
            return "unauthorized", Response(status_code=401)
        try:
            payload = json.loads(body)
            routing = events.route(payload)
        except Exception:  # bad JSON, MalformedEvent, or a shape route() did not foresee: never a 500
            return "malformed", Response(NOT_AN_EVENT, status_code=400, media_type="application/json")
        if routing is None:
            return "ignored", Response(IGNORED, media_type="application/json")
        delivery_id = request.headers.get(DELIVERY_HEADER) or None
        keys = [f"{endpoint.name}/{routing.dedupe_key}"]
        if delivery_id:
            keys.append(f"{endpoint.name}/d:{delivery_id[:200]}")
        try:
            accepted = await self.store.enqueue(
                keys=keys, lane=lane_for(endpoint.name, routing.lane), event=routing.event, body=body,
                delivery_id=delivery_id,
            )
        except StoreUnavailable as exc:
            log.error("could not queue a delivery, answering 500 so Chatwoot retries: %s", exc,
                      extra={"delivery_id": delivery_id})
            return "store_error", Response(status_code=500)
        if not accepted:
            return "duplicate", Response(DUPLICATE, media_type="application/json")
        return "accepted", Response(ACCEPTED, media_type="application/json")


async def _read_capped(request: Request, limit: int) -> bytes | None:
    """The raw body, or None when it is larger than `limit` (checked before and while reading)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
    except ClientDisconnect:
        return b""
    return b"".join(chunks)


def create_app(
    receiver: Receiver,
    *,
    worker: Worker | None = None,
    shutdown_timeout: float = 10.0,
    on_startup: Callable[[], Awaitable[None]] | None = None,
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
    stuck_after: float = 300.0,
) -> Starlette:
    """The ASGI app: the store opens, bots start and the worker runs for the app's lifetime."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await receiver.store.open()
        for endpoint in receiver.endpoints.values():
            if hasattr(endpoint.bot, "startup"):
                await endpoint.bot.startup()
        if on_startup is not None:
            await on_startup()
        if worker is not None:
            worker.start()
        try:
            yield
        finally:
            if worker is not None:
                await worker.stop(shutdown_timeout)
            if on_shutdown is not None:
                await on_shutdown()
            for endpoint in receiver.endpoints.values():
                if hasattr(endpoint.bot, "shutdown"):
                    await endpoint.bot.shutdown()
            await receiver.store.close()

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        problems: list[str] = []
        try:
            await receiver.store.ping()
            stats = await receiver.store.stats()
        except StoreUnavailable:
            return JSONResponse({"status": "unavailable", "problems": ["the store does not answer"]}, 503)
        if worker is not None and not worker.running:
            problems.append("the worker is not running")
        if worker is not None and stats.oldest_age > stuck_after and stats.in_flight == 0:
            problems.append(f"the oldest queued event has waited {stats.oldest_age:.0f} s")
        body: dict[str, Any] = {
            "status": "unavailable" if problems else "ok",
            "queue": {"waiting": stats.waiting, "in_flight": stats.in_flight,
                      "oldest_age": round(stats.oldest_age, 3), "dead_letters": stats.dead_letters},
        }
        if problems:
            body["problems"] = problems
        return JSONResponse(body, status_code=503 if problems else 200)

    routes = [
        Route("/webhook", receiver.webhook, methods=["POST"]),
        Route("/webhooks/{bot}", receiver.webhook, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.receiver = receiver
    app.state.worker = worker
    return app
