"""The whole path in one object: a fake Chatwoot and `botkit serve` for a bot, both on loopback ports.

    async with BotServer(bot, teams="billing=3") as server:
        await server.deliver(contact_message("I need billing help"))
        await server.settle()
        assert server.fake.messages(128)[-1]["content"] == "..."

Deliveries are signed with the fake bot's secret and posted over a real socket; the bot acts through the
real ChatwootClient on the fake. `settle()` waits until the queue is empty and nothing is in flight, including
a dead letter's fallback hand-off. Settings come from the environment (and `env_file`, if given), with the
fake's URL, token and secret, an in-memory store and a short retry backoff on top.
Burst merging is off unless a test sets `botkit_burst_window` (waiting out a window after each message would
only slow a test down).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from typing import Any

import httpx

from botkit.app import build_app
from botkit.config import load_settings
from botkit.security import signed_headers
from botkit.testing.fake_chatwoot import FakeChatwoot
from botkit.testing.server import serve_app


class BotServer:
    def __init__(self, bot: Any, *, fake: FakeChatwoot | None = None, store: str = "memory://",
                 teams: str | None = None, env_file: str | None = None, **settings: Any) -> None:
        self.bot = bot
        self.fake = fake or FakeChatwoot()
        self.store_url = store
        self.teams = teams
        self.extra_settings = settings
        self.env_file = env_file
        self.settings: Any = None
        self.url = ""
        self.app: Any = None
        self._stack = contextlib.AsyncExitStack()
        self.client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> BotServer:
        await self._stack.__aenter__()
        if self.fake.url is None:
            await self._stack.enter_async_context(self.fake.serve())
        self.settings = settings = load_settings(
            env_file=self.env_file, chatwoot_base_url=self.fake.url, chatwoot_bot_token=self.fake.bot_token,
            chatwoot_webhook_secret=self.fake.bot_secret, botkit_store=self.store_url, botkit_teams=self.teams,
            botkit_retry_backoff=0.05, **{"botkit_burst_window": 0, **self.extra_settings},
        )
        self.app = build_app(settings, self.bot)
        self.url = await self._stack.enter_async_context(serve_app(self.app))
        self.client = await self._stack.enter_async_context(httpx.AsyncClient(base_url=self.url, timeout=10))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.__aexit__(*exc)

    @property
    def store(self) -> Any:
        return self.app.state.receiver.store

    async def deliver(self, body: dict[str, Any] | bytes, *, delivery_id: str | None = None) -> str:
        """Post a signed delivery as Chatwoot does; return the receiver's status (accepted, duplicate, ignored)."""
        assert self.client is not None, "use BotServer as an async context manager"
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = signed_headers(self.fake.bot_secret, raw)
        headers["X-Chatwoot-Delivery"] = delivery_id or str(uuid.uuid4())
        response = await self.client.post("/webhook", content=raw, headers=headers)
        response.raise_for_status()
        return response.json()["status"]

    async def settle(self, timeout: float = 15.0) -> None:
        """Wait until every accepted delivery has been handled (or dead-lettered and handed off)."""
        deadline = time.monotonic() + timeout
        worker = self.app.state.worker
        while True:
            stats = await self.store.stats()
            # the store counts a dead letter as done before the worker's fallback hand-off has run
            if stats.waiting == 0 and stats.in_flight == 0 and (worker is None or worker.in_flight == 0):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the bot did not settle in {timeout} s: {stats}")
            await asyncio.sleep(0.01)
