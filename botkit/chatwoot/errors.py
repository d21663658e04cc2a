"""Chatwoot's answers as typed errors that say what to do; a token never appears in one.

`error_for_response` maps a non-2xx answer to its class; `transient` on each class says whether handling the
whole event again later is worth it (the worker reads it; see docs/architecture.md).
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterable

import httpx

BODY_EXCERPT = 200


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
    """401 "Invalid Access Token": the header came, the token is unknown (access_token_auth_helper.rb)."""

    advice = ("Chatwoot knows no such token: set CHATWOOT_BOT_TOKEN to the agent bot's current access token "
              "(a reset in Chatwoot or `botkit bots reset-token` replaces the old one).")


class TokenMissing(InvalidToken):
    """401 `{"errors": ["You need to sign in or sign up before continuing."]}`: no token header reached Rails
    (devise_token_auth's answer, `app/controllers/api/base_controller.rb`)."""

    advice = ("No access token reached Chatwoot: set CHATWOOT_BOT_TOKEN, and check that no proxy in front of "
              "Chatwoot drops the api-access-token header.")


class NotAuthorizedForBots(ChatwootError):
    """401: the endpoint is not in the bot allow-list (`BOT_ACCESSIBLE_ENDPOINTS`); a platform app's token
    gets the same answer on any application API endpoint."""

    advice = (
        "An agent bot token may not call this endpoint: use an administrator's user token for it, "
        "or upgrade Chatwoot (conversation show and labels need 4.14.2+, typing 4.11.2+)."
    )


class PermissionDenied(ChatwootError):
    """Chatwoot refused this token here (401 or 403). The subclasses name the cause."""

    advice = "Chatwoot refused this token for this request; its answer says why."


class NotPermitted(PermissionDenied):
    """401 "You are not authorized to do this action": a policy (Pundit) refused the token's user."""

    advice = "The token's user lacks the permission; bot management needs an administrator's token."


class AccountSuspended(PermissionDenied):
    """401 "Account is suspended" (`ensure_current_account_helper.rb`): `account.active?` is false."""

    advice = ("The Chatwoot account is suspended: nothing the bot does there works until a Chatwoot super admin "
              "reactivates it.")


class BotNotInAccount(PermissionDenied):
    """401 "Bot is not authorized to access this account": another account, where the bot is connected to no
    inbox (`ensure_current_account_helper.rb#account_accessible_for_bot?`)."""

    advice = ("The agent bot is connected to no inbox of this account: connect it to one of the account's inboxes "
              "(botkit provision), or check the account id.")


class NotInAccount(PermissionDenied):
    """401 "You are not authorized to access this account": the token's user is not a member of it."""

    advice = ("The token's user is not a member of this account: check CHATWOOT_ACCOUNT_ID, or use a token of "
              "that account.")


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


# Chatwoot's 401 texts toward a token, in the order Rails checks them (CHANNELS: api/base_controller.rb, then
# access_token_auth_helper.rb, then ensure_current_account_helper.rb, then Pundit).
_REFUSALS: tuple[tuple[str, type[ChatwootError]], ...] = (
    ("sign in or sign up", TokenMissing),
    ("invalid access token", InvalidToken),
    ("invalid access_token", InvalidToken),  # the platform API's spelling
    ("not authorized for bots", NotAuthorizedForBots),
    ("account is suspended", AccountSuspended),
    ("bot is not authorized to access this account", BotNotInAccount),
    ("not authorized to access this account", NotInAccount),
    ("not authorized to do this action", NotPermitted),
)


def error_for_response(response: httpx.Response, endpoint: str, secrets: Iterable[str] = ()) -> ChatwootError:
    """The typed error for a non-2xx answer."""
    status = response.status_code
    text = _error_text(response, secrets)
    cls: type[ChatwootError]
    if status in (401, 403):
        folded = text.casefold()
        cls = next((c for phrase, c in _REFUSALS if phrase in folded), PermissionDenied)
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
