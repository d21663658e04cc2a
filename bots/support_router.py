"""The default bot: the custom business logic from Chatwoot's Agent Bots guide.

billing/payment -> the billing team; technical/bug -> the technical team; human/agent/person -> a human;
anything else -> a prompt. Teams are mapped to Chatwoot ids with BOTKIT_TEAMS=billing=3,technical=4.
"""

from botkit import Bot, KeywordRouter, Rule



def make_bot() -> Bot:
    router = KeywordRouter(
        [
            Rule(keywords=["billing", "payment"], reply="I'm transferring you to our billing team.",
                 team="billing", handoff=True),
            Rule(keywords=["technical", "bug"], reply="Let me connect you with our technical support team.",
                 team="technical", handoff=True),
            Rule(keywords=["human", "agent", "person"], reply="Let me connect you with a human agent.", handoff=True),
        ],
        fallback="How can I help you today? You can ask about billing or technical issues.",
    )

    return Bot("support_router", [router])


bot = make_bot()
