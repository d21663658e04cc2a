"""`botkit send` against a real server and `botkit sign` against an independent HMAC."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import re
import subprocess
import sys
from pathlib import Path

from botkit.security import Verifier
from botkit.testing.flow import BotFlow
from bots.support_router import make_bot

ROOT = Path(__file__).resolve().parent.parent
SECRET = "s3cret-for-signing"
BODY = b'{"event":"message_created","id":1,"content":"h\xc3\xa9llo"}'


CLI = ["-m", "botkit.cli"]


def env(**values: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("BOTKIT_", "CHATWOOT_"))}
    return {**clean, "PYTHONPATH": str(ROOT), **values}


def botkit(*args: str, cwd: Path, **values: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *CLI, *args], cwd=cwd, env=env(**values),
                          capture_output=True, text=True, timeout=60)


async def botkit_async(*args: str, cwd: Path, **values: str) -> tuple[int, str, str]:
    """The CLI as a subprocess without blocking the loop the server under test runs on."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, *CLI, *args, cwd=cwd, env=env(**values),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode, out.decode(), err.decode()


def test_sign_prints_chatwoots_headers_and_the_signed_string(tmp_path):
    (tmp_path / "delivery.json").write_bytes(BODY)
    done = botkit("sign", "delivery.json", "--timestamp", "1700000000", "--url", "http://127.0.0.1:9/webhook",
                  cwd=tmp_path, CHATWOOT_WEBHOOK_SECRET=SECRET)
    assert done.returncode == 0, done.stderr
    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    body_only = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    lines = done.stdout.splitlines()
    assert lines[:2] == ["X-Chatwoot-Timestamp: 1700000000", f"X-Chatwoot-Signature: sha256={expected}"]
    assert f"the body's {len(BODY)} bytes exactly as sent" in done.stdout
    assert "1700000000." + BODY.decode() in lines
    assert f"over the body alone would be sha256={body_only}: it never matches" in done.stdout
    assert "ends with a newline" not in done.stdout
    assert f"-H 'X-Chatwoot-Signature: sha256={expected}'" in done.stdout
    # what it prints is what botkit's own receiver accepts
    headers = {"x-chatwoot-timestamp": "1700000000", "x-chatwoot-signature": f"sha256={expected}"}
    assert Verifier([SECRET.encode()], clock=lambda: 1700000000).verify(headers, BODY)


def test_sign_points_at_a_trailing_newline_and_needs_a_secret(tmp_path):
    (tmp_path / "delivery.json").write_bytes(BODY + b"\n")
    done = botkit("sign", "delivery.json", cwd=tmp_path, CHATWOOT_WEBHOOK_SECRET=SECRET)
    assert f"the body's {len(BODY) + 1} bytes" in done.stdout
    assert "the file ends with a newline, which is part of the signed body" in done.stdout
    done = botkit("sign", "delivery.json", cwd=tmp_path)
    assert done.returncode == 2 and "CHATWOOT_WEBHOOK_SECRET is not set" in done.stderr
    done = botkit("sign", "missing.json", cwd=tmp_path, CHATWOOT_WEBHOOK_SECRET=SECRET)
    assert done.returncode == 2 and "missing.json cannot be read" in done.stderr


async def test_send_posts_a_signed_message_the_bot_answers(tmp_path):
    async with BotFlow.start(make_bot(), conversation_id=77) as flow:
        url = flow.server.url + "/webhook"
        code, out, err = await botkit_async("send", "I have a billing question", "--url", url,
                                            "--conversation", "77", cwd=tmp_path,
                                            CHATWOOT_WEBHOOK_SECRET=flow.fake.bot_secret)
        assert code == 0, err
        assert f"POST {url} (conversation 77" in out and '-> HTTP 200 {"status":"accepted"}' in out
        await flow.server.settle()
        flow.expect_reply("I'm transferring you to our billing team.").expect_summary()
        flow.expect_team("billing").expect_handoff()
        # a second send is a new message, not a duplicate (once humans resolved it, the conversation is the
        # bot's again: until then the bot stays silent after its hand-off)
        await flow.resolve()
        code, out, _ = await botkit_async("send", "hello", "--url", url, "--conversation", "77", cwd=tmp_path,
                                          CHATWOOT_WEBHOOK_SECRET=flow.fake.bot_secret)
        assert code == 0 and '"accepted"' in out
        await flow.server.settle()
        flow.expect_reply(re.compile("^How can I help you today")).expect_no_action()
        # a wrong secret: refused, said so, non-zero
        code, out, err = await botkit_async("send", "hi", "--url", url, cwd=tmp_path,
                                            CHATWOOT_WEBHOOK_SECRET="not-the-secret")
        assert code == 1 and "HTTP 401" in out and "differs" in err


def test_send_with_nothing_listening_says_what_to_do(tmp_path):
    done = botkit("send", "hi", "--url", "http://127.0.0.1:9/webhook", cwd=tmp_path, CHATWOOT_WEBHOOK_SECRET=SECRET)
    assert done.returncode == 2 and "nothing answers at http://127.0.0.1:9/webhook" in done.stderr
