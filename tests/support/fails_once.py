"""A handler whose first attempt fails with a transient error (a model that timed out), then answers: its retry
is the stale turn that looks before acting (botkit.turn)."""

from __future__ import annotations

from botkit import Handler


class FailsOnce(Handler):
    def __init__(self) -> None:
        self.attempts = 0

    async def handle(self, ctx) -> bool:
        self.attempts += 1
        if self.attempts == 1:
            raise ConnectionError("the model timed out")
        await ctx.reply(f"Answer to: {ctx.text}")
        return True
