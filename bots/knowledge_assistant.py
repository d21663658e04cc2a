"""Keywords first, then the team's knowledge base (Help Center articles, documents, an FAQ), then a person.

billing/payment, technical/bug and human/agent/person go where bots/support_router.py sends them; any other
question is answered from the knowledge base (`botkit kb add PATH...`, `botkit kb sync`) with its source. With
OPENAI_API_KEY set, a model (any OpenAI-compatible server: OPENAI_BASE_URL, OPENAI_MODEL) writes the answer
from the passages found and cites them; without it, the best article is sent as it is. A question the
knowledge base cannot answer, a complaint or a request for a person goes to a human and is listed by
`botkit kb gaps`; the model is never asked to guess.

    botkit kb add docs/ faq.csv
    BOTKIT_BOT=bots.knowledge_assistant:bot BOTKIT_TEAMS=billing=3,technical=4 botkit serve
"""

from botkit import Bot, KeywordRouter
from botkit.adapters.keywords import GUIDE_RULES
from botkit.adapters.knowledge import KnowledgeHandler
from botkit.config import load_settings


def make_bot(*, model: bool | None = None) -> Bot:
    """The bot; `model` None uses one when OPENAI_API_KEY is set."""
    if model is None:
        key = load_settings().openai_api_key
        model = key is not None and bool(key.get_secret_value())
    answerer = None
    if model:
        from botkit.adapters.openai import OpenAIHandler

        answerer = OpenAIHandler()
    keywords = KeywordRouter(GUIDE_RULES)  # no fallback reply: unmatched messages reach the knowledge base
    return Bot("knowledge_assistant", [keywords, KnowledgeHandler(model=answerer, when_unsure="handoff")],
               typing_after=None if model else 1.0)


bot = make_bot()
