"""The Chatwoot REST API client, split by idea: `errors` (typed answers), `client` (the one request path and
the bot's endpoints), `admin` (administrator and platform endpoints)."""

from botkit.chatwoot.client import (
    NOT_SENT_ERRORS,
    PRIORITIES,
    RETRYABLE_STATUSES,
    STATUSES,
    TOKEN_HEADER,
    ChatwootClient,
)
from botkit.chatwoot.errors import (
    AccountSuspended,
    BotNotInAccount,
    ChatwootError,
    ChatwootUnreachable,
    DeliveryUnknown,
    InvalidToken,
    NotAuthorizedForBots,
    NotFound,
    NotInAccount,
    NotPermitted,
    PermissionDenied,
    RateLimited,
    ServerError,
    TokenMissing,
    ValidationFailed,
    error_for_response,
)

__all__ = [
    "NOT_SENT_ERRORS", "PRIORITIES", "RETRYABLE_STATUSES", "STATUSES", "TOKEN_HEADER", "ChatwootClient",
    "ChatwootError", "ChatwootUnreachable", "DeliveryUnknown", "InvalidToken", "NotAuthorizedForBots", "NotFound",
    "PermissionDenied", "RateLimited", "ServerError", "ValidationFailed", "error_for_response",
    "AccountSuspended", "BotNotInAccount", "NotInAccount", "NotPermitted", "TokenMissing",
]
