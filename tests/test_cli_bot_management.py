"""The guide's bot management from the CLI, against FakeChatwoot on a loopback port: system bots through the
Platform API, avatars and bot_config, which inboxes a bot serves, and disconnecting it from one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from botkit.cli import main
from botkit.testing.fake_chatwoot import FakeChatwoot

URL = "https://bot.example.com/webhook"
AVATAR = "https://cdn.example.com/bot.png"


@pytest.fixture
def fake(monkeypatch, tmp_path) -> Iterator[FakeChatwoot]:
    fake = FakeChatwoot()
    fake.add_inbox(1, 2, "WhatsApp", "Channel::Whatsapp")
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in ("CHATWOOT_BOT_TOKEN", "CHATWOOT_WEBHOOK_SECRET", "CHATWOOT_ACCOUNT_ID", "BOTKIT_SECRETS_DIR"):
        monkeypatch.delenv(name, raising=False)
    with fake.serve_in_thread():
        monkeypatch.setenv("CHATWOOT_BASE_URL", fake.url)
        monkeypatch.setenv("CHATWOOT_ADMIN_TOKEN", fake.admin_token)
        monkeypatch.setenv("CHATWOOT_PLATFORM_TOKEN", fake.platform_token)
        yield fake


def system_bots(fake: FakeChatwoot) -> list:
    return [bot for bot in fake.bots.values() if bot.account_id is None]


# system bots ---------------------------------------------------------------------------------------------


def test_provision_system_creates_it_through_the_platform_api_connects_an_inbox_and_prints_its_token(fake, capsys):
    code = main(["provision", "--system", "--name", "Everyone's bot", "--url", URL, "--avatar-url", AVATAR,
                 "--inbox", "2"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    [bot] = system_bots(fake)
    assert (bot.name, bot.outgoing_url, bot.avatar_url, bot.platform_made) == ("Everyone's bot", URL, AVATAR, True)
    [create] = fake.requests_to("POST", "/platform/api/v1/agent_bots")
    assert create.json == {"name": "Everyone's bot", "outgoing_url": URL, "avatar_url": AVATAR}
    assert fake.inboxes[2].agent_bot_id == bot.id and fake.inboxes[1].agent_bot_id != bot.id
    assert captured.out == f"CHATWOOT_BOT_TOKEN={bot.access_token}\n"  # read through the account API
    assert "BOTKIT_BASIC_AUTH" in captured.err and bot.access_token not in captured.err


def test_provision_system_again_updates_the_bot_with_that_name(fake, capsys):
    assert main(["provision", "--system", "--name", "Everyone's bot", "--url", URL]) == 0
    assert main(["provision", "--system", "--name", "Everyone's bot", "--url", "https://new.example.com/hook",
                 "--description", "v2"]) == 0
    [bot] = system_bots(fake)
    assert (bot.outgoing_url, bot.description) == ("https://new.example.com/hook", "v2")
    assert len(fake.requests_to("PATCH", f"/platform/api/v1/agent_bots/{bot.id}")) == 1
    assert "updated" in capsys.readouterr().err


def test_provision_system_without_an_admin_token_creates_it_and_says_where_the_token_comes_from(
        fake, capsys, monkeypatch):
    monkeypatch.delenv("CHATWOOT_ADMIN_TOKEN")
    assert main(["provision", "--system", "--name", "Everyone's bot", "--url", URL]) == 0
    captured = capsys.readouterr()
    assert len(system_bots(fake)) == 1
    assert captured.out == ""
    assert "never returns a bot's access token: set CHATWOOT_ADMIN_TOKEN" in captured.err


def test_provision_system_needs_a_platform_token(fake, capsys, monkeypatch):
    monkeypatch.delenv("CHATWOOT_PLATFORM_TOKEN")
    assert main(["provision", "--system", "--name", "Everyone's bot", "--url", URL]) == 2
    assert capsys.readouterr().err == ("botkit: CHATWOOT_PLATFORM_TOKEN is not set; set it to a platform app's "
                                       "access token (Super Admin > Platform Apps in Chatwoot) to manage system "
                                       "bots.\n")
    assert not fake.requests


def test_a_system_bot_takes_no_bot_config(fake, capsys):
    assert main(["provision", "--system", "--name", "Everyone's bot", "--url", URL,
                 "--bot-config", '{"language": "en"}']) == 2
    assert "Platform API ignores it" in capsys.readouterr().err
    assert not fake.requests


def test_bots_system_list_show_update_delete(fake, capsys):
    fake.add_agent_bot(1, name="account bot", outgoing_url="https://a.example.com/w")  # not the platform app's
    assert main(["provision", "--system", "--name", "Everyone's bot", "--url", URL, "--inbox", "1"]) == 0
    [bot] = system_bots(fake)
    capsys.readouterr()

    assert main(["bots", "--system", "list"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert len(listing) == 2 and "Everyone's bot" in listing[1] and URL in listing[1]

    assert main(["bots", "--system", "show", str(bot.id)]) == 0
    shown = capsys.readouterr().out
    assert f"outgoing_url: {URL}" in shown and "inboxes: 1 (Website)" in shown
    assert bot.access_token not in shown  # the Platform API never shows it

    assert main(["bots", "--system", "update", str(bot.id), "--name", "Renamed", "--avatar-url", AVATAR]) == 0
    assert (bot.name, bot.avatar_url) == ("Renamed", AVATAR)

    assert main(["bots", "--system", "delete", str(bot.id)]) == 0
    assert bot.id not in fake.bots and fake.inboxes[1].agent_bot_id is None


def test_bots_system_refuses_a_bot_the_platform_app_did_not_make(fake, capsys):
    other = fake.add_agent_bot(None, name="made elsewhere")
    assert main(["bots", "--system", "show", str(other.id)]) == 2
    assert "Non permissible resource" in capsys.readouterr().err
    assert main(["bots", "--system", "reset-token", str(other.id)]) == 2
    assert "cannot reset the access token of a system bot" in capsys.readouterr().err


# avatars, bot_config, inboxes ----------------------------------------------------------------------------


def test_provision_and_update_set_the_avatar_and_bot_config(fake, capsys):
    assert main(["provision", "--name", "Support", "--url", URL, "--inbox", "1", "--avatar-url", AVATAR,
                 "--bot-config", '{"language": "pt_BR", "tone": "warm"}']) == 0
    [bot] = [b for b in fake.bots.values() if b.name == "Support"]
    assert (bot.avatar_url, bot.bot_config) == (AVATAR, {"language": "pt_BR", "tone": "warm"})
    assert main(["bots", "update", str(bot.id), "--bot-config", '{"language": "es"}']) == 0
    assert bot.bot_config == {"language": "es"} and bot.avatar_url == AVATAR
    assert "bot_config" in capsys.readouterr().err


def test_bot_config_must_be_a_json_object(fake, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["bots", "update", "5", "--bot-config", "[1, 2]"])
    assert exited.value.code == 2
    assert "--bot-config: must be a JSON object" in capsys.readouterr().err
    assert not fake.requests


def test_bots_show_names_the_inboxes_the_bot_serves(fake, capsys):
    fake.inboxes[2].agent_bot_id = fake.bot.id  # the seeded bot now serves both inboxes
    assert main(["bots", "show", str(fake.bot.id)]) == 0
    assert "inboxes: 1 (Website), 2 (WhatsApp)\n" in capsys.readouterr().out
    idle = fake.add_agent_bot(1, name="idle")
    assert main(["bots", "show", str(idle.id)]) == 0
    assert "inboxes: none in account 1\n" in capsys.readouterr().out


def test_bots_disconnect_takes_the_bot_off_an_inbox_it_serves_only(fake, capsys):
    other = fake.add_agent_bot(1, name="other", inbox_ids=[2])
    assert main(["bots", "disconnect", str(fake.bot.id), "--inbox", "1", "--inbox", "2"]) == 2
    err = capsys.readouterr().err
    assert fake.inboxes[1].agent_bot_id is None  # it served inbox 1
    assert fake.inboxes[2].agent_bot_id == other.id  # another bot's inbox is left alone, and said so
    assert f"inbox 2 is connected to bot {other.id} ('other'), not bot {fake.bot.id}" in err
    [set_bot] = fake.requests_to("POST", "/api/v1/accounts/1/inboxes/1/set_agent_bot")
    assert set_bot.json == {"agent_bot": None}
