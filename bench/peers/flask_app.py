"""Peer (a): the Agent Bots guide's Flask bot as people deploy it: gunicorn sync workers, the keyword logic
and the Chatwoot calls inside the request, no signature check, no dedupe, no queue.

    gunicorn --workers 5 --bind 127.0.0.1:PORT flask_app:app     (5 = 2 x cores + 1, gunicorn's advice)

CHATWOOT_BASE_URL, CHATWOOT_BOT_TOKEN; MODEL_SECONDS > 0: ask the bench's model first (it takes that long).
"""

import os

import requests
from flask import Flask, request
from rules import FALLBACK, TEAMS, match

app = Flask(__name__)
BASE = os.environ["CHATWOOT_BASE_URL"]
HEADERS = {"api_access_token": os.environ["CHATWOOT_BOT_TOKEN"]}
MODEL_SECONDS = float(os.environ.get("MODEL_SECONDS", "0"))
session = requests.Session()


def send(account, conversation, content):
    url = f"{BASE}/api/v1/accounts/{account}/conversations/{conversation}/messages"
    session.post(url, json={"content": content, "message_type": "outgoing"}, headers=HEADERS, timeout=30)


@app.post("/webhook")
def webhook():
    data = request.get_json(force=True, silent=True) or {}
    if data.get("event") != "message_created" or data.get("message_type") != "incoming":
        return "", 200
    account, conversation = data["account"]["id"], data["conversation"]["id"]
    if MODEL_SECONDS:
        answer = session.post(f"{BASE}/__bench/model", params={"seconds": MODEL_SECONDS}, timeout=60).json()
        send(account, conversation, answer["text"])
        return "", 200
    rule = match(data.get("content") or "")
    if rule is None:
        send(account, conversation, FALLBACK)
        return "", 200
    send(account, conversation, rule["reply"])
    if rule.get("team"):
        session.post(f"{BASE}/api/v1/accounts/{account}/conversations/{conversation}/assignments",
                     json={"team_id": TEAMS[rule["team"]]}, headers=HEADERS, timeout=30)
    session.post(f"{BASE}/api/v1/accounts/{account}/conversations/{conversation}/toggle_status",
                 json={"status": "open"}, headers=HEADERS, timeout=30)
    return "", 200

