"""botkit's pytest plugin (registered through the `pytest11` entry point): fixtures for bot authors.

    async def test_billing(bot_flow):
        flow = await bot_flow(make_bot(), teams="billing=3")
        await flow.send("I need billing help")
        flow.expect_reply("I'm transferring you to our billing team.").expect_team("billing").expect_handoff()

    async def test_client(fake_chatwoot):           # a FakeChatwoot on a loopback port
        fake_chatwoot.add_conversation(conversation_id=128)
        ...

The fixtures are async: they need pytest-asyncio (botkit's own tests run it with asyncio_mode = "auto").
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

try:
    import pytest_asyncio
except ImportError:  # the plugin loads in every pytest run where botkit is installed: never break those
    pytest_asyncio = None


def _missing(*args: Any, **kwargs: Any) -> Any:
    pytest.fail("botkit's fixtures are async: install pytest-asyncio (pip install pytest-asyncio).")


if pytest_asyncio is None:
    fake_chatwoot = pytest.fixture(name="fake_chatwoot")(_missing)
    bot_flow = pytest.fixture(name="bot_flow")(_missing)
else:

    @pytest_asyncio.fixture
    async def fake_chatwoot() -> AsyncIterator[Any]:
        """A FakeChatwoot served on 127.0.0.1 (its `url`, `bot_token` and `bot_secret` are set)."""
        from botkit.testing.fake_chatwoot import FakeChatwoot

        async with FakeChatwoot().serve() as fake:
            yield fake

    @pytest_asyncio.fixture
    async def bot_flow() -> AsyncIterator[Callable[..., Awaitable[Any]]]:
        """`flow = await bot_flow(bot, teams="billing=3", ...)`: a BotFlow, stopped after the test.

        Takes BotFlow.start's arguments; call it again for a second bot."""
        from botkit.testing.flow import BotFlow

        async with contextlib.AsyncExitStack() as stack:

            async def start(bot: Any, **kwargs: Any) -> BotFlow:
                return await stack.enter_async_context(BotFlow.start(bot, **kwargs))

            yield start
