"""The guide's keyword logic, shared by the Python peers (the Express peer has the same table): the same
rules and fallback as botkit's default bot (botkit/adapters/keywords.py GUIDE_RULES)."""

import re

RULES = [
    {"keywords": ["billing", "payment"], "reply": "I'm transferring you to our billing team.", "team": "billing"},
    {"keywords": ["technical", "bug"], "reply": "Let me connect you with our technical support team.",
     "team": "technical"},
    {"keywords": ["human", "agent", "person"], "reply": "Let me connect you with a human agent."},
]
TEAMS = {"billing": 1, "technical": 2}  # BOTKIT_TEAMS=billing=1,technical=2 for botkit
FALLBACK = "How can I help you today? You can ask about billing or technical issues."


def match(text):
    words = set(re.findall(r"\w+", text.lower()))
    return next((rule for rule in RULES if words & set(rule["keywords"])), None)
