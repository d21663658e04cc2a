"""The Chatwoot REST API client: every endpoint a bot (or its provisioning) calls, retried where safe.

One shared `httpx.AsyncClient` (connection pool, keep-alive, explicit timeouts) sends the token in the
`api-access-token` header (see TOKEN_HEADER), over aiohttp (`botkit.transport`: a third of httpx's own per-request CPU).
Chatwoot's answers become typed errors that say what to do; tokens never appear in an error, a repr or a
log line. All retrying happens in `ChatwootClient._request`, under one policy:

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
import email.utils
import logging
import random
import time
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import SecretStr
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_before_delay

from botkit import metrics as _metrics
from botkit.ratelimit import TokenBucket
from botkit.rich import RichMessage
from botkit.transport import AiohttpTransport

if TYPE_CHECKING:
    from botkit.config import Settings

logger = logging.getLogger("botkit.chatwoot")

BODY_EXCERPT = 200
STATUSES = ("open", "resolved", "pending", "snoozed")
PRIORITIES = ("urgent", "high", "medium", "low")


# Errors -------------------------------------------------------------------------------------------------


class ChatwootError(Exception):
    """Chatwoot refused or could not answer a request.

    `status` is the HTTP status (None when there was no answer), `endpoint` the method and path template
    (never a token), `transient` says whether handling the whole event again later is worth it.
    """

    transient = False
    advice = "Check Chatwoot's logs for this request."

    def __init__(self, detail: str, *, status: int | None = None, endpoint: str = "") -> None:
        self.detail = detail
        self.status = status
        self.endpoint = endpoint
        self.retry_after: float | None = None
        self._retry_safe = False  # set by the client: may this very request be sent again?
        super().__init__(self._sentence())

    def _sentence(self) -> str:
        where = f"{self.endpoint}: " if self.endpoint else ""
        code = f"HTTP {self.status}, " if self.status is not None else ""
        return f"{where}{code}{self.detail}. {self.advice}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, endpoint={self.endpoint!r})"


class InvalidToken(ChatwootError):
    advice = "Check the token setting: it must be the agent bot's (or the user's) access token, unchanged."


class NotAuthorizedForBots(ChatwootError):
    advice = (
        "An agent bot token may not call this endpoint: use an administrator's user token for it, "
        "or upgrade Chatwoot (conversation show and labels need 4.14.2+, typing 4.11.2+)."
    )


class PermissionDenied(ChatwootError):
    advice = "The token's user lacks the permission; bot management needs an administrator's token."


class NotFound(ChatwootError):
    advice = "Check the account, conversation (its display id), inbox, team or bot id."


class ValidationFailed(ChatwootError):
    advice = "Chatwoot refused the content; fix the request rather than retrying it."


class RateLimited(ChatwootError):
    transient = True
    advice = "Chatwoot's rate limit was hit; lower chatwoot_rate_per_minute or retry the event later."


class ServerError(ChatwootError):
    transient = True
    advice = "Chatwoot failed on its side; the event can be retried later."


class ChatwootUnreachable(ChatwootError):
    transient = True
    advice = "Check CHATWOOT_BASE_URL and that Chatwoot is up; the event can be retried later."


class DeliveryUnknown(ChatwootError):
    transient = False
    advice = (
        "Chatwoot may have applied this request although no answer came, so it is not sent again; "
        "check the conversation before repeating it by hand."
    )



def _excerpt(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    text = " ".join(text.split())
    return text if len(text) <= BODY_EXCERPT else text[:BODY_EXCERPT] + "..."


def _error_text(response: httpx.Response, secrets: Iterable[str]) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ("error", "message", "errors", "description"):
            if body.get(key):
                value = body[key]
                text = value if isinstance(value, str) else ", ".join(map(str, value)) \
                    if isinstance(value, list) else str(value)
                return _excerpt(text, secrets)
    return _excerpt(response.text, secrets) or "no body"


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_for_response(response: httpx.Response, endpoint: str, secrets: Iterable[str] = ()) -> ChatwootError:
    """The typed error for a non-2xx answer."""
    status = response.status_code
    text = _error_text(response, secrets)
    cls: type[ChatwootError]
    if status == 401 and "not authorized for bots" in text:
        cls = NotAuthorizedForBots
    elif status == 401 and "Invalid Access Token" in text:
        cls = InvalidToken
    elif status in (401, 403):
        cls = PermissionDenied
    elif status == 404:
        cls = NotFound
    elif status == 422:
        cls = ValidationFailed
    elif status == 429:
        cls = RateLimited
    elif status >= 500:
        cls = ServerError
    else:
        cls = ChatwootError
    error = cls(text, status=status, endpoint=endpoint)
    error.retry_after = _retry_after(response)
    return error


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


class ChatwootClient:
    """Async client for Chatwoot's application and platform APIs; use `async with` or call `aclose()`."""

    def __init__(
        self,
        base_url: str,
        token: str | SecretStr,
        *,
        timeout: float = 10.0,
        deadline: float = 30.0,
        rate_per_minute: float = 2400,
        transport: httpx.AsyncBaseTransport | None = None,
        rate_limiter: TokenBucket | None = None,
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
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            transport=transport or AiohttpTransport(max_connections=max_connections, keepalive_expiry=30.0),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            headers={TOKEN_HEADER: self._token.get_secret_value(), "Accept": "application/json"},
            follow_redirects=False,
        )
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
        await self._http.aclose()

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
        **params: Any,
    ) -> Any:
        """Send one API request under the retry policy; returns the parsed JSON body ({} when empty).

        The first attempt runs outside tenacity: most calls succeed at once, and tenacity's machinery costs
        ~0.1 ms of CPU a call (bench/client.py --cpu). Its failure, if retry-safe, is the first attempt of
        the same policy, with the deadline counted from the first attempt's start.
        """
        endpoint = f"{method} {template}"
        path = template.format(**params)
        began = time.monotonic()
        try:
            return await self._send_once(method, path, endpoint, json, idempotent)
        except ChatwootError as error:
            if not _is_retry_safe(error):
                raise
            first_failure: ChatwootError | None = error
        retrying = AsyncRetrying(
            retry=retry_if_exception(_is_retry_safe),
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
                return await self._send_once(method, path, endpoint, json, idempotent)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send_once(self, method: str, path: str, endpoint: str, json: Any, idempotent: bool) -> Any:
        queued = time.perf_counter()
        await self.rate_limiter.acquire()
        started = time.perf_counter()
        if started - queued > 0.001:
            self.metrics.chatwoot_throttled(started - queued)
        with _metrics.span("botkit.chatwoot", endpoint=endpoint):
            return await self._attempt(method, path, endpoint, json, idempotent, started)

    async def _attempt(self, method: str, path: str, endpoint: str, json: Any, idempotent: bool,
                       started: float) -> Any:
        try:
            async with self._slots:
                response = await self._http.request(method, self._url(path), json=json)
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

    def _url(self, path: str) -> httpx.URL:
        """The absolute URL of an API path, as httpx would merge it with the base URL (whose path it keeps)."""
        url = self._urls.get(path)
        if url is None:
            if len(self._urls) >= _URLS_KEPT:
                self._urls.clear()
            base, relative = self._http.base_url, httpx.URL(path)  # the merge httpx does for a relative URL
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
    ) -> dict:
        """Post an outgoing message (or a private note); never sent twice."""
        body: dict[str, Any] = {"message_type": "outgoing", "private": private, "content_type": content_type}
        if content is not None:
            body["content"] = content
        if content_attributes is not None:
            body["content_attributes"] = content_attributes
        if echo_id is not None:
            body["echo_id"] = echo_id
        return await self._request(
            "POST", "/api/v1/accounts/{account_id}/conversations/{conversation_id}/messages",
            idempotent=False, json=body, account_id=account_id, conversation_id=conversation_id,
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

    async def get_conversation(self, account_id: int, conversation_id: int) -> dict:
        return await self._request(
            "GET", "/api/v1/accounts/{account_id}/conversations/{conversation_id}",
            idempotent=True, account_id=account_id, conversation_id=conversation_id,
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
        self, account_id: int, conversation_id: int, attributes: dict, *, merge: bool = True
    ) -> dict:
        """Set custom attributes; with merge (the default) the others are kept, else the hash is replaced."""
        if merge:
            conversation = await self.get_conversation(account_id, conversation_id)
            attributes = {**(conversation.get("custom_attributes") or {}), **attributes}
        return await self._request(
            "POST", "/api/v1/accounts/{account_id}/conversations/{conversation_id}/custom_attributes",
            idempotent=True, json={"custom_attributes": attributes},
            account_id=account_id, conversation_id=conversation_id,
        )

    # Account management (an administrator's user token) -------------------------------------------------

    async def list_agent_bots(self, account_id: int) -> list[dict]:
        return await self._request(
            "GET", "/api/v1/accounts/{account_id}/agent_bots", idempotent=True, account_id=account_id)

    async def create_agent_bot(
        self,
        account_id: int,
        *,
        name: str,
        outgoing_url: str,
        description: str | None = None,
        bot_type: int | str | None = None,
    ) -> dict:
        body: dict[str, Any] = {"name": name, "outgoing_url": outgoing_url}
        if description is not None:
            body["description"] = description
        if bot_type is not None:
            body["bot_type"] = bot_type
        return await self._request(
            "POST", "/api/v1/accounts/{account_id}/agent_bots", idempotent=False, json=body,
            account_id=account_id)

    async def get_agent_bot(self, account_id: int, bot_id: int) -> dict:
        return await self._request(
            "GET", "/api/v1/accounts/{account_id}/agent_bots/{bot_id}", idempotent=True,
            account_id=account_id, bot_id=bot_id)

    async def update_agent_bot(self, account_id: int, bot_id: int, **fields: Any) -> dict:
        return await self._request(
            "PATCH", "/api/v1/accounts/{account_id}/agent_bots/{bot_id}", idempotent=True, json=fields,
            account_id=account_id, bot_id=bot_id)

    async def delete_agent_bot(self, account_id: int, bot_id: int) -> None:
        await self._request(
            "DELETE", "/api/v1/accounts/{account_id}/agent_bots/{bot_id}", idempotent=False,
            account_id=account_id, bot_id=bot_id)

    async def reset_agent_bot_token(self, account_id: int, bot_id: int) -> dict:
        """A new access token for the bot; the old one stops working. Returns the bot with its new token."""
        # Repeating a reset whose answer was lost only resets again, and the answer holds the token in force.
        return await self._request(
            "POST", "/api/v1/accounts/{account_id}/agent_bots/{bot_id}/reset_access_token", idempotent=True,
            account_id=account_id, bot_id=bot_id)

    async def reset_agent_bot_secret(self, account_id: int, bot_id: int) -> dict:
        """A new webhook signing secret (Chatwoot 4.13+). Returns the bot with its new `secret`."""
        return await self._request(
            "POST", "/api/v1/accounts/{account_id}/agent_bots/{bot_id}/reset_secret", idempotent=True,
            account_id=account_id, bot_id=bot_id)

    async def set_inbox_agent_bot(self, account_id: int, inbox_id: int, bot_id: int | None) -> None:
        """Connect the bot to the inbox, or disconnect the inbox's bot with None."""
        await self._request(
            "POST", "/api/v1/accounts/{account_id}/inboxes/{inbox_id}/set_agent_bot", idempotent=True,
            json={"agent_bot": bot_id}, account_id=account_id, inbox_id=inbox_id)

    async def list_inboxes(self, account_id: int) -> list[dict]:
        result = await self._request(
            "GET", "/api/v1/accounts/{account_id}/inboxes", idempotent=True, account_id=account_id)
        return list(result.get("payload", [])) if isinstance(result, dict) else list(result)

    async def list_teams(self, account_id: int) -> list[dict]:
        result = await self._request(
            "GET", "/api/v1/accounts/{account_id}/teams", idempotent=True, account_id=account_id)
        return list(result.get("payload", [])) if isinstance(result, dict) else list(result)

    # Platform API (a platform app's token): system-wide bots ------------------------------------------

    async def list_platform_bots(self) -> list[dict]:
        return await self._request("GET", "/platform/api/v1/agent_bots", idempotent=True)

    async def create_platform_bot(
        self,
        *,
        name: str,
        outgoing_url: str,
        description: str | None = None,
        account_id: int | None = None,
    ) -> dict:
        body: dict[str, Any] = {"name": name, "outgoing_url": outgoing_url}
        if description is not None:
            body["description"] = description
        if account_id is not None:
            body["account_id"] = account_id
        return await self._request("POST", "/platform/api/v1/agent_bots", idempotent=False, json=body)

    async def get_platform_bot(self, bot_id: int) -> dict:
        return await self._request("GET", "/platform/api/v1/agent_bots/{bot_id}", idempotent=True, bot_id=bot_id)

    async def update_platform_bot(self, bot_id: int, **fields: Any) -> dict:
        return await self._request(
            "PATCH", "/platform/api/v1/agent_bots/{bot_id}", idempotent=True, json=fields, bot_id=bot_id)

    async def delete_platform_bot(self, bot_id: int) -> None:
        await self._request("DELETE", "/platform/api/v1/agent_bots/{bot_id}", idempotent=False, bot_id=bot_id)
