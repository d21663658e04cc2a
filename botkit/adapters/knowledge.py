"""KnowledgeHandler: answer from the team's knowledge base (botkit kb add / sync), with sources, and do not guess.

    Bot("support", [KeywordRouter(rules), KnowledgeHandler()])                       # the best article
    Bot("support", [KeywordRouter(rules), KnowledgeHandler(model=OpenAIHandler())])  # a model's answer from it

For each contact message the handler searches the knowledge base (botkit/knowledge/retrieval.py) and acts on
its verdict:

- "answer": without a model, the best passage goes to the contact as Chatwoot's `article` message (title,
  description, link) on the channels that show it (web widget, API), and as its text and link elsewhere. With
  a model, the best passages are put in the model's prompt (one call; a retrieval *tool* would cost the model
  a second call for every question it answers), numbered, and the model is told to answer only from them and
  to cite them as [1], [2]; the sources it cited follow its answer, with their links.
- "human" (a request for a person, a complaint): the conversation is handed off (`when_human="pass"` passes
  it on instead). The model is never called.
- "unanswered" (nothing relevant enough): the event passes to the next handler, or is handed off with
  `when_unsure="handoff"` (BOTKIT_KB_WHEN_UNSURE). The model is never called.

Questions routed to a person or left unanswered are recorded (`botkit kb gaps`), once per event: the search and
the record are journaled with `ctx.once`, so a retried event replays the decision instead of searching again.
The search runs in a thread: SQLite, numpy and the embedding model stay off the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any, Literal

from botkit import channels, timeline, tracing
from botkit.bot import Bot, Handler
from botkit.config import ConfigError, Settings, load_settings
from botkit.context import Context
from botkit.i18n import N_
from botkit.knowledge import KnowledgeBase, knowledge_from_settings
from botkit.rich import Article, ArticleItem

log = logging.getLogger("botkit.knowledge")

PROMPT = """Answer the contact's question using only the numbered passages below, in the contact's language. \
Cite each passage you use by its number in brackets, like [1]. If the passages do not answer the question, \
say so and call handoff_to_human; never answer from anything else.

