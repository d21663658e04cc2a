"""The default bot: the custom business logic from Chatwoot's Agent Bots guide.

billing/payment -> the billing team; technical/bug -> the technical team; human/agent/person -> a human;
anything else -> a prompt. Teams are mapped to Chatwoot ids with BOTKIT_TEAMS=billing=3,technical=4.
"""

from botkit import Bot, KeywordRouter
from botkit.adapters.keywords import GUIDE_FALLBACK, GUIDE_RULES


def make_bot() -> Bot:
    return Bot("support_router", [KeywordRouter(GUIDE_RULES, fallback=GUIDE_FALLBACK)])


bot = make_bot()
