"""`botkit doctor`: check a deployment from the bot's side, one line per check, each red line saying what to do.

1. the settings load; 2. Chatwoot answers at CHATWOOT_BASE_URL (`GET /api`, which needs no token);
3. the bot token is valid and which bot endpoints it reaches, probed harmlessly on a conversation that does
not exist: 404 means the token works and the endpoint is allowed, 401 "not authorized for bots" that the
release does not allow it, 401 "Invalid Access Token" a bad token; 4. a webhook secret is set; 5. with
`--url`, the public outgoing URL answers a signed test delivery (the unknown event `botkit_doctor_ping`,
which a botkit receiver acks as ignored), with a warning when Chatwoot 4.14+ would refuse a private host.

Exit code 1 when any check is red. Colours only on a terminal (and not with NO_COLOR).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any, TextIO

import httpx

from botkit.chatwoot import (
    TOKEN_HEADER,
    BotNotInAccount,
    InvalidToken,
    NotAuthorizedForBots,
    NotFound,
    NotInAccount,
    PermissionDenied,
    TokenMissing,
    error_for_response,
)
from botkit.commands.provision import private_url_warning
from botkit.config import ConfigError, Settings, load_settings
from botkit.security import signed_headers

PROBE_CONVERSATION = 2_147_483_000  # a display id no conversation has
# (action, method, path suffix, what botkit needs it for, required?)
PROBES = (
    ("messages#create", "POST", "/messages", "replies and notes", True),
    ("conversations#toggle_status", "POST", "/toggle_status", "hand-offs", True),
    ("assignments#create", "POST", "/assignments", "team assignments", True),
    ("conversations#show", "GET", "", "merged custom attributes (Chatwoot 4.14.2+)", False),
    ("labels#index", "GET", "/labels", "labels (Chatwoot 4.14.2+)", False),
    ("conversations#toggle_typing_status", "POST", "/toggle_typing_status", "typing (Chatwoot 4.11.2+)", False),
    ("conversations#custom_attributes", "POST", "/custom_attributes", "custom attributes (Chatwoot 4.2+)", False),
)
OK, WARN, FAIL = "ok", "warn", "fail"
SLOW_ACK_MS = 2000


@dataclass
class Check:
    status: str  # ok, warn or fail
    text: str


def add_commands(subparsers: Any) -> None:
    parser = subparsers.add_parser("doctor", help="check the settings, Chatwoot, the bot token and the webhook")
    parser.add_argument("--url", default=None, help="the bot's public outgoing URL, to send it a signed test delivery")
    parser.set_defaults(func=run_doctor)


def run_doctor(args: argparse.Namespace) -> int:
    checks = asyncio.run(diagnose(url=args.url))
    print_checks(checks, sys.stdout)
    return 1 if any(c.status == FAIL for c in checks) else 0


def print_checks(checks: list[Check], out: TextIO) -> None:
    colour = out.isatty() and "NO_COLOR" not in os.environ
    marks = {OK: ("✓", "32"), WARN: ("!", "33"), FAIL: ("✗", "31")}
    for check in checks:
        mark, code = marks[check.status]
        line = f"{mark} {check.text}"
        out.write((f"\033[{code}m{line}\033[0m" if colour else line) + "\n")


async def diagnose(settings: Settings | None = None, *, url: str | None = None, timeout: float = 5.0) -> list[Check]:
    """Every check, in order. `settings` defaults to the environment and .env."""
    checks: list[Check] = []
    if settings is None:
        try:
            settings = load_settings()
        except ConfigError as exc:
            return [Check(FAIL, f"settings: {exc}")]
    checks.append(Check(OK, "settings load"))
    async with httpx.AsyncClient(timeout=timeout) as http:
        if await _chatwoot_answers(http, settings, checks):
            await _token(http, settings, checks)
        _secret(settings, checks)
        if url:
            await _outgoing_url(http, settings, url, checks)
    return checks


async def _chatwoot_answers(http: httpx.AsyncClient, settings: Settings, checks: list[Check]) -> bool:
    base = settings.chatwoot_base_url
    if base is None:
        checks.append(Check(FAIL, "CHATWOOT_BASE_URL is not set: set it to Chatwoot's URL, e.g. "
                                  "https://chat.example.com (without it botkit serve only prints actions)."))
        return False
    try:
        response = await http.get(f"{base}/api")
    except httpx.TransportError as exc:
        checks.append(Check(FAIL, f"Chatwoot does not answer at {base} ({type(exc).__name__}): check "
                                  "CHATWOOT_BASE_URL and that this machine can reach it."))
        return False
    version = _json(response).get("version") if response.status_code == 200 else None
    if not version:
        checks.append(Check(FAIL, f"{base}/api answers HTTP {response.status_code} but not as Chatwoot does: "
                                  "CHATWOOT_BASE_URL must be Chatwoot's root URL, without /api or /app."))
        return False
    checks.append(Check(OK, f"Chatwoot {version} answers at {base}"))
    return True


async def _token(http: httpx.AsyncClient, settings: Settings, checks: list[Check]) -> None:
    if settings.chatwoot_bot_token is None:
        checks.append(Check(FAIL, "CHATWOOT_BOT_TOKEN is not set: set it to the agent bot's access token "
                                  "(botkit provision prints it)."))
        return
    token = settings.chatwoot_bot_token.get_secret_value()
    account = settings.chatwoot_account_id
    base = f"{settings.chatwoot_base_url}/api/v1/accounts/{account}/conversations/{PROBE_CONVERSATION}"
    reached: list[str] = []
    missing: list[tuple[str, bool]] = []
    for action, method, suffix, needed_for, required in PROBES:
        response = await http.request(method, base + suffix, headers={TOKEN_HEADER: token},
                                      json=None if method == "GET" else {})
        if response.status_code == 404:
            reached.append(action)
            continue
        error = error_for_response(response, action, secrets=[token])
        if isinstance(error, TokenMissing):
            checks.append(Check(FAIL, f"Chatwoot received no token ({error.detail!r}): check that no proxy in "
                                      "front of Chatwoot drops the api-access-token header."))
            return
        if isinstance(error, InvalidToken):
            checks.append(Check(FAIL, "CHATWOOT_BOT_TOKEN is not a valid access token: copy the agent bot's token "
                                      "again (botkit bots reset-token ID prints a new one)."))
            return
        if isinstance(error, NotAuthorizedForBots):
            missing.append((f"{action} ({needed_for})", required))
            continue
        if isinstance(error, BotNotInAccount | NotInAccount):
            checks.append(Check(FAIL, f"the token may not act in account {account} ({error.detail!r}): "
                                      f"connect the agent bot to an inbox of account {account}, or set "
                                      "CHATWOOT_ACCOUNT_ID to its account."))
            return
        if isinstance(error, PermissionDenied):
            checks.append(Check(FAIL, f"account {account}: Chatwoot answered {error.detail!r} "
                                      f"(HTTP {response.status_code}). {error.advice}"))
            return
        checks.append(Check(FAIL, f"probing {action} answered HTTP {response.status_code}: {error.detail}"))
        return
    checks.append(Check(OK, f"the bot token is valid in account {account}; it reaches {', '.join(reached)}"))
    for what, required in missing:
        if required:
            checks.append(Check(FAIL, f"the bot token may not call {what}: give CHATWOOT_BOT_TOKEN the agent "
                                      "bot's token, or upgrade Chatwoot."))
        else:
            checks.append(Check(WARN, f"this Chatwoot refuses {what} to bot tokens: upgrade Chatwoot to use it."))
    if not missing and await _is_user_token(http, base, token):
        checks.append(Check(WARN, "CHATWOOT_BOT_TOKEN is a user's token, not the agent bot's: replies would come "
                                  "from that user; use the agent bot's access token."))


async def _is_user_token(http: httpx.AsyncClient, base: str, token: str) -> bool:
    """Bots may not list messages; a token that may (404 on a missing conversation) belongs to a user."""
    response = await http.get(base + "/messages", headers={TOKEN_HEADER: token})
    return isinstance(error_for_response(response, "messages#index"), NotFound)


def _secret(settings: Settings, checks: list[Check]) -> None:
    count = len(settings.webhook_secrets)
    if count:
        rotation = f" ({count} during a rotation)" if count > 1 else ""
        checks.append(Check(OK, f"a webhook secret is set{rotation}"))
    elif settings.botkit_basic_auth is not None:
        checks.append(Check(WARN, "no webhook secret, only Basic auth (for Chatwoot before 4.13): on 4.13+, set "
                                  "CHATWOOT_WEBHOOK_SECRET to the agent bot's secret."))
    elif settings.botkit_allow_unsigned:
        checks.append(Check(FAIL, "BOTKIT_ALLOW_UNSIGNED=true and no secret: anyone can post events; set "
                                  "CHATWOOT_WEBHOOK_SECRET to the agent bot's secret."))
    else:
        checks.append(Check(FAIL, "CHATWOOT_WEBHOOK_SECRET is not set: set it to the agent bot's secret "
                                  "(botkit provision prints it; botkit bots reset-secret ID makes a new one)."))


async def _outgoing_url(http: httpx.AsyncClient, settings: Settings, url: str, checks: list[Check]) -> None:
    warning = private_url_warning(url)
    if warning:
        checks.append(Check(WARN, warning.removeprefix("warning: ")))
    if not settings.webhook_secrets:
        checks.append(Check(FAIL, f"cannot send {url} a signed test delivery without CHATWOOT_WEBHOOK_SECRET."))
        return
    body = json.dumps({"event": "botkit_doctor_ping", "id": str(uuid.uuid4()),
                       "account": {"id": settings.chatwoot_account_id}}).encode()
    headers = signed_headers(settings.webhook_secrets[0], body)
    headers["X-Chatwoot-Delivery"] = str(uuid.uuid4())
    started = time.perf_counter()
    try:
        response = await http.post(url, content=body, headers=headers)
    except httpx.TransportError as exc:
        checks.append(Check(FAIL, f"{url} does not answer ({type(exc).__name__}): start botkit serve there and "
                                  "check that Chatwoot's server can reach that address."))
        return
    took = (time.perf_counter() - started) * 1000
    if response.status_code == 401:
        checks.append(Check(FAIL, f"{url} refused a delivery signed with this CHATWOOT_WEBHOOK_SECRET: the server "
                                  "there has another secret; give both the agent bot's secret."))
    elif response.status_code == 404:
        checks.append(Check(FAIL, f"{url} answers 404: botkit listens on /webhook (or /webhooks/<bot>); fix the "
                                  "path of the outgoing URL."))
    elif response.status_code == 200 and _json(response).get("status") == "ignored":
        if took > SLOW_ACK_MS:
            checks.append(Check(WARN, f"{url} acked a signed test delivery, but took {took:.0f} ms: Chatwoot waits "
                                      "5 s at most, then hands the conversation to humans; check the network path."))
        else:
            checks.append(Check(OK, f"{url} acked a signed test delivery in {took:.0f} ms"))
    else:
        checks.append(Check(FAIL, f"{url} answered a signed test delivery with HTTP {response.status_code}, not a "
                                  "botkit ack: check that the outgoing URL points at botkit serve."))


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
