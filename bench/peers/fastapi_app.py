"""Peer (b): the same bot inline in FastAPI with httpx: async, so many requests wait at once, but the
keyword logic and the Chatwoot calls still run inside the request; no signature check, no dedupe, no queue.

    uvicorn fastapi_app:app --port PORT      (one process, uvloop + httptools)

CHATWOOT_BASE_URL, CHATWOOT_BOT_TOKEN; MODEL_SECONDS > 0: ask the bench's model first (it takes that long).
"""

import os

import httpx
from fastapi import FastAPI, Request, Response
from rules import FALLBACK, TEAMS, match

app = FastAPI()
BASE = os.environ["CHATWOOT_BASE_URL"]
HEADERS = {"api_access_token": os.environ["CHATWOOT_BOT_TOKEN"]}
MODEL_SECONDS = float(os.environ.get("MODEL_SECONDS", "0"))
client = httpx.AsyncClient(base_url=BASE, headers=HEADERS, timeout=60,
                           limits=httpx.Limits(max_connections=200, max_keepalive_connections=200))


async def send(account, conversation, content):
    await client.post(f"/api/v1/accounts/{account}/conversations/{conversation}/messages",
                      json={"content": content, "message_type": "outgoing"})


@app.post("/webhook")
async def webhook(request: Request):
    data = await request.json()
    if data.get("event") != "message_created" or data.get("message_type") != "incoming":
        return Response(status_code=200)
    account, conversation = data["account"]["id"], data["conversation"]["id"]
    if MODEL_SECONDS:
        answer = (await client.post("/__bench/model", params={"seconds": MODEL_SECONDS})).json()
        await send(account, conversation, answer["text"])
        return Response(status_code=200)
    rule = match(data.get("content") or "")
    if rule is None:
        await send(account, conversation, FALLBACK)
        return Response(status_code=200)
    await send(account, conversation, rule["reply"])
    if rule.get("team"):
        await client.post(f"/api/v1/accounts/{account}/conversations/{conversation}/assignments",
                          json={"team_id": TEAMS[rule["team"]]})
    await client.post(f"/api/v1/accounts/{account}/conversations/{conversation}/toggle_status",
                      json={"status": "open"})
    return Response(status_code=200)
