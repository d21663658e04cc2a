"""Exceptions a handler raises to steer the worker.

`GiveUp` fails an event for good: no retry, straight to the dead letters (and the bot's hand-off to humans),
as arq's `Retry` steers the other way. Any other exception is retried with backoff until BOTKIT_MAX_ATTEMPTS
(docs/guide.md, "When a handler fails").
"""

from __future__ import annotations


class GiveUp(Exception):
    """Fail this event for good: retrying cannot help (bad input, a refused action, an order that does not exist).

    The worker makes it a dead letter at once, without the retries, and the bot hands a pending conversation
    to humans with a note naming the exception's class. The message goes to the logs and the dead letter, so
    keep secrets and contact data out of it.
    """

    transient = False  # the worker's test for "retrying cannot help", shared with ChatwootError's classes


class ActionRefused(GiveUp):
    """An action the bot must not take here (e.g. an unknown team name). Retrying will not help."""
