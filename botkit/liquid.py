"""Text sent as text: keep Chatwoot from rendering a bot's words as a Liquid template.

Chatwoot renders the content of every outgoing message as Liquid before saving it
(`app/models/concerns/liquidable.rb#process_liquid_in_content`): `{{contact.email}}` in a model's answer or
in a contact's words quoted back is replaced by conversation data, and `{% if %}` is evaluated. Only text in
backticks is left alone (Chatwoot wraps it in `{% raw %}`), and a Liquid syntax error leaves the content as it
was.

`as_written(text)` makes the text render to itself: outside backtick spans, each `{` becomes the Liquid
output of the string "{" (`{{ "{" }}`), so no tag or variable can start. Text with no `{{` or `{%` is left as
it is (nothing in it is Liquid). When a backtick span itself holds an `endraw` tag, Chatwoot's own wrapping
fails to parse, and it then saves the content unchanged: such text is returned unchanged too.
"""

from __future__ import annotations

import re

# Chatwoot's own pattern for the spans it protects (`modified_liquid_content`: /`(.*?)`/m).
CODE_SPAN = re.compile(r"(`.*?`)", re.DOTALL)
_ENDRAW = re.compile(r"\{%-?\s*endraw\b")
LITERAL_BRACE = '{{ "{" }}'


def as_written(text: str) -> str:
    """`text` escaped so that Chatwoot's Liquid rendering gives back exactly `text`."""
    if "{{" not in text and "{%" not in text:
        return text
    parts = CODE_SPAN.split(text)  # odd indexes are the backtick spans Chatwoot protects itself
    if any(_ENDRAW.search(code) for code in parts[1::2]):
        return text  # Chatwoot's wrapping fails to parse, and then it keeps the content as it is
    return "".join(part if index % 2 else part.replace("{", LITERAL_BRACE) for index, part in enumerate(parts))


def saved_as(posted: str) -> str:
    """What Chatwoot saves for content botkit posted: each `{{ "{" }}` that `as_written` put outside a backtick
    span renders back to `{`. Used to recognise a message already saved when a POST's answer was unclear."""
    parts = CODE_SPAN.split(posted)
    return "".join(part if index % 2 else part.replace(LITERAL_BRACE, "{") for index, part in enumerate(parts))
