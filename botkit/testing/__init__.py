"""Testing kit for botkit bots.

- `FakeChatwoot`: Chatwoot's bot API in memory, in-process or on a loopback port, recording every request,
  with faults on demand (429 without Retry-After, 500s, latency, "not authorized for bots").
- `factories`: real-shape deliveries (a contact's message, an agent's reply, a note, the bot's echo, an
  input_select answer, status changes), any field overridable.
- `signed_headers`: the headers of a signed delivery, as Chatwoot computes them.
- `BotServer`: a bot served for real (receiver, worker, client) against the fake; `BotFlow`: talk to it and
  check what it did (`send`, `choose`, `resolve`, `expect_reply`, `expect_team`, `expect_handoff`, ...).
- pytest fixtures `fake_chatwoot` and `bot_flow` (botkit.testing.plugin, loaded automatically).

Names load on first use, so the pytest plugin costs nothing in test runs that do not use them.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "FakeChatwoot": "botkit.testing.fake_chatwoot",
    "BotServer": "botkit.testing.harness",
    "BotFlow": "botkit.testing.flow",
    "Action": "botkit.testing.flow",
    "signed_headers": "botkit.security",
    "factories": "botkit.testing.factories",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'botkit.testing' has no attribute {name!r}")
    module = importlib.import_module(_EXPORTS[name])
    return module if name == "factories" else getattr(module, name)
