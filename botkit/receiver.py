"""The receiver: the Starlette app Chatwoot posts to.

`POST /webhook` (and `/webhooks/<bot>` when one server runs several bots) reads the raw body under a size cap,
checks it came from Chatwoot, classifies it, and makes it durable in one store operation that also dedupes;
only then does it answer 200. Nothing on this path waits on the network: Chatwoot gives a bot 5 seconds,
then hands the conversation to humans. Answers:

- 200 `{"status": "accepted" | "duplicate" | "ignored"}`: queued, already seen, or an event botkit does not know;
- 401 with no body for anything not from Chatwoot (the same for every reason); 429 with no body once a client
  address has failed authentication more than its budget allows (`AddressLimiter`);
- 400 for a body that is not a Chatwoot event, 413 for one over the cap (20 MiB by default: an e-mail
  delivery carries the whole thread, text and HTML, twice, so several MB are normal;
  `app/presenters/mail_presenter.rb`), with a warning giving its size and the setting to raise (at most one a
  minute: the body cannot be authenticated unread, so anyone can send one);
- 500 when the store cannot take the event, and once the server is shutting down: Chatwoot retries only 429
  and 500.

A delivery that fails authentication costs no disk write and no log line, so a flood of forged deliveries
costs only CPU, and the per-address budget bounds how much of that one address can take. A real Chatwoot's
deliveries pass authentication and never reach the limiter, even from an address that also sends forgeries.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from botkit import events, tracing
from botkit.config import Settings
from botkit.ratelimit import refill
from botkit.runtime import ServedBot, served
from botkit.security import DELIVERY_HEADER, Verifier
from botkit.store.base import Store, StoreUnavailable, lane_for

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
    bot: ServedBot  # any object with `async handle(event, job)` becomes one (botkit.runtime.served)

    def __post_init__(self) -> None:
        self.bot = served(self.bot)


@dataclass
class Receiver:
    store: Store
    endpoints: Mapping[str, Endpoint]
    default: str | None = None  # the bot served at plain /webhook
    max_body_bytes: int = 20 * 1024 * 1024
    # (bot, outcome, seconds) of every delivery; `bot` is "-" for a path that names no bot served here
    observe: Callable[[str, str, float], None] = field(default=lambda bot, outcome, seconds: None)
    limiter: AddressLimiter | None = None  # budget of failed authentications per client address
    closing: bool = False  # set when the app shuts down: the store is about to close
    _too_large_logged: float = -60.0  # monotonic time of the last "too large" warning

    async def webhook(self, request: Request) -> Response:
        started = time.perf_counter()
        name = request.path_params.get("bot", self.default)
        endpoint = self.endpoints.get(name) if name is not None else None
        with tracing.continued(request.headers), \
                tracing.span("botkit.webhook", delivery_id=request.headers.get(DELIVERY_HEADER)):
            outcome, response = await self._receive(request, endpoint)
        self.observe(endpoint.name if endpoint is not None else "-", outcome, time.perf_counter() - started)
        return response

    async def _receive(self, request: Request, endpoint: Endpoint | None) -> tuple[str, Response]:
        if endpoint is None:
            return "not_found", Response(status_code=404)
        if self.closing:  # Chatwoot retries a 500 about 3 s later, by when another process or this one is up
            return "shutting_down", Response(status_code=500)
        body = await _read_capped(request, self.max_body_bytes)
        if body is None:
            if time.monotonic() - self._too_large_logged < 60:
                return "too_large", Response(status_code=413)
            self._too_large_logged = time.monotonic()
            log.warning("refused a delivery of %s bytes: over BOTKIT_MAX_BODY_BYTES=%d; raise it (and the proxy's "
                        "limit) to accept it", request.headers.get("content-length") or "more than the cap",
                        self.max_body_bytes, extra={"delivery_id": request.headers.get(DELIVERY_HEADER)})
            return "too_large", Response(status_code=413)
        if not endpoint.verifier.verify(request.headers, body):
            address = request.client.host if request.client else "-"
            if self.limiter is not None and not self.limiter.allow(address):
                return "rate_limited", Response(status_code=429, headers={"connection": "close"})
            return "unauthorized", Response(status_code=401)
        try:
            payload = events.loads(body)
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
                delivery_id=delivery_id, trace=tracing.traceparent(),
            )
        except StoreUnavailable as exc:
            log.error("could not queue a delivery, answering 500 so Chatwoot retries: %s", exc,
                      extra={"delivery_id": delivery_id})
            return "store_error", Response(status_code=500)
        if not accepted:
            return "duplicate", Response(DUPLICATE, media_type="application/json")
        if log.isEnabledFor(logging.DEBUG):
            log.debug("queued", extra={"delivery_id": delivery_id, "event": routing.event,
                                       "lane": lane_for(endpoint.name, routing.lane)})
        return "accepted", Response(ACCEPTED, media_type="application/json")


class AddressLimiter:
    """A token bucket per client address for failed authentications, over at most `max_addresses` addresses.

    Each address may fail `burst` times at once and `per_second` times a second after that; beyond it the
    receiver answers 429 instead of 401. The least recently seen address is forgotten first.
    """

    def __init__(self, per_second: float = 10.0, burst: float = 100.0, max_addresses: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = per_second
        self.burst = burst
        self.max_addresses = max_addresses
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # address -> (tokens, updated)

    def allow(self, address: str) -> bool:
        now = self._clock()
        tokens, updated = self._buckets.pop(address, (self.burst, now))
        tokens = refill(tokens, updated, now, self.per_second, self.burst)
        allowed = tokens >= 1.0
        self._buckets[address] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > self.max_addresses:
            self._buckets.popitem(last=False)
        return allowed

    def retry_after(self, address: str) -> float:
        """Seconds until `address` may fail once more (0.0: it may now); spends nothing."""
        now = self._clock()
        tokens, updated = self._buckets.get(address, (self.burst, now))
        tokens = refill(tokens, updated, now, self.per_second, self.burst)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.per_second

    def __len__(self) -> int:
        return len(self._buckets)


def limiter_from_settings(settings: Settings) -> AddressLimiter | None:
    """BOTKIT_UNAUTHORIZED_PER_SECOND (0 turns the limit off) and BOTKIT_UNAUTHORIZED_BURST, per client address."""
    if settings.botkit_unauthorized_per_second == 0:
        return None
    return AddressLimiter(settings.botkit_unauthorized_per_second, settings.botkit_unauthorized_burst)


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
    worker: Any = None,  # a Worker, or a WorkerProcess (same start, stop and running)
    shutdown_timeout: float = 10.0,
    on_startup: Callable[[], Awaitable[None]] | None = None,
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
    stuck_after: float = 300.0,
    metrics: Any = None,
) -> Starlette:
    """The ASGI app: the store opens, bots start and the worker runs for the app's lifetime.

    On shutdown (uvicorn has stopped accepting connections and finished the open requests), webhook requests
    get 500, the worker finishes in-flight events within `shutdown_timeout` and hands the rest back to the
    store, then the bots stop and the store closes. `metrics` (a botkit.metrics.Metrics) adds `/metrics`.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await receiver.store.open()
        for endpoint in receiver.endpoints.values():
            await endpoint.bot.startup()
        if on_startup is not None:
            await on_startup()
        if worker is not None:
            worker.start()
        try:
            yield
        finally:
            receiver.closing = True
            if worker is not None:
                await worker.stop(shutdown_timeout)
            if on_shutdown is not None:
                await on_shutdown()
            for endpoint in receiver.endpoints.values():
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
        if receiver.closing:
            problems.append("the server is shutting down")
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

    async def scrape(request: Request) -> Response:
        try:
            stats = await receiver.store.stats()
        except StoreUnavailable:
            stats = None  # botkit_store_up 0, and no queue figures
        body, content_type = metrics.render(stats)
        return Response(body, media_type=content_type)

    routes = [
        Route("/webhook", receiver.webhook, methods=["POST"]),
        Route("/webhooks/{bot}", receiver.webhook, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
    if metrics is not None:
        routes.append(Route("/metrics", scrape, methods=["GET"]))
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.receiver = receiver
    app.state.worker = worker
    app.state.metrics = metrics
    return app
