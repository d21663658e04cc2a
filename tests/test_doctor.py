"""`botkit doctor` against the fake Chatwoot and a real botkit server on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from botkit.commands.doctor import FAIL, OK, WARN, diagnose
from botkit.config import load_settings
from botkit.testing.fake_chatwoot import BOT_ENDPOINTS_BEFORE_4_14_2, FakeChatwoot
from botkit.testing.flow import BotFlow
from bots.support_router import make_bot

ROOT = Path(__file__).resolve().parent.parent
CLI = ["-m", "botkit.cli"]


def settings_for(fake, **overrides):
    values = {"chatwoot_base_url": fake.url, "chatwoot_bot_token": fake.bot_token,
              "chatwoot_webhook_secret": fake.bot_secret, **overrides}
    return load_settings(env_file=None, **values)


def lines(checks):
    return [(c.status, c.text) for c in checks]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def fake():
    async with FakeChatwoot().serve() as fake:
        yield fake


async def test_a_good_setup_is_all_green(fake):
    checks = await diagnose(settings_for(fake))
    assert [c.status for c in checks] == [OK] * 4, lines(checks)
    assert checks[1].text == f"Chatwoot 4.15.1 answers at {fake.url}"
    assert "the bot token is valid in account 1; it reaches messages#create, conversations#toggle_status" in \
        checks[2].text
    assert checks[3].text == "a webhook secret is set"
    # the probes were harmless: a conversation that does not exist, nothing changed
    probes = [r for r in fake.requests if "/conversations/" in r.path]
    assert [r.status for r in probes] == [404] * 7 + [401]  # the last: may a bot list messages? (no: a bot token)
    assert fake.conversations == {}


async def test_a_bad_token_is_red_with_advice(fake):
    checks = await diagnose(settings_for(fake, chatwoot_bot_token="not-a-token"))
    assert (FAIL, "CHATWOOT_BOT_TOKEN is not a valid access token: copy the agent bot's token again (botkit bots "
                  "reset-token ID prints a new one).") in lines(checks)
    assert all("not-a-token" not in c.text for c in checks)
    assert len([r for r in fake.requests if "/conversations/" in r.path]) == 1  # stops at the first answer


async def test_a_wrong_url_is_red_with_advice(fake):
    nowhere = f"http://127.0.0.1:{free_port()}"
    checks = await diagnose(settings_for(fake, chatwoot_base_url=nowhere))
    assert checks[1].status == FAIL
    assert checks[1].text.startswith(f"Chatwoot does not answer at {nowhere} (ConnectError): check CHATWOOT_BASE_URL")
    assert len(checks) == 3 and checks[2].status == OK  # no token probe without Chatwoot; the secret is still checked
    # something answers there, but it is not Chatwoot (here: the fake under a wrong path)
    checks = await diagnose(settings_for(fake, chatwoot_base_url=fake.url + "/app"))
    assert checks[1].status == FAIL
    assert "answers HTTP 404 but not as Chatwoot does: CHATWOOT_BASE_URL must be Chatwoot's root URL" in checks[1].text


async def test_a_missing_secret_is_red_with_advice(fake, monkeypatch):
    monkeypatch.delenv("CHATWOOT_WEBHOOK_SECRET", raising=False)
    checks = await diagnose(load_settings(env_file=None, chatwoot_base_url=fake.url,
                                          chatwoot_bot_token=fake.bot_token))
    assert checks[-1] == checks[-1].__class__(
        FAIL, "CHATWOOT_WEBHOOK_SECRET is not set: set it to the agent bot's secret (botkit provision prints it; "
              "botkit bots reset-secret ID makes a new one).")
    assert [c.status for c in checks[:-1]] == [OK, OK, OK]


async def test_an_older_chatwoot_warns_about_what_it_refuses_bots():
    async with FakeChatwoot(bot_endpoints=BOT_ENDPOINTS_BEFORE_4_14_2).serve() as fake:
        checks = await diagnose(settings_for(fake))
    statuses = [c.status for c in checks]
    assert FAIL not in statuses
    warnings = [c.text for c in checks if c.status == WARN]
    assert warnings == [
        "this Chatwoot refuses conversations#show (merged custom attributes (Chatwoot 4.14.2+)) to bot tokens: "
        "upgrade Chatwoot to use it.",
        "this Chatwoot refuses labels#index (labels (Chatwoot 4.14.2+)) to bot tokens: upgrade Chatwoot to use it.",
    ]


async def test_a_users_token_and_a_bot_outside_the_account(fake):
    checks = await diagnose(settings_for(fake, chatwoot_bot_token=fake.admin_token))
    assert (WARN, "CHATWOOT_BOT_TOKEN is a user's token, not the agent bot's: replies would come from that user; "
                  "use the agent bot's access token.") in lines(checks)
    fake.add_account(2)
    checks = await diagnose(settings_for(fake, chatwoot_account_id=2))
    assert checks[2].status == FAIL
    assert checks[2].text.startswith("the token may not act in account 2 ('Bot is not authorized to access this "
                                     "account'): connect the agent bot to an inbox of account 2")


async def test_a_suspended_account_and_a_token_a_proxy_dropped_are_named(fake):
    fake.suspend_account(1)
    checks = await diagnose(settings_for(fake))
    assert (FAIL, "account 1: Chatwoot answered 'Account is suspended' (HTTP 401). The Chatwoot account is "
                  "suspended: nothing the bot does there works until a Chatwoot super admin reactivates it.") \
        in lines(checks)
    fake.suspended_accounts.clear()
    # a proxy that strips the token header: Chatwoot answers as devise does, with an `errors` array
    fake.fail_next("*", "/api/v1/accounts/*", 401, body={"errors": ["You need to sign in or sign up before "
                                                                   "continuing."]})
    checks = await diagnose(settings_for(fake))
    assert (FAIL, "Chatwoot received no token ('You need to sign in or sign up before continuing.'): check that no "
                  "proxy in front of Chatwoot drops the api-access-token header.") in lines(checks)


async def test_the_outgoing_url_answers_a_signed_ping():
    async with BotFlow.start(make_bot()) as flow:
        url = flow.server.url + "/webhook"
        checks = await diagnose(settings_for(flow.fake), url=url)
        assert [c.status for c in checks] == [OK, OK, OK, OK, WARN, OK], lines(checks)
        assert "is loopback; Chatwoot 4.14+ refuses such outgoing URLs unless its server sets " \
               "SAFE_FETCH_ALLOW_PRIVATE_NETWORK=true" in checks[4].text
        assert checks[5].text.startswith(f"{url} acked a signed test delivery in ")
        assert (await flow.server.store.stats()).waiting == 0  # acked as ignored, nothing queued
        # another secret, a wrong path, nothing listening: each red with what to do
        checks = await diagnose(settings_for(flow.fake, chatwoot_webhook_secret="another"), url=url)
        assert checks[-1].status == FAIL and "refused a delivery signed with this CHATWOOT_WEBHOOK_SECRET" in \
            checks[-1].text
        checks = await diagnose(settings_for(flow.fake), url=flow.server.url + "/hook")
        assert checks[-1].status == FAIL and "answers 404: botkit listens on /webhook" in checks[-1].text
    checks = await diagnose(settings_for(flow.fake, chatwoot_base_url="http://127.0.0.1:9"), url=url)
    assert checks[-1].status == FAIL and checks[-1].text.startswith(f"{url} does not answer (ConnectError)")


def run_doctor(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("BOTKIT_", "CHATWOOT_"))}
    return subprocess.run([sys.executable, *CLI, "doctor"], env={**clean, "PYTHONPATH": str(ROOT), **env},
                          capture_output=True, text=True, timeout=60, cwd=ROOT / "tests")


def test_the_command_exits_non_zero_on_red_and_prints_no_colour_to_a_pipe():
    fake = FakeChatwoot()
    with fake.serve_in_thread():
        good = run_doctor(CHATWOOT_BASE_URL=fake.url, CHATWOOT_BOT_TOKEN=fake.bot_token,
                          CHATWOOT_WEBHOOK_SECRET=fake.bot_secret)
        bad = run_doctor(CHATWOOT_BASE_URL=fake.url, CHATWOOT_BOT_TOKEN="wrong",
                         CHATWOOT_WEBHOOK_SECRET=fake.bot_secret)
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stdout.splitlines()[0] == "✓ settings load" and "\033[" not in good.stdout
    assert bad.returncode == 1
    assert "✗ CHATWOOT_BOT_TOKEN is not a valid access token" in bad.stdout
    broken = run_doctor(CHATWOOT_BASE_URL="ftp://chat")
    assert broken.returncode == 1 and broken.stdout.startswith("✗ settings: CHATWOOT_BASE_URL must start with http")
