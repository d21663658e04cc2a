"""A bot for the kit's tests and `botkit chat`: an input_select menu, answers to each option, a note, labels.

"menu" (or anything else) -> an input_select; picking "track" -> a reply and the label "orders";
picking "refund" -> a private note and a hand-off to the billing team; "note" -> a private note only;
"done" -> resolves the conversation.
"""

from botkit import Bot
from botkit.rich import InputSelect, Option

MENU = InputSelect("What can I help with?", [Option("Track my order", "track"), Option("Get a refund", "refund")])


def make_bot() -> Bot:
    bot = Bot("menu", typing_after=None)

    @bot.on_answer("track")
    async def track(ctx):
        await ctx.reply("Your order is on its way.")
        await ctx.add_labels("orders")

    @bot.on_answer("refund")
    async def refund(ctx):
        await ctx.handoff(team="billing", note="The contact asked for a refund.")

    @bot.on_message("note")
    async def note(ctx):
        await ctx.note("The contact wants a note.")

    @bot.on_message("done")
    async def done(ctx):
        await ctx.reply("Glad I could help.")
        await ctx.resolve()

    @bot.fallback
    async def menu(ctx):
        await ctx.reply(MENU)

    return bot


bot = make_bot()
