"""Exceptions a handler raises to steer the worker.

The one rule for an event that fails (`fails_for_good`, applied by botkit/worker.py): it fails for good, with
no retry, straight to the dead letters (and the bot's hand-off to humans), when it raised

- `GiveUp` (or a subclass: `ActionRefused`, a malformed event, an event for a bot not served here), as arq's
  `Retry` steers the other way; or
- one of the Chatwoot client's errors that a retry would meet again (`botkit.chatwoot.errors`, `transient`
  False: 401, 403, 404, 422, and `DeliveryUnknown`, a create that may have been applied).

Any other exception is retried with backoff until BOTKIT_MAX_ATTEMPTS (docs/guide.md, "Failing for good").
"""

from __future__ import annotations


class GiveUp(Exception):
    """Fail this event for good: retrying cannot help (bad input, a refused action, an order that does not exist).

    The worker makes it a dead letter at once, without the retries, and the bot hands a pending conversation
    to humans with a note naming the exception's class. The message goes to the logs and the dead letter, so
    keep secrets and contact data out of it.
    """


class ActionRefused(GiveUp):
    """An action the bot must not take here (e.g. an unknown team name). Retrying will not help."""


def fails_for_good(error: BaseException) -> bool:
    """Does retrying the event not help? `GiveUp`, or a Chatwoot error whose `transient` is False (see above)."""
    from botkit.chatwoot.errors import ChatwootError  # botkit.chatwoot's package imports the client

    return isinstance(error, GiveUp) or (isinstance(error, ChatwootError) and not error.transient)
