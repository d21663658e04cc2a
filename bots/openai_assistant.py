"""The support router's keywords first, then an OpenAI model for everything else.

billing/payment, technical/bug and human/agent/person go where bots/support_router.py sends them (without its
"How can I help?" fallback); any other message is answered by the model, which may hand off, assign a team,
add labels or resolve. Settings: OPENAI_API_KEY (required), OPENAI_MODEL, OPENAI_BASE_URL for any
OpenAI-compatible server, OPENAI_SYSTEM_PROMPT(_FILE), and the rest in botkit/adapters/openai.py.

    BOTKIT_BOT=bots.openai_assistant:bot BOTKIT_TEAMS=billing=3,technical=4 botkit serve
"""

from typing import Any

from botkit import Bot, KeywordRouter
from botkit.adapters.keywords import GUIDE_RULES
from botkit.adapters.openai import OpenAIHandler


def make_bot(**openai_settings: Any) -> Bot:
    """The bot; keyword arguments go to OpenAIHandler (model=, base_url=, api_key=, system_prompt=, ...)."""
    keywords = KeywordRouter(GUIDE_RULES)  # no fallback reply: unmatched messages reach the model
    # no delayed typing from the Bot: the handler shows typing itself before each model call
    return Bot("openai_assistant", [keywords, OpenAIHandler(**openai_settings)], typing_after=None)


bot = make_bot()
