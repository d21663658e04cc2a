"""A Dialogflow bot: every message of the contact goes to a Dialogflow ES or CX agent, as Chatwoot's own
Dialogflow integration does, so an agent built for that integration works unchanged.

    BOTKIT_BOT=bots.dialogflow_agent:bot
    DIALOGFLOW_PROJECT_ID=my-project
    GOOGLE_APPLICATION_CREDENTIALS=/run/secrets/dialogflow.json   # or DIALOGFLOW_CREDENTIALS_JSON='{...}'
    DIALOGFLOW_CX_AGENT_ID=...                                     # only for a CX agent

The agent's custom payloads are posted as Chatwoot messages (e.g. an input_select); `{"action": "handoff"}`
hands the conversation to humans (`"team": "billing"` assigns that team first, with BOTKIT_TEAMS giving its
id) and `{"action": "resolve"}` resolves it. See botkit/adapters/dialogflow.py for every setting.
"""

from __future__ import annotations

from typing import Any

from botkit import Bot
from botkit.adapters.dialogflow import DialogflowHandler


def make_bot(**settings: Any) -> Bot:
    """The bot; keyword arguments go to DialogflowHandler (e.g. client=..., project_id=...)."""
    return Bot("dialogflow_agent", [DialogflowHandler(**settings)])


bot = make_bot()
