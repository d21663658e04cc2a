"""Typed rich messages: input_select, cards, form, article and input_email.

Each class builds the `content`, `content_type` and `content_attributes` of one Chatwoot message and
checks at construction the item rules Chatwoot's `ContentAttributeValidator` applies (at least one item,
only the allowed keys, every card with at least one action), so a bad message fails here with a clear
sentence instead of a 422 from Chatwoot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal


class InvalidRichMessage(ValueError):
    """A rich message Chatwoot would refuse; the message says which part is wrong."""


def _drop_none(item: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in item.items() if value is not None}


class RichMessage:
    """A message with a `content_type` other than text. `to_payload()` gives the body fields to post."""

    content_type: ClassVar[str]
    content: str | None

    def items(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def to_payload(self) -> dict[str, Any]:
        return {
            "content": self.content,
            "content_type": self.content_type,
            "content_attributes": {"items": self.items()},
        }

    def _require_items(self, items: list[Any], kind: str) -> None:
        if not items:
            raise InvalidRichMessage(f"The {self.content_type} message needs at least one {kind}.")
        for item in items:
            if not isinstance(item, self._item_class):
                raise InvalidRichMessage(
                    f"Each {kind} of the {self.content_type} message must be built with "
                    f"{self._item_class.__name__}(...), not a {type(item).__name__}."
                )

    _item_class: ClassVar[type]


def _require_text(value: Any, what: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRichMessage(f"{what} must be a non-empty string.")


# input_select ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """One choice of an input_select; Chatwoot sends `value` back in `submitted_values`."""

    title: str
    value: str

    def __post_init__(self) -> None:
        _require_text(self.title, "An option's title")
        if not isinstance(self.value, str):
            raise InvalidRichMessage("An option's value must be a string.")

    def to_item(self) -> dict[str, Any]:
        return {"title": self.title, "value": self.value}


@dataclass
class InputSelect(RichMessage):
    """Buttons the contact picks one of."""

    content: str | None
    options: list[Option] = field(default_factory=list)
    content_type: ClassVar[str] = "input_select"
    _item_class: ClassVar[type] = Option

    def __post_init__(self) -> None:
        self._require_items(self.options, "option")

    def items(self) -> list[dict[str, Any]]:
        return [option.to_item() for option in self.options]


# cards ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CardAction:
    """A card button: `link` opens `uri`, `postback` sends `payload` back as the contact's message."""

    type: Literal["link", "postback"]
    text: str
    uri: str | None = None
    payload: str | None = None

    def __post_init__(self) -> None:
        _require_text(self.text, "A card action's text")
        if self.type == "link" and not self.uri:
            raise InvalidRichMessage("A link card action needs a uri.")
        if self.type == "postback" and self.payload is None:
            raise InvalidRichMessage("A postback card action needs a payload.")
        if self.type not in ("link", "postback"):
            raise InvalidRichMessage(f"A card action's type must be link or postback, not {self.type!r}.")

    def to_item(self) -> dict[str, Any]:
        return _drop_none({"type": self.type, "text": self.text, "uri": self.uri, "payload": self.payload})


@dataclass(frozen=True)
class Card:
    """One card; Chatwoot refuses a card without actions."""

    title: str
    description: str | None = None
    media_url: str | None = None
    actions: tuple[CardAction, ...] | list[CardAction] = ()

    def __post_init__(self) -> None:
        _require_text(self.title, "A card's title")
        if not self.actions:
            raise InvalidRichMessage(f"The card {self.title!r} needs at least one action (Chatwoot refuses it).")
        for action in self.actions:
            if not isinstance(action, CardAction):
                raise InvalidRichMessage("A card's actions must be CardAction objects.")

    def to_item(self) -> dict[str, Any]:
        item = {"title": self.title, "description": self.description, "media_url": self.media_url}
        return {**_drop_none(item), "actions": [action.to_item() for action in self.actions]}


@dataclass
class Cards(RichMessage):
    """A carousel of cards."""

    content: str | None
    cards: list[Card] = field(default_factory=list)
    content_type: ClassVar[str] = "cards"
    _item_class: ClassVar[type] = Card

    def __post_init__(self) -> None:
        self._require_items(self.cards, "card")

    def items(self) -> list[dict[str, Any]]:
        return [card.to_item() for card in self.cards]


# form -----------------------------------------------------------------------------------------------

FORM_FIELD_TYPES = ("text", "text_area", "email", "select")


