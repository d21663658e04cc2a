"""Peer (d)'s bot for the model rounds: botkit serve with a handler that asks the bench's model (it takes
MODEL_SECONDS) and replies with its answer, the same as the peers do inside their requests."""

import os

import httpx

from botkit import Bot, Handler


class AskTheModel(Handler):
    async def startup(self, bot) -> None:
        self.seconds = float(os.environ.get("MODEL_SECONDS", "1"))
        self.client = httpx.AsyncClient(base_url=os.environ["CHATWOOT_BASE_URL"], timeout=60,
                                        limits=httpx.Limits(max_connections=300))

    async def shutdown(self) -> None:
        await self.client.aclose()

    async def handle(self, ctx) -> None:
        answer = (await self.client.post("/__bench/model", params={"seconds": self.seconds})).json()
        await ctx.reply(answer["text"])


bot = Bot("model_bot", [AskTheModel()])
