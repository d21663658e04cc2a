"""Languages: every fixed string botkit sends comes from a gettext catalogue, in the contact's language.

The catalogues are gettext `.po` files under `botkit/locales/<language>/LC_MESSAGES/botkit.po` (English msgids;
pt_BR, es, fr, de to start), shipped compiled as `.mo` beside them: a wheel, an editable install and a git clone
all carry them with no build step, and the standard `gettext` loader reads them. `make i18n` extracts the
strings marked in the code and compiles the `.mo`s with Babel; a test fails when a `.mo` is older than its `.po`.

A string with no translation in a language comes out in English (the msgid), so a missing translation is never
an error. A bot adds its own catalogues (`Bot(locales="mybot/locales")`, domain `messages`): they are searched
before botkit's, so a bot may also re-word botkit's strings.

The contact's language is read from what Chatwoot sends, first found wins (`language_candidates`):

1. the contact's custom attribute `language` or `locale` (set by an agent, an automation, or the widget's
   `setCustomAttributes`);
2. the contact's additional attribute `language_code` (Telegram contacts: `app/services/telegram/
   incoming_message_service.rb#additional_attributes`) or `language`/`locale`;
3. the conversation's custom attribute `language` or `locale`;
4. the conversation's additional attribute `browser_language` (web widget contacts: the first language of the
   browser's Accept-Language, `app/controllers/api/v1/widget/base_controller.rb#conversation_params`);
5. on phone channels (WhatsApp, SMS), the official languages of the country of the contact's number
   (`phonenumbers` for the country, Babel's CLDR data for its languages: +55 gives Portuguese, +34 Spanish);
6. the bot's default language (`BOTKIT_LANGUAGE`).

A bot can skip all of that and speak one language (`Bot(language="pt_BR")`). Private notes are for agents and
use the bot's default language.
"""

from __future__ import annotations

import functools
import gettext
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import phonenumbers
from babel import Locale, UnknownLocaleError
from babel.languages import get_official_languages

log = logging.getLogger("botkit.i18n")

LOCALES_DIR = Path(__file__).parent / "locales"
DOMAIN = "botkit"  # botkit's own catalogue
BOT_DOMAIN = "messages"  # a bot's own catalogues
DEFAULT_LANGUAGE = "en"
# Channels whose contacts are phone numbers (app/models/channel/*.rb)
PHONE_CHANNELS = frozenset({"Channel::Whatsapp", "Channel::Sms", "Channel::TwilioSms"})


def N_(message: str) -> str:  # noqa: N802 (gettext's own name for "mark for extraction, translate later")
    """Mark a string for the catalogue without translating it here (module constants, defaults)."""
    return message


def available(dirs: Iterable[Path] = (LOCALES_DIR,)) -> list[str]:
    """The languages that have a catalogue in any of `dirs` (directory names, e.g. "pt_BR"), English included."""
    found = {DEFAULT_LANGUAGE}
    for directory in dirs:
        if directory.is_dir():
            found.update(p.name for p in directory.iterdir() if (p / "LC_MESSAGES").is_dir())
    return sorted(found)


def normalize(tag: Any) -> str | None:
    """A language tag as Chatwoot or a browser writes it ("pt-BR", "pt_br", "es-419", "de") as a Babel
    identifier ("pt_BR", "es_419", "de"); None when it is not a language."""
    if not isinstance(tag, str) or not tag.strip():
        return None
    text = tag.strip().split(",")[0].split(";")[0].strip()  # an Accept-Language value: its first entry
    try:
        return str(Locale.parse(text.replace("-", "_")))
    except (UnknownLocaleError, ValueError, TypeError):
        return None


def best_match(tag: str | None, languages: Sequence[str]) -> str | None:
    """The catalogue language for a contact's language: exact, else the same language in another region
    ("pt" and "pt_PT" get "pt_BR", "es_MX" gets "es"), else None."""
    wanted = normalize(tag)
    if wanted is None:
        return None
    if wanted in languages:
        return wanted
    base = wanted.split("_")[0]
    if base in languages:
        return base
    return next((lang for lang in languages if lang.split("_")[0] == base), None)


def language_candidates(event: Any) -> list[str]:
    """The language tags Chatwoot gives for an event's contact, most specific first (module docstring)."""
    found: list[Any] = []
    contact = getattr(event, "contact", None)
    conversation = getattr(event, "conversation", None)
    if contact is not None:
        found += [contact.custom_attributes.get(k) for k in ("language", "locale")]
        found += [contact.additional_attributes.get(k) for k in ("language_code", "language", "locale")]
    if conversation is not None:
        found += [conversation.custom_attributes.get(k) for k in ("language", "locale")]
        found.append(conversation.additional_attributes.get("browser_language"))
        if contact is not None and conversation.channel in PHONE_CHANNELS:
            found += phone_languages(contact.phone_number)
    return [tag for tag in found if isinstance(tag, str) and tag.strip()]


@functools.lru_cache(maxsize=1024)
def phone_languages(number: str | None) -> tuple[str, ...]:
    """The official languages of the country of an E.164 number ("+5511..." -> ("pt",)); () when unknown."""
    if not number:
        return ()
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(number))
    except phonenumbers.NumberParseException:
        return ()
    return tuple(get_official_languages(region, de_facto=True)) if region else ()


class Catalogue:
    """botkit's catalogue plus a bot's own: `gettext(language, message, **values)` -> the translated text.

    `values` fill `{name}` fields after translation (a translation may reorder them). Unknown languages and
    strings with no translation come out in English.
    """

    def __init__(self, dirs: Iterable[str | Path] = ()) -> None:
        self.bot_dirs = [Path(d) for d in dirs]
        self.languages = available([LOCALES_DIR, *self.bot_dirs])

    @functools.lru_cache(maxsize=64)  # noqa: B019 (one per bot, kept for the process's life)
    def translations(self, language: str) -> gettext.NullTranslations:
        chain: gettext.NullTranslations = gettext.translation(
            DOMAIN, LOCALES_DIR, languages=[language], fallback=True)
        for directory in reversed(self.bot_dirs):
            own = gettext.translation(BOT_DOMAIN, directory, languages=[language], fallback=True)
            own.add_fallback(chain)
            chain = own
        return chain

    def gettext(self, language: str, message: str, **values: Any) -> str:
        text = self.translations(language).gettext(message)
        return text.format(**values) if values else text

    def ngettext(self, language: str, singular: str, plural: str, n: int, **values: Any) -> str:
        text = self.translations(language).ngettext(singular, plural, n)
        return text.format(n=n, **values)

    def language_for(self, event: Any, default: str = DEFAULT_LANGUAGE) -> str:
        """The catalogue language to answer this event's contact in (module docstring), else `default`."""
        for tag in language_candidates(event):
            match = best_match(tag, self.languages)
            if match is not None:
                return match
        return best_match(default, self.languages) or DEFAULT_LANGUAGE


DEFAULT_CATALOGUE = Catalogue()
