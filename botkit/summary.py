"""The hand-off summary: one private note that tells the agent taking over what they need.

What the contact wants, what the bot already answered or tried, the contact's language, and why the bot
handed off. A bot token cannot read a conversation's messages from Chatwoot
(app/controllers/concerns/access_token_auth_helper.rb), so the bot keeps its own short transcript in the
conversation's state (`remember`): the contact's messages and the bot's replies, the last `KEEP` of them,
each cut to `CHARS` characters. It goes when the conversation is resolved, with the rest of the state.

Two writers, same inputs:

- `built_summary(...)`: from the transcript and the reason, no network.
- `ModelSummarizer`: an OpenAI-compatible model writes it from the same transcript (BOTKIT_SUMMARY=model, or
  `auto` with OPENAI_API_KEY set). It is the bot's own OpenAI handler's
  client and model when it has one, so the summaries go where its answers go; otherwise a client from the
  OPENAI_* settings (botkit.agents.Agents.choose_summarizer says which at start-up). A model that fails or
  times out gives way to the built summary: a hand-off is never held up by its note.

The note is journaled like every action, and the model's text is kept with `ctx.once`, so a retried event
posts the same summary once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from botkit.i18n import N_

Translate = Callable[..., str]  # (message, **values) -> text, e.g. Context.t_agents


def english(message: str, **values: Any) -> str:
    """The untranslated text with its fields filled (what a Translate gives with no catalogue)."""
    return message.format(**values) if values else message

log = logging.getLogger("botkit.summary")

TRANSCRIPT = "transcript"  # the state key: a list of [role, text], role "contact" or "bot"
KEEP = 20
CHARS = 500
SUMMARY_MODES = ("auto", "model", "built", "off")
HEADER = "Hand-off summary"  # how every summary starts in English (tests look for it)
# The note's words, in the agents' language (BOTKIT_LANGUAGE; botkit/i18n.py).
TITLE = N_("Hand-off summary ({contact}; language: {tag})")  # `language` is gettext's own argument
THE_CONTACT = N_("the contact")
UNKNOWN = N_("unknown")
WHY = N_("Why: {reason}")
NOTE = N_("Note: {note}")
WANTS = N_("Wants: {text}")
ANSWERED = N_("The bot answered: {text}")
NOTHING_YET = N_("nothing yet")
LAST = N_("Last message: {text}")
PROMPT = ("You write the private note a support agent reads when a bot hands a conversation over to them. "
          "In at most five short lines, in the language {language}, say: what the contact wants; what the bot already "
          "answered or tried; anything the agent must not ask again. Do not greet, do not address the contact.")


def remember(state: dict[str, Any], role: str, text: str | None) -> None:
    """Add a line to the conversation's transcript (kept in `state`), trimmed to the last KEEP lines."""
    if not text or not text.strip():
        return
    lines = list(state.get(TRANSCRIPT) or [])
    lines.append([role, text.strip()[:CHARS]])
    state[TRANSCRIPT] = lines[-KEEP:]


def transcript_of(state: dict[str, Any]) -> list[tuple[str, str]]:
    """The transcript kept in `state`, oldest first, tolerant of anything malformed in it."""
    lines = state.get(TRANSCRIPT)
    if not isinstance(lines, list):
        return []
    return [(str(line[0]), str(line[1])) for line in lines if isinstance(line, list | tuple) and len(line) == 2]


@dataclass(frozen=True)
class HandoffFacts:
    """What a summary is written from."""

    reason: str  # why the bot handed off, in a few words ("the contact asked for a person", ...)
    transcript: list[tuple[str, str]]
    contact_name: str | None = None
    language: str | None = None  # the contact's language as a tag ("pt-BR"), when known
    detail: str | None = None  # the handler's own note, if it gave one

    def header(self, t: Translate = english) -> str:
        """Who, the language, why (`reason` is already in the agents' language) and the handler's note."""
        lines = [t(TITLE, contact=self.contact_name or t(THE_CONTACT), tag=self.language or t(UNKNOWN)),
                 t(WHY, reason=self.reason)]
        if self.detail:
            lines.append(t(NOTE, note=self.detail))
        return "\n".join(lines)


