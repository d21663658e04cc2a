"""The keyword router: rules of keywords (or a regex) mapped to a reply, a team, a hand-off and labels.

Keywords match whole words, ignoring case and accents ("Facturación" matches "facturacion"). Rules are tried
in order; the first match wins. Rules come from Python or from a TOML file:

    [[rule]]
    keywords = ["billing", "payment"]
    reply = "I'm transferring you to our billing team."
    team = "billing"
    handoff = true
    labels = ["billing"]

    [[rule]]
    language = "pt"               # only for contacts writing Portuguese (botkit/i18n.py: how it is known)
    keywords = ["boleto", "fatura"]
    reply = "Vou transferir você para a equipe financeira."
    team = "billing"

    [fallback]
    reply = "How can I help you today?"

Replies go through the bot's catalogue (`ctx.t`), so a reply that is a msgid of botkit's catalogue, or of the
bot's own, reaches each contact in their language; other text is sent as written.

As a plugin (`BOTKIT_HANDLERS=keywords`) it reads its rules from the file BOTKIT_KEYWORDS_FILE names (its
settings class, `KeywordSettings`, read like every setting: environment, `.env`, a bot's BOTKIT_BOTS_FILE
table), or uses the rules of Chatwoot's Agent Bots guide (billing, technical, human) when none is set.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict

from botkit import i18n
from botkit.bot import Bot, Handler
from botkit.config import ConfigError, Settings, read_settings
from botkit.context import Context
from botkit.i18n import N_
from botkit.text import fold, keyword_pattern


class KeywordSettings(BaseSettings):
    """BOTKIT_KEYWORDS_FILE: the keyword router's rules as a TOML file (none: the guide's rules)."""

    model_config = SettingsConfigDict(env_prefix="BOTKIT_KEYWORDS_", env_file=".env", extra="ignore")

    file: str | None = None


@dataclass
class Rule:
    keywords: Sequence[str] = ()
    regex: str | None = None
    reply: str | None = None
    team: str | int | None = None
    handoff: bool = False
    labels: Sequence[str] = field(default_factory=tuple)
    language: str | None = None  # only for contacts in this language ("pt" takes pt_BR and pt_PT alike)

    def __post_init__(self) -> None:
        if not self.keywords and not self.regex:
            raise ValueError("a rule needs keywords or a regex")
        if self.language is not None and i18n.normalize(self.language) is None:
            raise ValueError(f"language {self.language!r} is not a language such as en, pt_BR, es, fr or de")
        self._keywords = keyword_pattern(self.keywords) if self.keywords else None
        self._regex = re.compile(self.regex, re.IGNORECASE) if self.regex else None

    def speaks(self, language: str) -> bool:
        """Does the rule apply to a contact in `language` (a catalogue language)?"""
        if self.language is None:
            return True
        wanted = i18n.normalize(self.language) or ""
        return language == wanted or ("_" not in wanted and language.split("_")[0] == wanted)

    def matches(self, text: str) -> bool:
        return bool((self._keywords and self._keywords.search(fold(text)))
                    or (self._regex and self._regex.search(text)))


class KeywordRouter(Handler):
    name = "keywords"

    def __init__(self, rules: Sequence[Rule], *, fallback: str | None = None) -> None:
        self.rules = list(rules)
        self.fallback = fallback

    @classmethod
    def from_toml(cls, path: str | Path) -> KeywordRouter:
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"the keyword rules file {path} cannot be read ({exc}).") from None
        try:
            rules = [Rule(**_rule_fields(r)) for r in data.get("rule", [])]
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"the keyword rules file {path} has a bad rule ({exc}).") from None
        return cls(rules, fallback=(data.get("fallback") or {}).get("reply"))

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> KeywordRouter:
        """The plugin: the rules BOTKIT_KEYWORDS_FILE names in the bot's settings (or the environment and
        `.env` when none are given), else the guide's."""
        own = settings.section(KeywordSettings) if settings is not None else read_settings(KeywordSettings)
        return cls.from_toml(own.file) if own.file else cls(GUIDE_RULES, fallback=GUIDE_FALLBACK)

    @property
    def takes_all(self) -> frozenset[str]:
        """With a fallback reply, every new message is answered: nothing after this router sees one."""
        return frozenset({"message_created"}) if self.fallback is not None else frozenset()

    async def startup(self, bot: Bot) -> None:
        bot.check_teams(str(r.team) for r in self.rules if r.team is not None)

    async def handle(self, ctx: Context) -> bool:
        text = ctx.text
        for rule in self.rules:
            if rule.speaks(ctx.language) and rule.matches(text):
                await self.apply(ctx, rule)
                return True
        if self.fallback is not None and ctx.event.name == "message_created":
            await ctx.reply(ctx.t(self.fallback))
            return True
        return False

    @staticmethod
    async def apply(ctx: Context, rule: Rule) -> None:
        if rule.reply:
            await ctx.reply(ctx.t(rule.reply))
        if rule.labels:
            await ctx.add_labels(*rule.labels)
        if rule.handoff:
            await ctx.handoff(team=rule.team, reason="keywords")
        elif rule.team is not None:
            await ctx.assign_team(rule.team)


# The custom business logic of Chatwoot's Agent Bots guide: the default bot's rules, with the guide's English
# keywords and their words in the catalogue's other languages (pt, es, fr, de); replies in the contact's language.
GUIDE_RULES = (
    Rule(keywords=["billing", "payment", "cobrança", "pagamento", "fatura", "facturación", "pago", "factura",
                   "facturation", "paiement", "rechnung", "zahlung"],
         reply=N_("I'm transferring you to our billing team."), team="billing", handoff=True),
    Rule(keywords=["technical", "bug", "técnico", "técnica", "technique", "technisch", "fehler"],
         reply=N_("Let me connect you with our technical support team."), team="technical", handoff=True),
    Rule(keywords=["human", "agent", "person", "humano", "atendente", "pessoa", "persona", "agente", "humain",
                   "conseiller", "mensch", "mitarbeiter"],
         reply=N_("Let me connect you with a human agent."), handoff=True),
)
GUIDE_FALLBACK = N_("How can I help you today? You can ask about billing or technical issues.")


def _rule_fields(raw: dict[str, Any]) -> dict[str, Any]:
    allowed = {"keywords", "regex", "reply", "team", "handoff", "labels", "language"}
    unknown = set(raw) - allowed
    if unknown:
        raise ValueError(f"unknown keys {', '.join(sorted(unknown))}")
    return raw
