"""The Chatwoot REST API client: its one request path and the bot's endpoints, retried where safe.

Each request is an `httpx.Request` (explicit timeouts, the token in the `api-access-token` header, see
TOKEN_HEADER) handed to one shared transport, aiohttp's pool and keep-alive by default (`botkit.transport`: a
third of httpx's own per-request CPU).
Chatwoot's answers become typed errors that say what to do; tokens never appear in an error, a repr or a
log line (errors: botkit/chatwoot/errors.py; the administrator and platform endpoints provisioning uses:
botkit/chatwoot/admin.py). All retrying happens in `ChatwootClient._request`, under one policy:

- Requests that change nothing, or whose repetition ends in the same state (GET, toggle_status, labels POST,
  custom_attributes POST, typing, priority, PATCH), are retried on connection failures, timeouts, 429 and
  500/502/503/504.
- Requests that create something (a message, a note, an assignment, a conversation, a bot) or delete
  something are repeated only when Chatwoot cannot have acted on them:
    * connect errors, connect timeouts and pool timeouts: the request never left this process;
    * 429: Rack::Attack answers it in middleware, before any controller runs.
  Everything else raises `DeliveryUnknown` and is never sent again:
    * a read timeout or a dropped connection after the request was written: Chatwoot may be done with it;
    * 500: Rails answers 500 for an exception anywhere in the action, and the message builder saves the
      record before rendering and before the after-commit callbacks run, so the message can exist;
    * 502 and 504: a proxy lost or gave up waiting on a request it had already forwarded to Rails, which
      keeps running it;
    * 503: usually a proxy with no upstream, but some proxies (Envoy/Istio: "upstream connect error or
      disconnect/reset before headers") answer 503 for an upstream reset after forwarding the request, and
      nothing in the answer tells the two apart.
- 401, 403, 404 and 422 are never retried: the same request gets the same answer.

429s carry no Retry-After from Chatwoot, so waits are exponential with full jitter; a Retry-After that a
proxy adds is honoured. Retrying stops before a wait would pass the deadline (30 s by default). A
client-side token bucket (2400/min by default, below Chatwoot's 3000/min per IP) spaces every attempt.
"""

from __future__ import annotations

import asyncio
import json as _json
import logging
import random
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import SecretStr
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_before_delay

from botkit import metrics as _metrics
from botkit import tracing
from botkit.chatwoot.admin import AdminEndpoints
from botkit.chatwoot.errors import (
    ChatwootError,
    ChatwootUnreachable,
    DeliveryUnknown,
    NotFound,
    ServerError,
    error_for_response,
)
from botkit.files import File
from botkit.ratelimit import SharedBudget, TokenBucket
from botkit.rich import RichMessage
from botkit.transport import AiohttpTransport

if TYPE_CHECKING:
    from botkit.config import Settings

logger = logging.getLogger("botkit.chatwoot")

STATUSES = ("open", "resolved", "pending", "snoozed")
PRIORITIES = ("urgent", "high", "medium", "low")


# Retry policy -------------------------------------------------------------------------------------------

# Chatwoot documents `api_access_token`, but nginx drops headers with underscores unless
# `underscores_in_headers on`, and a bot behind such a proxy gets 401 for everything. Rails reads the
# hyphenated spelling as the same header (both are HTTP_API_ACCESS_TOKEN to Rack), so send that.
TOKEN_HEADER = "api-access-token"  # noqa: S105 - a header name, not a secret

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# Failures after which Chatwoot cannot have run the request at all.
NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class _Backoff:
    """Full-jitter exponential waits, or the server's Retry-After when it sent one."""

    def __init__(self, base: float, cap: float) -> None:
        self.base = base
        self.cap = cap

    def __call__(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, ChatwootError) and error.retry_after is not None:
            return error.retry_after
        return random.uniform(0, min(self.cap, self.base * 2 ** (state.attempt_number - 1)))


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    logger.warning(
        "chatwoot request failed, retrying: %s (attempt %d, next in %.2fs)",
        repr(error), state.attempt_number, state.upcoming_sleep,
    )


_URLS_KEPT = 4096  # absolute URLs a client keeps (cleared when full: a miss costs one parse)


def _is_retry_safe(error: BaseException) -> bool:
    return isinstance(error, ChatwootError) and error._retry_safe


# The client ---------------------------------------------------------------------------------------------


