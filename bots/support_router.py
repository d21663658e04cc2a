"""The default bot: the custom business logic from Chatwoot's Agent Bots guide.

billing/payment -> the billing team; technical/bug -> the technical team; human/agent/person -> a human;
anything else -> a prompt. Teams are mapped to Chatwoot ids with BOTKIT_TEAMS=billing=3,technical=4.
BOTKIT_KEYWORDS_FILE replaces these rules with a TOML file's.
"""

from botkit import Bot, KeywordRouter


def make_bot() -> Bot:
    return Bot("support_router", [KeywordRouter.from_settings()])


bot = make_bot()
