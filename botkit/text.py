"""How botkit compares words: `fold` (lowercase, no accents) and `keyword_pattern` (whole words of a list,
never inside an e-mail address, a URL or a number)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable


def fold(text: str) -> str:
    """Lowercase without accents: how keywords are compared."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


# What a keyword never matches inside: e-mail addresses, URLs and web addresses, paths, and numbers written
# with separators ("billing" is not in billing.desk@example.net, and "2" is not in 1.2 or 2/3).
_NOT_WORDS = re.compile(
    r"[^\s@]+@[^\s@]+"  # e-mail addresses
    r"|\b(?:[a-z][a-z0-9+.-]*://|www\.)\S+"  # URLs
    r"|[\w-]+(?:\.[\w-]+)+/\S*|[\w-]+(?:\.[\w-]+){2,}"  # a host with a path, a dotted name of three parts
    r"|\d+(?:[.,:/-]\d+)+"  # numbers written with separators
)


class Keywords:
    """Whole words of a list, case- and accent-insensitive, outside addresses and numbers (apply to fold(text))."""

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern

    def search(self, text: str) -> re.Match[str] | None:
        return self.pattern.search(_NOT_WORDS.sub(lambda m: " " * len(m.group()), text))


def keyword_pattern(keywords: Iterable[str]) -> Keywords:
    """Whole-word, case- and accent-insensitive match of any keyword (apply to fold(text)), never inside an
    e-mail address, a URL or a number."""
    words = sorted({fold(k) for k in keywords if k.strip()}, key=len, reverse=True)
    return Keywords(re.compile(r"(?<!\w)(?:" + "|".join(re.escape(w) for w in words) + r")(?!\w)"))