@dataclass(frozen=True)
class FormField:
    """One field of a form; Chatwoot sends `{name, value}` back in `submitted_values`."""

    name: str
    label: str
    type: str = "text"
    placeholder: str | None = None
    options: tuple[Option, ...] | list[Option] | None = None
    default: str | None = None
    required: bool | None = None
    pattern: str | None = None
    title: str | None = None
    pattern_error: str | None = None

    def __post_init__(self) -> None:
        _require_text(self.name, "A form field's name")
        _require_text(self.label, f"The label of form field {self.name!r}")
        if self.type not in FORM_FIELD_TYPES:
            raise InvalidRichMessage(
                f"Form field {self.name!r} has type {self.type!r}; use one of {', '.join(FORM_FIELD_TYPES)}."
            )
        if self.type == "select" and not self.options:
            raise InvalidRichMessage(f"The select form field {self.name!r} needs options.")

    def to_item(self) -> dict[str, Any]:
        options = None if self.options is None else [option.to_item() for option in self.options]
        return _drop_none(
            {
                "type": self.type,
                "name": self.name,
                "label": self.label,
                "placeholder": self.placeholder,
                "options": options,
                "default": self.default,
                "required": self.required,
                "pattern": self.pattern,
                "title": self.title,
                "pattern_error": self.pattern_error,
            }
        )


@dataclass
class Form(RichMessage):
    """A form the contact fills in and submits."""

    content: str | None
    fields: list[FormField] = field(default_factory=list)
    content_type: ClassVar[str] = "form"
    _item_class: ClassVar[type] = FormField

    def __post_init__(self) -> None:
        self._require_items(self.fields, "field")
        names = [f.name for f in self.fields]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise InvalidRichMessage(f"Form field names must be unique; repeated: {', '.join(duplicates)}.")

    def items(self) -> list[dict[str, Any]]:
        return [f.to_item() for f in self.fields]


# article --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArticleItem:
    """A link to a help-center article."""

    title: str
    link: str
    description: str | None = None

    def __post_init__(self) -> None:
        _require_text(self.title, "An article's title")
        _require_text(self.link, f"The link of article {self.title!r}")

    def to_item(self) -> dict[str, Any]:
        return _drop_none({"title": self.title, "description": self.description, "link": self.link})


@dataclass
class Article(RichMessage):
    """A list of article links."""

    content: str | None
    articles: list[ArticleItem] = field(default_factory=list)
    content_type: ClassVar[str] = "article"
    _item_class: ClassVar[type] = ArticleItem

    def __post_init__(self) -> None:
        self._require_items(self.articles, "article")

    def items(self) -> list[dict[str, Any]]:
        return [article.to_item() for article in self.articles]


# input_email ----------------------------------------------------------------------------------------


@dataclass
class InputEmail(RichMessage):
    """Asks the contact for an email address; Chatwoot sends it back as `submitted_email`."""

    content: str | None
    content_type: ClassVar[str] = "input_email"

    def items(self) -> list[dict[str, Any]]:
        return []

    def to_payload(self) -> dict[str, Any]:
        # Chatwoot's validator has no rule for input_email and its widget needs no items.
        return {"content": self.content, "content_type": self.content_type, "content_attributes": {}}


# The item keys Chatwoot's ContentAttributeValidator allows, per content type (used by the fake too).
ALLOWED_ITEM_KEYS: dict[str, frozenset[str]] = {
    "input_select": frozenset({"title", "value"}),
    "cards": frozenset({"title", "description", "media_url", "actions"}),
    "form": frozenset(
        {"type", "placeholder", "label", "name", "options", "default", "required", "pattern", "title",
         "pattern_error"}
    ),
    "article": frozenset({"title", "description", "link"}),
}
ALLOWED_CARD_ACTION_KEYS = frozenset({"text", "type", "payload", "uri"})


def content_attributes_errors(content_type: str, content_attributes: Any) -> list[str]:
    """The errors Chatwoot's ContentAttributeValidator gives for these attributes (empty when valid)."""
    if content_type not in ALLOWED_ITEM_KEYS:
        return []
    items = content_attributes.get("items") if isinstance(content_attributes, dict) else None
    if not items or not isinstance(items, list):
        return ["At least one item is required."]
    if any(not isinstance(item, dict) for item in items):
        return ["Items should be a hash."]
    errors = []
    invalid = sorted({key for item in items for key in item} - ALLOWED_ITEM_KEYS[content_type])
    if invalid:
        errors.append(f"contains invalid keys for items : {invalid}")
    if content_type == "cards":
        if any(not item.get("actions") for item in items):
            errors.append("contains items missing actions")
        else:
            keys = {key for item in items for action in item["actions"] if isinstance(action, dict)
                    for key in action}
            invalid_actions = sorted(keys - ALLOWED_CARD_ACTION_KEYS)
            if invalid_actions:
                errors.append(f"contains invalid action keys : {invalid_actions}")
    return errors
