"""botkit: the bot side of Chatwoot Agent Bots."""

from botkit.adapters.keywords import KeywordRouter, Rule
from botkit.bot import Bot, Handler, Policies
from botkit.context import Context
from botkit.errors import GiveUp
from botkit.events import ConversationEvent, Event, MessageEvent, WebwidgetTriggered
from botkit.files import File
from botkit.router import Router

__all__ = [
    "Bot",
    "Context",
    "ConversationEvent",
    "Event",
    "File",
    "GiveUp",
    "Handler",
    "KeywordRouter",
    "MessageEvent",
    "Policies",
    "Router",
    "Rule",
    "WebwidgetTriggered",
]