def built_summary(facts: HandoffFacts, t: Translate = english) -> str:
    """The summary without a model: the first thing the contact asked, the bot's last answers, the last
    message, and the reason; its words through `t` (the agents' language)."""
    said = [text for role, text in facts.transcript if role == "contact"]
    answered = [text for role, text in facts.transcript if role == "bot"]
    lines = [facts.header(t)]
    if said:
        lines.append(t(WANTS, text=_short(said[0])))
    answers = " | ".join(_short(text, 120) for text in answered[-2:]) if answered else t(NOTHING_YET)
    lines.append(t(ANSWERED, text=answers))
    if len(said) > 1:
        lines.append(t(LAST, text=_short(said[-1])))
    return "\n".join(lines)


def _short(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class ModelSummarizer:
    """A model writes the summary (Chat Completions on any OpenAI-compatible server).

    `client` is an `openai.AsyncOpenAI`; `timeout` seconds per attempt; `owns_client`: `close` closes it (not
    when it is a handler's, which closes its own). Raises nothing: on any failure it returns None and the caller
    uses `built_summary`."""

    def __init__(self, client: Any, model: str, *, timeout: float = 15.0, owns_client: bool = True) -> None:
        self.client = client
        self.model = model
        self.timeout = timeout
        self.owns_client = owns_client

    @property
    def server(self) -> str:
        """Where the model is asked, for the start-up log: the client's base URL without credentials or query."""
        url = getattr(self.client, "base_url", None)
        if url is None:
            return "an unknown server"
        url = httpx.URL(str(url))
        return f"{url.scheme}://{url.netloc.decode('ascii')}{url.path}"

    @classmethod
    def from_openai_settings(cls, settings: Any) -> ModelSummarizer:
        """Built from the OPENAI_* settings read from the bot's sources (`settings`: botkit's Settings;
        OPENAI_API_KEY, OPENAI_BASE_URL, OPENAI_MODEL, ...). ConfigError without a key; ImportError without the
        openai package."""
        import openai  # the optional extra: only a bot with a model needs it

        from botkit.adapters.openai import OpenAISettings

        section = settings.section(OpenAISettings)
        key = section.api_key or settings.openai_api_key
        if key is None or not key.get_secret_value():
            from botkit.config import ConfigError

            raise ConfigError("BOTKIT_SUMMARY=model needs OPENAI_API_KEY (any value for a local server).")
        client = openai.AsyncOpenAI(api_key=key.get_secret_value(), base_url=section.base_url,
                                    timeout=section.timeout, max_retries=section.max_retries)
        return cls(client, section.model, timeout=section.timeout)

    async def write(self, facts: HandoffFacts, t: Translate = english, language: str = "en") -> str | None:
        """The model's summary under the note's header (both in the agents' `language`), or None."""
        lines = "\n".join(f"{role}: {text}" for role, text in facts.transcript) or "(no messages kept)"
        request = (f"Why the bot hands off: {facts.reason}\n"
                   + (f"The bot's note: {facts.detail}\n" if facts.detail else "")
                   + f"Transcript, oldest first:\n{lines}")
        try:
            completion = await self.client.chat.completions.create(
                model=self.model, timeout=self.timeout, max_tokens=300,
                messages=[{"role": "system", "content": PROMPT.format(language=language)},
                          {"role": "user", "content": request}])
            text = (completion.choices[0].message.content or "").strip()
        except Exception as exc:  # any failure: the built summary takes its place
            log.warning("the model could not write the hand-off summary (%s); using the built one",
                        type(exc).__name__)
            return None
        return f"{facts.header(t)}\n{text}" if text else None

    async def close(self) -> None:
        if self.owns_client:
            await self.client.close()
