"""A bot that shows every kind of message a bot can send, for `botkit playground bots.showcase`.

Anything -> a greeting and a menu of four options (a list on WhatsApp, buttons in the widget and Telegram).
The menu's options, or the words in them typed or tapped on any channel: "track" -> a reply and the label
`orders`; "billing" -> a hand-off to the billing team with a summary note; "products" -> cards with images
and links; "human" -> a hand-off with a note. "form" -> a form; "email" -> an e-mail input; "help" ->
article links; "thanks" -> a reply, and the bot resolves the conversation.
"""

from __future__ import annotations

from urllib.parse import quote

from botkit import Bot
from botkit.rich import Article, ArticleItem, Card, CardAction, Cards, Form, FormField, InputEmail, InputSelect, Option


def _picture(colour: str, label: str) -> str:
    """A small SVG as a data: URL, so the page loads no image from anywhere."""
    svg = (f"<svg xmlns='http://www.w3.org/2000/svg' width='320' height='120'><rect width='320' height='120' "
           f"fill='{colour}'/><text x='160' y='70' font-size='28' text-anchor='middle' fill='white' "
           f"font-family='sans-serif'>{label}</text></svg>")
    return "data:image/svg+xml," + quote(svg)


MENU = InputSelect("What can I help you with?", [
    Option("Track an order", "track"), Option("Billing question", "billing"),
    Option("Our products", "products"), Option("Talk to a human", "human"),
])
PRODUCTS = Cards("Our best sellers:", [
    Card("Starter plan", "Everything a small team needs.", _picture("#1f93ff", "Starter"),
         [CardAction("link", "See the plan", uri="https://example.com/plans/starter")]),
    Card("Business plan", "Reports, teams and an SLA.", _picture("#805ad5", "Business"),
         [CardAction("link", "See the plan", uri="https://example.com/plans/business")]),
])
CALLBACK = Form("Leave your details and we call you back:", [
    FormField("name", "Your name", placeholder="Jane Doe", required=True),
    FormField("email", "E-mail", type="email", placeholder="jane@example.com"),
])
ARTICLES = Article("These may help:", [
    ArticleItem("Resetting your password", "https://example.com/help/password", "Two minutes, no support needed."),
    ArticleItem("Changing your plan", "https://example.com/help/plans", "Up or down, any time."),
])


def make_bot() -> Bot:
    bot = Bot("showcase", typing_after=None)

    @bot.on_message("track")
    async def track(ctx):
        await ctx.reply("Your order #1042 left our warehouse today; it arrives on Thursday.")
        await ctx.add_labels("orders")

    @bot.on_message("billing")
    async def billing(ctx):
        await ctx.handoff(team="billing", message="I'm passing you to our billing team; they reply within the hour.",
                          note="Summary: the contact has a billing question; the bot asked nothing else.")

    @bot.on_message("products", "product")
    async def products(ctx):
        await ctx.reply(PRODUCTS)

    @bot.on_message("human", "agent", "person")
    async def human(ctx):
        await ctx.handoff(message="Sure, a person will be with you shortly.",
                          note="Summary: the contact asked for a person.")

    @bot.on_message("form", "call")
    async def form(ctx):
        await ctx.reply(CALLBACK)

    @bot.on_message("email")
    async def email(ctx):
        await ctx.reply(InputEmail("Where can we reach you?"))

    @bot.on_message("help")
    async def articles(ctx):
        await ctx.reply(ARTICLES)

    @bot.on_message("thanks", "thank")
    async def thanks(ctx):
        await ctx.reply("You're welcome! I'll close this conversation.")
        await ctx.resolve()

    @bot.on_answer()
    async def answered(ctx):  # a form or an e-mail sent back from the widget
        await ctx.reply("Thanks, we have your details.")

    @bot.fallback
    async def greet(ctx):
        await ctx.reply("Hi! I'm the showcase bot.")
        await ctx.reply(MENU)

    return bot


bot = make_bot()