class ChatwootClient(AdminEndpoints):
    """Async client for Chatwoot's application and platform APIs; use `async with` or call `aclose()`.

    It offers the Chatwoot actions a bot takes (botkit.runtime.ChatwootActions), as the dry run's console does."""

    dry_run = False

    def __init__(
        self,
        base_url: str,
        token: str | SecretStr,
        *,
        timeout: float = 10.0,
        deadline: float = 30.0,
        rate_per_minute: float = 2400,
        transport: httpx.AsyncBaseTransport | None = None,
        rate_limiter: TokenBucket | SharedBudget | None = None,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        max_connections: int = 8,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token if isinstance(token, SecretStr) else SecretStr(token)
        if not self._token.get_secret_value():
            raise ValueError("The Chatwoot token is empty; set the bot's or the administrator's access token.")
        self.deadline = deadline
        self.rate_limiter = rate_limiter or TokenBucket(rate_per_minute)
        self.metrics: _metrics.NullMetrics = _metrics.NULL  # botkit serve sets its Metrics here
        self._backoff = _Backoff(backoff_base, backoff_cap)
        # Requests wait on this semaphore rather than in the transport's pool, so `busy` can tell that they
        # do; a few keep-alive connections carry a bot's load to one Chatwoot (8 beat 16 and 100 in e2e.py).
        self._slots = asyncio.Semaphore(max_connections)
        self._transport = transport or AiohttpTransport(max_connections=max_connections, keepalive_expiry=30.0)
        self._headers = {TOKEN_HEADER: self._token.get_secret_value(), "Accept": "application/json"}
        self._timeouts = httpx.Timeout(timeout, connect=min(timeout, 5.0))
        self._base_url = httpx.URL(self.base_url + "/")  # relative paths join it, as httpx's client joins them
        # path -> absolute URL: httpx parses a URL string twice a request (~0.1 ms of CPU); a conversation's
        # requests repeat their paths (its replies, typing on and off), so each path is parsed once.
        self._urls: dict[str, httpx.URL] = {}

    @classmethod
    def from_settings(cls, settings: Settings, token: str | SecretStr | None = None, **kwargs: Any) -> ChatwootClient:
        """A client for `settings.chatwoot_base_url`, with the bot token unless another token is given."""
        from botkit.config import ConfigError

        if not settings.chatwoot_base_url:
            raise ConfigError("CHATWOOT_BASE_URL is not set; set it to Chatwoot's URL, e.g. https://chat.example.com.")
        token = token if token is not None else settings.chatwoot_bot_token
        if token is None:
            raise ConfigError("CHATWOOT_BOT_TOKEN is not set; set it to the agent bot's access token.")
        kwargs.setdefault("rate_per_minute", settings.chatwoot_rate_per_minute)
        return cls(settings.chatwoot_base_url, token, **kwargs)

    async def __aenter__(self) -> ChatwootClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._transport.aclose()
        close_budget = getattr(self.rate_limiter, "aclose", None)  # a SharedBudget's Redis connections
        if close_budget is not None:
            await close_budget()

    @property
    def busy(self) -> bool:
        """Every connection is in use and requests are waiting: cosmetic calls (typing) should skip."""
        return self._slots.locked()

    def __repr__(self) -> str:
        return f"ChatwootClient(base_url={self.base_url!r}, token=**********)"

    # The one request path -------------------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        template: str,
        *,
        idempotent: bool,
        json: Any = None,
        files: Sequence[File] = (),
        final: frozenset[int] = frozenset(),
        **params: Any,
    ) -> Any:
        """Send one API request under the retry policy; returns the parsed JSON body ({} when empty).
        `final`: statuses raised at once, not retried (a 500 a look cannot get past).

        The first attempt runs outside tenacity: most calls succeed at once, and tenacity's machinery costs
        ~0.1 ms of CPU a call (bench/client.py --cpu). Its failure, if retry-safe, is the first attempt of
        the same policy, with the deadline counted from the first attempt's start.

        With `files`, the body is multipart: `json`'s fields as form fields and each file as `attachments[]`
        (built anew for each attempt from the bytes in hand).
        """
        endpoint = f"{method} {template}"
        path = template.format(**params)
        began = time.monotonic()

        def retry_safe(error: BaseException) -> bool:
            return _is_retry_safe(error) and getattr(error, "status", None) not in final

        try:
            return await self._send_once(method, path, endpoint, json, idempotent, files)
        except ChatwootError as error:
            if not retry_safe(error):
                raise
            first_failure: ChatwootError | None = error
        retrying = AsyncRetrying(
            retry=retry_if_exception(retry_safe),
            wait=self._backoff,
            stop=stop_before_delay(self.deadline - (time.monotonic() - began)),
            before_sleep=lambda state: (_log_retry(state), self.metrics.chatwoot_retry(endpoint)),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                if first_failure is not None:
                    failure, first_failure = first_failure, None
                    raise failure
                return await self._send_once(method, path, endpoint, json, idempotent, files)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send_once(self, method: str, path: str, endpoint: str, json: Any, idempotent: bool,
                         files: Sequence[File] = ()) -> Any:
        queued = time.perf_counter()
        await self.rate_limiter.acquire()
        started = time.perf_counter()
        if started - queued > 0.001:
            self.metrics.chatwoot_throttled(started - queued)
        with tracing.span("botkit.chatwoot", endpoint=endpoint):
            return await self._attempt(method, path, endpoint, json, idempotent, started, files)

    async def _attempt(self, method: str, path: str, endpoint: str, json: Any, idempotent: bool,
                       started: float, files: Sequence[File] = ()) -> Any:
        body: dict[str, Any] = {"json": json}
        if files:  # multipart: the fields as text, the files as attachments[]
            body = {"data": {k: _form_value(v) for k, v in (json or {}).items()},
                    "files": [("attachments[]", (f.name, f.data, f.content_type)) for f in files]}
        try:
            async with self._slots:
                response = await self._send(method, self._url(path), body)
        except NOT_SENT_ERRORS as exc:
            self.metrics.chatwoot_request(endpoint, "unreachable", time.perf_counter() - started)
            error: ChatwootError = ChatwootUnreachable(
                f"could not connect to Chatwoot ({type(exc).__name__})", endpoint=endpoint)
            error._retry_safe = True
            raise error from exc
        except httpx.TransportError as exc:
            self.metrics.chatwoot_request(endpoint, "no_answer", time.perf_counter() - started)
            if idempotent:
                error = ChatwootUnreachable(f"no answer from Chatwoot ({type(exc).__name__})", endpoint=endpoint)
                error._retry_safe = True
                raise error from exc
            raise DeliveryUnknown(
                f"the request was sent but no answer came ({type(exc).__name__})", endpoint=endpoint
            ) from exc
        self.metrics.chatwoot_request(endpoint, str(response.status_code), time.perf_counter() - started)
        if response.is_success:
            logger.debug("chatwoot %s -> %d", endpoint, response.status_code)
            if not response.content.strip():
                return {}
            try:
                return response.json()
            except ValueError:
                raise ServerError("Chatwoot answered with a body that is not JSON", status=response.status_code,
                                  endpoint=endpoint) from None
        error = error_for_response(response, endpoint, [self._token.get_secret_value()])
        if response.status_code in RETRYABLE_STATUSES:
            if idempotent or response.status_code == 429:
                error._retry_safe = True
            else:
                # A 5xx on a create: Chatwoot may have applied it (see the module docstring).
                raise DeliveryUnknown(
                    f"Chatwoot answered {error.detail!r}, which does not say whether it was applied",
                    status=response.status_code, endpoint=endpoint)
        raise error

    async def _send(self, method: str, url: httpx.URL, body: dict[str, Any]) -> httpx.Response:
        """One HTTP exchange, read whole, straight to the transport: httpx's client would add redirects, auth
        flows and a cookie jar that a bot's API calls never use, ~0.1 ms of CPU a request (bench/e2e.py's
        worker CPU per event: 0.91x)."""
        request = httpx.Request(method, url, headers={**self._headers, **tracing.inject({})}, **body,
                                extensions={"timeout": self._timeouts.as_dict()})
        response = await self._transport.handle_async_request(request)
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    def _url(self, path: str) -> httpx.URL:
        """The absolute URL of an API path, as httpx would merge it with the base URL (whose path it keeps)."""
        url = self._urls.get(path)
        if url is None:
            if len(self._urls) >= _URLS_KEPT:
                self._urls.clear()
            base, relative = self._base_url, httpx.URL(path)  # the merge httpx does for a relative URL
            url = self._urls[path] = base.copy_with(raw_path=base.raw_path + relative.raw_path.lstrip(b"/"))
        return url

    # Messages -------------------------------------------------------------------------------------------

    async def send_message(
        self,
        account_id: int,
        conversation_id: int,
        content: str | None = None,
        *,
        private: bool = False,
        content_type: str = "text",
        content_attributes: dict | None = None,
        echo_id: str | None = None,
        attachments: Sequence[File] = (),
    ) -> dict:
        """Post an outgoing message (or a private note); never sent twice. With `attachments` (botkit.files.File,
        at most 15) it goes as multipart, as Chatwoot's messages API takes files."""
        body: dict[str, Any] = {"message_type": "outgoing", "private": private, "content_type": content_type}
        if content is not None:
            body["content"] = content
        if content_attributes is not None:
            body["content_attributes"] = content_attributes
        if echo_id is not None:
            body["echo_id"] = echo_id
        return await self._request(
            "POST", "/api/v1/accounts/{account_id}/conversations/{conversation_id}/messages",
            idempotent=False, json=body, files=attachments, account_id=account_id, conversation_id=conversation_id,
        )

    async def send_note(self, account_id: int, conversation_id: int, content: str) -> dict:
        """Post a private note, visible to agents only."""
        return await self.send_message(account_id, conversation_id, content, private=True)

    async def send_rich(
        self, account_id: int, conversation_id: int, message: RichMessage, *, echo_id: str | None = None
    ) -> dict:
        """Post an input_select, cards, form, article or input_email message."""
        payload = message.to_payload()
        return await self.send_message(
            account_id, conversation_id, payload["content"], content_type=payload["content_type"],
            content_attributes=payload["content_attributes"], echo_id=echo_id,
        )

    # Conversation state ---------------------------------------------------------------------------------

    async def version(self) -> str | None:
        """Chatwoot's version, from `GET /api` (`ApiController#index`, no token needed); None if it does not say."""
        result = await self._request("GET", "/api", idempotent=True)
        return result.get("version") if isinstance(result, dict) else None

    async def get_conversation(self, account_id: int, conversation_id: int, *, retry_500: bool = True) -> dict:
        """The conversation (`GET …/conversations/{id}`; bot tokens since 4.14.2). `retry_500=False`: a 500 is
        raised at once: up to 4.15.1 Chatwoot answers a bot 500 for every conversation with a team
        (`app/views/api/v1/conversations/partials/_team.json.jbuilder`), so retrying it only waits."""
        return await self._request(
            "GET", "/api/v1/accounts/{account_id}/conversations/{conversation_id}",
            idempotent=True, final=frozenset() if retry_500 else frozenset({500}),
            account_id=account_id, conversation_id=conversation_id,
        )

    async def create_conversation(
        self,
        account_id: int,
        *,
        source_id: str,
        inbox_id: int,
        contact_id: int | None = None,
        message: str | dict | None = None,
        status: str | None = None,
        **extra: Any,
    ) -> dict:
        body: dict[str, Any] = {"source_id": source_id, "inbox_id": inbox_id}
        if contact_id is not None:
            body["contact_id"] = contact_id
        if message is not None:
            body["message"] = {"content": message} if isinstance(message, str) else message
        if status is not None:
            body["status"] = status
        body.update(extra)
        return await self._request(
            "POST", "/api/v1/accounts/{account_id}/conversations", idempotent=False, json=body,
            account_id=account_id,
        )

    async def toggle_status(
        self,
        account_id: int,
        conversation_id: int,
        status: str,
        *,
        snoozed_until: datetime | int | None = None,
    ) -> dict:
        """Set the status; a bot moving a pending conversation to open is Chatwoot's hand-off."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {status!r}.")
        body: dict[str, Any] = {"status": status}
        if snoozed_until is not None:
            body["snoozed_until"] = (
                int(snoozed_until.timestamp()) if isinstance(snoozed_until, datetime) else int(snoozed_until)
            )
        return await self._request(
            "POST", "/api/v1/accounts/{account_id}/conversations/{conversation_id}/toggle_status",
            idempotent=True, json=body, account_id=account_id, conversation_id=conversation_id,
        )

    async def toggle_typing(self, account_id: int, conversation_id: int, on: bool) -> None:
        await self._request(
            "POST", "/api/v1/accounts/{account_id}/conversations/{conversation_id}/toggle_typing_status",
            idempotent=True, json={"typing_status": "on" if on else "off"},
            account_id=account_id, conversation_id=conversation_id,
        )

    async def toggle_priority(self, account_id: int, conversation_id: int, priority: str | None) -> dict:
        """Set the priority (urgent, high, medium, low), or clear it with None."""
        if priority is not None and priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {', '.join(PRIORITIES)} or None, not {priority!r}.")
        return await self._request(
            "POST", "/api/v1/accounts/{account_id}/conversations/{conversation_id}/toggle_priority",
            idempotent=True, json={"priority": priority},
            account_id=account_id, conversation_id=conversation_id,
        )

    async def _assign(self, account_id: int, conversation_id: int, body: dict[str, Any], what: str) -> dict:
        template = "/api/v1/accounts/{account_id}/conversations/{conversation_id}/assignments"
        result = await self._request(
            "POST", template, idempotent=False, json=body, account_id=account_id, conversation_id=conversation_id,
        )
        if result is None:
            # Chatwoot answers 200 `null` for an id it does not know, after clearing the assignment.
            wanted = body.get("team_id", body.get("assignee_id"))
            raise NotFound(
                f"Chatwoot has no {what} {wanted} in account {account_id} and left conversation "
                f"{conversation_id} without one", status=200, endpoint=f"POST {template}")
        return result

    async def assign_agent(self, account_id: int, conversation_id: int, agent_id: int) -> dict:
        return await self._assign(account_id, conversation_id, {"assignee_id": agent_id}, "agent")

    async def assign_team(self, account_id: int, conversation_id: int, team_id: int) -> dict:
        return await self._assign(account_id, conversation_id, {"team_id": team_id}, "team")

    async def assign_bot(self, account_id: int, conversation_id: int, bot_id: int) -> dict:
        body = {"assignee_id": bot_id, "assignee_type": "AgentBot"}
        return await self._assign(account_id, conversation_id, body, "agent bot")

    # Labels and custom attributes -----------------------------------------------------------------------

    async def get_labels(self, account_id: int, conversation_id: int) -> list[str]:
        result = await self._request(
            "GET", "/api/v1/accounts/{account_id}/conversations/{conversation_id}/labels",
            idempotent=True, account_id=account_id, conversation_id=conversation_id,
        )
        return list(result.get("payload", []))

    async def set_labels(self, account_id: int, conversation_id: int, labels: Iterable[str]) -> list[str]:
        """Replace the conversation's labels with `labels`."""
        result = await self._request(
            "POST", "/api/v1/accounts/{account_id}/conversations/{conversation_id}/labels",
            idempotent=True, json={"labels": list(labels)},
            account_id=account_id, conversation_id=conversation_id,
        )
        return list(result.get("payload", []))

    async def add_labels(self, account_id: int, conversation_id: int, labels: Iterable[str]) -> list[str]:
        """Add labels, keeping the others (Chatwoot's POST replaces the list, so this reads it first)."""
        current = await self.get_labels(account_id, conversation_id)
        wanted = current + [label for label in dict.fromkeys(labels) if label not in current]
        if wanted == current:
            return current
        return await self.set_labels(account_id, conversation_id, wanted)

    async def remove_labels(self, account_id: int, conversation_id: int, labels: Iterable[str]) -> list[str]:
        current = await self.get_labels(account_id, conversation_id)
        unwanted = set(labels)
        wanted = [label for label in current if label not in unwanted]
        if wanted == current:
            return current
        return await self.set_labels(account_id, conversation_id, wanted)

    async def set_custom_attributes(
        self, account_id: int, conversation_id: int, attributes: dict, *, merge: bool = True,
        known: dict | None = None,
    ) -> dict:
        """Set custom attributes; with merge (the default) the others are kept, else the hash is replaced
        (Chatwoot's `POST …/custom_attributes` replaces the whole hash). Returns Chatwoot's answer
        (`{"custom_attributes": {...}}`).

        The merge reads the current attributes with a GET of the conversation. Up to 4.15.1 Chatwoot answers a
        bot's GET of a conversation with a team 500 (`app/views/api/v1/conversations/partials/_team.json.jbuilder`).
        `known`: the attributes the caller last saw (a webhook's `conversation.custom_attributes`, plus what it
        set since). Given it, that 500 is not retried: the merge is made onto `known`, so a key someone else
        changed or added after the caller saw them is written back as `known` has it (or dropped). Without
        `known` a 500 is retried like any other and finally raised (ServerError)."""
        if merge:
            try:
                conversation = await self.get_conversation(account_id, conversation_id, retry_500=known is None)
                current = conversation.get("custom_attributes") or {}
            except ServerError as exc:
                if known is None or exc.status != 500:
                    raise
                logger.warning("could not read the conversation's custom attributes (Chatwoot answered 500, as "
                               "it does up to 4.15.1 for a conversation with a team: upgrade Chatwoot); merging "
                               "onto the ones the event carried")
                current = known
            attributes = {**current, **attributes}
        return await self._request(
            "POST", "/api/v1/accounts/{account_id}/conversations/{conversation_id}/custom_attributes",
            idempotent=True, json={"custom_attributes": attributes},
            account_id=account_id, conversation_id=conversation_id,
        )


def _form_value(value: Any) -> str:
    """A field of a multipart body as Rails reads it: booleans as true/false, objects as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return _json.dumps(value) if isinstance(value, dict | list) else str(value)
