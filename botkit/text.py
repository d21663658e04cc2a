"""How botkit compares words: `fold` (lowercase, no accents) and `keyword_pattern` (whole words of a list)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable


def fold(text: str) -> str:
    """Lowercase without accents: how keywords are compared."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def keyword_pattern(keywords: Iterable[str]) -> re.Pattern[str]:
    """Whole-word, case- and accent-insensitive match of any keyword (apply to fold(text))."""
    words = sorted({fold(k) for k in keywords if k.strip()}, key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(w) for w in words) + r")(?!\w)")
