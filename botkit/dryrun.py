"""A stand-in for the Chatwoot client when no Chatwoot is configured: each action becomes a console line.

`make run` on a fresh machine serves the default bot this way, so a new user sees it work at once.
"""

from __future__ import annotations

import itertools
import sys
from typing import Any, TextIO

from botkit.metrics import NULL, NullMetrics


class ConsoleChatwoot:
    """The Chatwoot actions (botkit.runtime.ChatwootActions) as console lines."""

    dry_run = True
    busy = False  # printing never queues

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out
        self._ids = itertools.count(1)
        self.metrics: NullMetrics = NULL  # printed actions are not Chatwoot requests: nothing to count

    async def aclose(self) -> None:
        return None

    async def version(self) -> str | None:
        return None  # no Chatwoot to ask

    async def get_conversation(self, account_id: int, conversation_id: int, *,
                               retry_500: bool = True) -> dict[str, Any]:
        """No Chatwoot to look at: the conversation as the bot's (pending, no assignee, no newer message), so a
        stale turn (a retry, a replay) acts on its delivery alone, as it would on the first attempt."""
        return {"id": conversation_id, "account_id": account_id, "status": "pending", "meta": {}, "messages": []}

    def _say(self, account_id: int, conversation_id: int, text: str) -> dict[str, Any]:
        out = self._out or sys.stdout  # the CLI's output: what the bot would have sent
        out.write(f"[dry run] conversation {account_id}/{conversation_id}: {text}\n")
        out.flush()
        return {"id": next(self._ids)}

    async def send_message(self, account_id: int, conversation_id: int, content: str | None = None, *,
                           private: bool = False, content_type: str = "text",
                           content_attributes: dict[str, Any] | None = None, echo_id: str | None = None,
                           attachments: Any = ()) -> Any:
        kind = "note" if private else "reply" if content_type == "text" else f"reply ({content_type})"
        files = "".join(f" [{f.name}, {f.content_type}]" for f in attachments)
        return self._say(account_id, conversation_id, f"{kind}: {content}{files}")

    async def toggle_status(self, account_id: int, conversation_id: int, status: str, *,
                            snoozed_until: Any = None) -> Any:
        what = "hand-off to humans (status open)" if status == "open" else f"status {status}"
        return self._say(account_id, conversation_id, what)

    async def toggle_typing(self, account_id: int, conversation_id: int, on: bool) -> None:
        return None

    async def toggle_priority(self, account_id: int, conversation_id: int, priority: str | None) -> Any:
        return self._say(account_id, conversation_id, f"priority {priority}")

    async def assign_team(self, account_id: int, conversation_id: int, team_id: int) -> Any:
        return self._say(account_id, conversation_id, f"assign team {team_id}")

    async def assign_agent(self, account_id: int, conversation_id: int, agent_id: int) -> Any:
        return self._say(account_id, conversation_id, f"assign agent {agent_id}")

    async def add_labels(self, account_id: int, conversation_id: int, labels: list[str]) -> Any:
        return self._say(account_id, conversation_id, f"add labels {', '.join(labels)}")

    async def remove_labels(self, account_id: int, conversation_id: int, labels: list[str]) -> Any:
        return self._say(account_id, conversation_id, f"remove labels {', '.join(labels)}")

    async def set_custom_attributes(self, account_id: int, conversation_id: int, attributes: dict[str, Any],
                                    *, merge: bool = True, known: dict[str, Any] | None = None) -> Any:
        return self._say(account_id, conversation_id, f"set attributes {attributes}")
