"""A bot for tests that run `botkit serve` as a subprocess: it answers every contact message "Answer to: <text>"."""

from botkit import Bot


def make_bot() -> Bot:
    bot = Bot("echo")

    @bot.fallback
    async def answer(ctx):
        await ctx.reply(f"Answer to: {ctx.text}")

    return bot
