"""`botkit send` and `botkit sign`: poke a running server as Chatwoot would, and debug a signature mismatch.

    botkit send "I have a billing question"            # a signed real-shape message_created to the server
    botkit sign delivery.json --timestamp 1700000000     # the headers Chatwoot would send with this body

Both sign with the first secret of CHATWOOT_WEBHOOK_SECRET. `sign` prints the signature and the exact string
that was signed on purpose: this is a command's output for the person debugging, never a log line.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import secrets
import shlex
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from botkit.commands.errors import CommandError
from botkit.config import Settings, load_settings
from botkit.security import signed_headers


def add_commands(subparsers: Any) -> None:
    send = subparsers.add_parser("send", help="post a signed contact message to a running botkit server")
    send.add_argument("text", help="what the contact writes")
    send.add_argument("--url", default=None, help="the webhook URL (default: http://127.0.0.1:$BOTKIT_PORT/webhook)")
    send.add_argument("--conversation", type=int, default=128, metavar="N", help="the conversation's display id")
    send.add_argument("--status", default="pending", help="the conversation's status (default: pending)")
    send.set_defaults(func=run_send)

    sign = subparsers.add_parser("sign", help="print Chatwoot's signature headers for a payload file")
    sign.add_argument("file", help="the body, byte for byte (a file with a trailing newline signs differently)")
    sign.add_argument("--timestamp", type=int, default=None, help="unix seconds (default: now)")
    sign.add_argument("--url", default=None, help="also print a curl command posting the file there")
    sign.set_defaults(func=run_sign)


NO_SECRET = "CHATWOOT_WEBHOOK_SECRET is not set; set it to the agent bot's secret (or run `botkit init`)."  # noqa: S105


def first_secret(settings: Settings) -> bytes:
    found = settings.webhook_secrets
    if not found:
        raise CommandError(NO_SECRET)
    return found[0]


# send -------------------------------------------------------------------------------------------------


def run_send(args: argparse.Namespace) -> int:
    from botkit.testing.factories import contact_message

    settings = load_settings()
    url = args.url or f"http://127.0.0.1:{settings.botkit_port}/webhook"
    body = contact_message(args.text, conversation_id=args.conversation, status=args.status,
                           account_id=settings.chatwoot_account_id,
                           message_id=secrets.randbelow(2**31))  # a new id each time, or the server dedupes it
    raw = json.dumps(body).encode()
    auth = None
    if settings.webhook_secrets:
        headers = signed_headers(first_secret(settings), raw)
    elif settings.botkit_basic_auth is not None:  # Chatwoot before 4.13: credentials, no signature
        headers = {"Content-Type": "application/json"}
        user, _, password = settings.botkit_basic_auth.get_secret_value().partition(":")
        auth = (user, password)
    else:
        raise CommandError(NO_SECRET)
    headers["X-Chatwoot-Delivery"] = str(uuid.uuid4())
    try:
        response = httpx.post(url, content=raw, headers=headers, auth=auth, timeout=10)
    except httpx.TransportError as exc:
        raise CommandError(f"nothing answers at {url} ({type(exc).__name__}); start the server with "
                           "`botkit serve`, or pass --url.") from None
    print(f"POST {url} (conversation {args.conversation}, message {body['id']}) -> HTTP {response.status_code} "
          f"{response.text.strip()}")
    if response.status_code == 401:
        print("The server refused the delivery: its CHATWOOT_WEBHOOK_SECRET differs from this one's.",
              file=sys.stderr)
    return 0 if response.is_success else 1


# sign -------------------------------------------------------------------------------------------------


def run_sign(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        body = path.read_bytes()
    except OSError as exc:
        raise CommandError(f"{path} cannot be read ({exc.strerror}).") from None
    key = first_secret(load_settings())
    stamp = int(time.time()) if args.timestamp is None else args.timestamp
    headers = signed_headers(key, body, timestamp=stamp)
    for name in ("X-Chatwoot-Timestamp", "X-Chatwoot-Signature"):
        print(f"{name}: {headers[name]}")
    print()
    print(f"Signed string (HMAC-SHA256 keyed with the secret): the timestamp, a dot, then the body's "
          f"{len(body)} bytes exactly as sent:")
    print(f"{stamp}.{body.decode('utf-8', 'replace')}")
    print()
    body_only = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
    print(f"A signature over the body alone would be {body_only}: it never matches (Chatwoot issue #13809).")
    if body.endswith(b"\n"):
        print("Note: the file ends with a newline, which is part of the signed body; Chatwoot's bodies have none, "
              "so strip it to reproduce a real delivery.")
    try:
        json.loads(body)
    except ValueError:
        print("Note: the file is not JSON; the receiver will answer 400 once the signature passes.")
    if args.url:
        parts = ["curl", "-X", "POST", args.url, "--data-binary", f"@{path}"]
        for name, value in headers.items():
            parts += ["-H", f"{name}: {value}"]
        print()
        print(shlex.join(parts))
    return 0