{passages}"""


class KnowledgeHandler(Handler):
    name = "knowledge"
    events = frozenset({"message_created"})  # questions; a contact's answer to a menu is not one

    def __init__(self, *, knowledge: KnowledgeBase | None = None, model: Any = None,
                 when_unsure: Literal["pass", "handoff"] | None = None,
                 when_human: Literal["pass", "handoff"] = "handoff", team: str | int | None = None,
                 passages: int = 3, handoff_message: str | None = N_("I'm handing you over to a member of our team."),
                 unsure_message: str | None = N_("I don't know the answer to that, so I'm passing you to a member "
                                                 "of our team.")) -> None:
        if when_unsure not in (None, "pass", "handoff") or when_human not in ("pass", "handoff"):
            raise ValueError("when_unsure and when_human are 'pass' or 'handoff'")
        self.knowledge = knowledge
        self.model = model
        self.when_unsure = when_unsure
        self.when_human = when_human
        self.team = team
        self.passages = passages
        self.handoff_message = handoff_message
        self.unsure_message = unsure_message
        self._own_knowledge = knowledge is None

    @classmethod
    def from_settings(cls, settings: Settings) -> KnowledgeHandler:
        """The plugin `knowledge` (BOTKIT_HANDLERS=keywords,knowledge): the bot's BOTKIT_KB_* settings, no model."""
        return cls(when_unsure=settings.botkit_kb_when_unsure)

    @property
    def takes_all(self) -> frozenset[str]:
        """Handing off what it cannot answer, it leaves no question to the handlers after it."""
        return self.events if self.when_unsure == "handoff" else frozenset()

    async def startup(self, bot: Bot) -> None:
        settings = bot.runtime.settings if bot.runtime is not None else load_settings()
        if self.when_unsure is None:
            self.when_unsure = settings.botkit_kb_when_unsure
        if self.knowledge is None:
            self.knowledge = await asyncio.to_thread(knowledge_from_settings, settings)
        await asyncio.to_thread(self.knowledge.check_embedder)  # a mismatch stops start-up with what to do
        if self.team is not None:
            bot.check_teams([self.team])
        if self.model is not None:
            await self.model.startup(bot)

    async def shutdown(self) -> None:
        if self.model is not None:
            await self.model.shutdown()
        if self._own_knowledge and self.knowledge is not None:
            self.knowledge.index.close()
            self.knowledge = None

    async def handle(self, ctx: Context) -> bool:
        question = ctx.text.strip()
        if not question:
            return False
        if self.knowledge is None:
            raise ConfigError("KnowledgeHandler.startup() was not called")
        conversation = f"{ctx.account_id}/{ctx.conversation_id}"
        found = await ctx.once("knowledge", lambda: self._decide_timed(question, conversation))
        log.info("knowledge base: %s (confidence %.3f)", found["verdict"], found["confidence"],
                 extra={"conversation_id": ctx.conversation_id})
        if found["verdict"] == "human":
            if self.when_human == "pass":
                return False
            await ctx.handoff(team=self.team, message=ctx.t(self.handoff_message) if self.handoff_message else None,
                              note=ctx.t_agents(N_("The knowledge base routes this question to a person (a request "
                                                   "for a person or a complaint).")))
            return True
        if found["verdict"] == "unanswered":
            if self.when_unsure == "pass":
                return False
            await ctx.handoff(team=self.team, message=ctx.t(self.unsure_message) if self.unsure_message else None,
                              note=ctx.t_agents(N_("The knowledge base has no answer to this question; `botkit kb "
                                                   "gaps` lists the questions it could not answer.")))
            return True
        if self.model is not None:
            return await self.model.answer(ctx, context=prompt(found["hits"]),
                                           finish=lambda text: with_sources(text, found["hits"]))
        await ctx.reply(article_message(found["hits"][0], ctx.channel))
        return True

    async def _decide_timed(self, question: str, conversation: str) -> dict[str, Any]:
        """`_decide` off the loop, on the delivery's timeline (an unanswered question is an outcome's kb_gap)."""
        started = time.perf_counter()
        found = await asyncio.to_thread(self._decide, question, conversation)
        timeline.kb_call("knowledge base", ms=(time.perf_counter() - started) * 1000,
                         answered=found["verdict"] != "unanswered")
        return found

    def _decide(self, question: str, conversation: str) -> dict[str, Any]:
        """Search, record a gap when there is one, and keep what the answer needs (JSON, for the journal)."""
        assert self.knowledge is not None
        with tracing.span("botkit.knowledge", passages=self.passages):
            found = self.knowledge.search(question, limit=max(self.passages, 3))
        confidence = found.best.confidence if found.best else 0.0
        if found.verdict != "answer":
            reason = "human" if found.verdict == "human" else "unanswered"
            self.knowledge.record_gap(question, reason, round(confidence, 4), conversation)
        hits = [{"title": h.passage.extra.get("document_title") or h.passage.title, "section": h.passage.title,
                 "text": h.passage.text, "link": h.passage.link, "description": h.passage.extra.get("description"),
                 "document": h.passage.document_id} for h in found.answers[:self.passages]]
        return {"verdict": found.verdict if hits or found.verdict != "answer" else "unanswered",
                "confidence": confidence, "hits": hits}


def prompt(hits: list[dict[str, Any]]) -> str:
    """The passages as the model reads them: numbered, each with its title and link."""
    blocks = []
    for number, hit in enumerate(hits, start=1):
        source = f" ({hit['link']})" if hit["link"] else ""
        blocks.append(f"[{number}] {hit['section']}{source}\n{hit['text']}")
    return PROMPT.format(passages="\n\n".join(blocks))


_CITATION = re.compile(r"\[(\d+)\]")


def with_sources(text: str, hits: list[dict[str, Any]]) -> str:
    """The model's text, followed by the sources it cited ([n]) that have a link."""
    cited = []
    for number in dict.fromkeys(int(n) for n in _CITATION.findall(text)):
        if 1 <= number <= len(hits) and hits[number - 1]["link"]:
            cited.append(f"[{number}] {hits[number - 1]['title']}: {hits[number - 1]['link']}")
    return text if not cited else text.rstrip() + "\n\n" + "\n".join(cited)


def article_message(hit: dict[str, Any], channel: str | None) -> Any:
    """The best passage as Chatwoot's `article` message where the channel shows it, else its text and link.

    The web widget and the API channel render `article`; every other channel's sender sends only the message's
    `content` (app/services/base/send_on_channel_service.rb and each channel's send_on_*_service.rb)."""
    text = hit["text"].strip()
    if hit["link"] and channel is not None and channels.channel(channel).rich:
        description = hit["description"] or (text[:197] + "…" if len(text) > 200 else text)
        return Article(text, [ArticleItem(hit["title"], hit["link"], description)])
    return f"{text}\n\n{hit['title']}: {hit['link']}" if hit["link"] else text
