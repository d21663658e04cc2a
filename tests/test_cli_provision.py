"""`botkit provision` and `botkit bots` against FakeChatwoot on a loopback port in a background thread."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from botkit.cli import main
from botkit.commands.provision import private_url_warning
from botkit.testing.fake_chatwoot import FakeChatwoot

URL = "https://bot.example.com/webhook"


@pytest.fixture
def fake(monkeypatch, tmp_path) -> Iterator[FakeChatwoot]:
    fake = FakeChatwoot()
    fake.add_inbox(1, 2, "WhatsApp", "Channel::Whatsapp")
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in ("CHATWOOT_BOT_TOKEN", "CHATWOOT_PLATFORM_TOKEN", "CHATWOOT_WEBHOOK_SECRET", "CHATWOOT_ACCOUNT_ID",
                 "BOTKIT_SECRETS_DIR"):
        monkeypatch.delenv(name, raising=False)
    with fake.serve_in_thread():
        monkeypatch.setenv("CHATWOOT_BASE_URL", fake.url)
        monkeypatch.setenv("CHATWOOT_ADMIN_TOKEN", fake.admin_token)
        yield fake


def env_lines(out: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in out.splitlines())


def test_provision_creates_the_bot_connects_inboxes_and_prints_env_lines(fake, capsys):
    code = main(["provision", "--name", "Support", "--url", URL, "--inbox", "1", "--inbox", "2"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    [bot] = [b for b in fake.bots.values() if b.name == "Support"]
    assert env_lines(captured.out) == {"CHATWOOT_BOT_TOKEN": bot.access_token,
                                       "CHATWOOT_WEBHOOK_SECRET": bot.secret}
    assert bot.outgoing_url == URL
    assert fake.inboxes[1].agent_bot_id == bot.id and fake.inboxes[2].agent_bot_id == bot.id
    assert "created" in captured.err and "warning" not in captured.err
    assert bot.access_token not in captured.err


def test_provision_updates_the_bot_with_that_name(fake, capsys):
    existing = fake.add_agent_bot(1, name="Support", outgoing_url="https://old.example.com/hook")
    before = len(fake.bots)
    assert main(["provision", "--name", "Support", "--url", URL, "--inbox", "2", "--account", "1"]) == 0
    captured = capsys.readouterr()
    assert len(fake.bots) == before
    assert existing.outgoing_url == URL and fake.inboxes[2].agent_bot_id == existing.id
    assert env_lines(captured.out)["CHATWOOT_BOT_TOKEN"] == existing.access_token
    assert "updated" in captured.err
    assert len(fake.requests_to("PATCH", f"/api/v1/accounts/1/agent_bots/{existing.id}")) == 1


def test_provision_warns_about_a_loopback_url(fake, capsys):
    assert main(["provision", "--name", "Local", "--url", "http://127.0.0.1:8000/webhook", "--inbox", "1"]) == 0
    captured = capsys.readouterr()
    assert "SAFE_FETCH_ALLOW_PRIVATE_NETWORK=true" in captured.err
    assert "SAFE_FETCH" not in captured.out


@pytest.mark.parametrize(
    "url,warned",
    [("http://localhost:8000/w", True), ("http://10.1.2.3/w", True), ("http://[::1]:8000/w", True),
     ("http://bot:8000/w", True), ("https://bot.example.com/w", False), ("https://8.8.8.8/w", False)],
)
def test_private_url_warning(url, warned):
    assert (private_url_warning(url) is not None) is warned


def test_provision_refuses_an_unknown_inbox(fake, capsys):
    assert main(["provision", "--name", "Support", "--url", URL, "--inbox", "9"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Inbox 9 is not in account 1" in captured.err and "1 (Website)" in captured.err
    assert not fake.requests_to("POST", "/api/v1/accounts/1/agent_bots")


def test_provision_needs_the_admin_token(fake, capsys, monkeypatch):
    monkeypatch.delenv("CHATWOOT_ADMIN_TOKEN")
    assert main(["provision", "--name", "S", "--url", URL, "--inbox", "1"]) == 2
    assert "CHATWOOT_ADMIN_TOKEN is not set" in capsys.readouterr().err
    assert fake.requests == []


def test_a_bot_token_as_admin_token_is_one_clear_sentence(fake, capsys, monkeypatch):
    monkeypatch.setenv("CHATWOOT_ADMIN_TOKEN", fake.bot_token)
    assert main(["provision", "--name", "S", "--url", URL, "--inbox", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("botkit: ") and err.count("\n") == 1
    assert "not authorized for bots" in err and "administrator" in err
    assert fake.bot_token not in err


def test_an_agent_token_is_refused(fake, capsys, monkeypatch):
    agent = fake.add_user(1, name="Agent", administrator=False)
    monkeypatch.setenv("CHATWOOT_ADMIN_TOKEN", agent.token)
    assert main(["bots", "list"]) == 2
    assert "administrator" in capsys.readouterr().err


def test_bots_list_and_show(fake, capsys):
    assert main(["bots", "list"]) == 0
    out = capsys.readouterr().out
    assert "botkit" in out and "https://bot.example.com/webhook" in out
    assert main(["bots", "show", str(fake.bot.id)]) == 0
    out = capsys.readouterr().out
    assert f"id: {fake.bot.id}" in out and "name: botkit" in out
    assert fake.bot_token not in out and fake.bot_secret not in out


def test_bots_update(fake, capsys):
    assert main(["bots", "update", str(fake.bot.id), "--name", "Renamed", "--url", URL + "2"]) == 0
    assert (fake.bot.name, fake.bot.outgoing_url) == ("Renamed", URL + "2")
    assert main(["bots", "update", str(fake.bot.id)]) == 2
    assert "Nothing to update" in capsys.readouterr().err


def test_bots_reset_token_and_secret_print_the_new_values(fake, capsys):
    old_token, old_secret = fake.bot_token, fake.bot_secret
    assert main(["bots", "reset-token", str(fake.bot.id)]) == 0
    assert main(["bots", "reset-secret", str(fake.bot.id)]) == 0
    lines = env_lines(capsys.readouterr().out)
    assert lines == {"CHATWOOT_BOT_TOKEN": fake.bot_token, "CHATWOOT_WEBHOOK_SECRET": fake.bot_secret}
    assert fake.bot_token != old_token and fake.bot_secret != old_secret


def test_bots_delete_and_a_missing_bot(fake, capsys):
    bot_id = fake.bot.id
    assert main(["bots", "delete", str(bot_id)]) == 0
    assert bot_id not in fake.bots
    assert main(["bots", "show", str(bot_id)]) == 2
    assert "HTTP 404" in capsys.readouterr().err


def test_account_comes_from_the_environment(fake, capsys, monkeypatch):
    monkeypatch.setenv("CHATWOOT_ACCOUNT_ID", "77")
    assert main(["bots", "list"]) == 2
    assert fake.requests_to("GET", "/api/v1/accounts/77/agent_bots")
    monkeypatch.setenv("CHATWOOT_ACCOUNT_ID", "seventy")
    assert main(["bots", "list"]) == 2
    assert "CHATWOOT_ACCOUNT_ID must be a whole number (it is 'seventy')." in capsys.readouterr().err
