"""Settings: a wrong value stops start-up with one sentence naming the variable; secrets come from files too."""

import subprocess
import sys

import pytest

from botkit.config import ConfigError, load_settings, parse_teams
from tests.conftest import ROOT


@pytest.mark.parametrize(("overrides", "sentence"), [
    ({"botkit_port": "eighty"}, "BOTKIT_PORT must be a whole number (it is 'eighty')."),
    ({"botkit_port": "70000"}, "BOTKIT_PORT must be at most 65535 (it is '70000')."),
    ({"botkit_allow_unsigned": "maybe"}, "BOTKIT_ALLOW_UNSIGNED must be true or false (it is 'maybe')."),
    ({"chatwoot_base_url": "chat.example.com"}, "CHATWOOT_BASE_URL must start with http:// or https:// "
                                                "(it is 'chat.example.com')."),
    ({"botkit_store": "postgres://x"}, "BOTKIT_STORE must be sqlite:///PATH, memory:// or redis://HOST:PORT/DB "
                                       "(it is 'postgres://x')."),
    ({"botkit_bot": "bots.support_router"}, "BOTKIT_BOT must be module:attribute, e.g. bots.support_router:bot "
                                            "(it is 'bots.support_router')."),
    ({"botkit_holidays": "2026-13-45"}, "BOTKIT_HOLIDAYS '2026-13-45' is not a date; write it 2026-12-25."),
    # A new user's typo stopped start-up with logging's ValueError traceback.
    ({"botkit_log_level": "LOUD"}, "BOTKIT_LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL (it is 'LOUD')."),
    # Float settings said "at least 0.0" and "more than 0.0".
    ({"botkit_outcomes_keep_days": "-1"}, "BOTKIT_OUTCOMES_KEEP_DAYS must be at least 0 (it is '-1')."),
    ({"botkit_console_session_hours": "0"}, "BOTKIT_CONSOLE_SESSION_HOURS must be more than 0 (it is '0')."),
    ({"botkit_model_prices": "garbage"}, "BOTKIT_MODEL_PRICES must look like gpt-4o-mini=0.15/0.60 (USD per "
                                         "million tokens in/out); 'garbage' is not model=price/price."),
])
def test_a_wrong_setting_is_one_sentence_naming_it(overrides, sentence):
    with pytest.raises(ConfigError) as caught:
        load_settings(env_file=None, **overrides)
    assert str(caught.value) == sentence


def test_the_log_level_is_read_in_any_case():
    assert load_settings(env_file=None, botkit_log_level="debug").botkit_log_level == "DEBUG"


def test_a_sqlite_store_in_a_missing_folder_is_one_sentence(tmp_path):
    # botkit serve stopped with a FileNotFoundError traceback from its server lock.
    from botkit.store import store_from_url

    with pytest.raises(ConfigError) as caught:
        store_from_url(f"sqlite:///{tmp_path}/nowhere/botkit.db")
    assert str(caught.value) == (f"BOTKIT_STORE names {tmp_path}/nowhere/botkit.db, in a folder that does not exist "
                                 f"({tmp_path}/nowhere): create the folder or name another file.")
    assert store_from_url("sqlite:///botkit.db?workers=2").path == "botkit.db"  # the working folder is a folder


def test_a_wrong_secret_is_named_but_never_shown():
    with pytest.raises(ConfigError) as caught:
        load_settings(env_file=None, botkit_basic_auth="no-colon-here")
    assert "BOTKIT_BASIC_AUTH" in str(caught.value) and "no-colon-here" not in str(caught.value)


def test_environment_and_env_file(tmp_path, monkeypatch):
    env = tmp_path / ".env"
    env.write_text("CHATWOOT_BASE_URL=https://chat.example.com/\nBOTKIT_PORT=9000\n")
    monkeypatch.setenv("BOTKIT_PORT", "9100")  # the environment wins over .env
    settings = load_settings(env_file=str(env))
    assert settings.chatwoot_base_url == "https://chat.example.com"
    assert settings.botkit_port == 9100


def test_secrets_from_files_and_a_secrets_directory(tmp_path, monkeypatch):
    token = tmp_path / "token"
    token.write_text("tok-from-file\n")
    monkeypatch.setenv("CHATWOOT_BOT_TOKEN_FILE", str(token))
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "CHATWOOT_WEBHOOK_SECRET").write_text("one,two")
    monkeypatch.setenv("BOTKIT_SECRETS_DIR", str(secrets_dir))
    settings = load_settings(env_file=None)
    assert settings.chatwoot_bot_token.get_secret_value() == "tok-from-file"
    assert settings.webhook_secrets == [b"one", b"two"]
    assert "tok-from-file" not in repr(settings)


def test_an_unreadable_secret_file_is_one_sentence(tmp_path, monkeypatch):
    monkeypatch.setenv("CHATWOOT_BOT_TOKEN_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match=r"^CHATWOOT_BOT_TOKEN_FILE names .*missing, which cannot be read"):
        load_settings(env_file=None)


def test_teams():
    assert parse_teams("billing=3, Technical=4") == {"billing": 3, "technical": 4}
    with pytest.raises(ConfigError, match="BOTKIT_TEAMS must look like billing=3,technical=4; 'billing' is"):
        parse_teams("billing")


def run_cli(*args, cwd, **env):
    clean = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(cwd), **env}
    return subprocess.run([sys.executable, "-m", "botkit.cli", *args], cwd=cwd, env=clean, capture_output=True,
                          text=True, timeout=60)


def test_serve_without_a_way_to_verify_refuses_to_start_in_one_sentence(tmp_path):
    result = run_cli("serve", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("botkit: No way to check that deliveries come from Chatwoot: set "
                                    "CHATWOOT_WEBHOOK_SECRET")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_serve_with_a_missing_team_id_refuses_to_start_in_one_sentence(tmp_path):
    result = run_cli("serve", cwd=tmp_path, CHATWOOT_WEBHOOK_SECRET="s", CHATWOOT_BASE_URL="http://127.0.0.1:9",
                     CHATWOOT_BOT_TOKEN="tok", BOTKIT_STORE="memory://")
    assert result.returncode == 2
    assert result.stderr == ("botkit: BOTKIT_TEAMS must give the Chatwoot id of every team the bot assigns, "
                             "e.g. billing=<id>,technical=<id>.\n")
    assert "tok" not in result.stderr


def test_init_writes_a_secret_once_and_serve_then_accepts_it(tmp_path):
    first = run_cli("init", cwd=tmp_path)
    assert first.returncode == 0 and "CHATWOOT_WEBHOOK_SECRET" in first.stderr
    written = (tmp_path / ".env").read_text()
    assert written.startswith("CHATWOOT_WEBHOOK_SECRET=") and len(written.strip()) > 40
    again = run_cli("init", cwd=tmp_path)
    assert again.returncode == 0 and (tmp_path / ".env").read_text() == written
    assert load_settings(env_file=str(tmp_path / ".env")).webhook_secrets


def test_init_with_another_env_file_reads_that_file(tmp_path):
    # init read ./.env whatever --env-file said: a second `init --env-file bot.env` added a second secret.
    assert run_cli("init", "--env-file", "bot.env", cwd=tmp_path).returncode == 0
    written = (tmp_path / "bot.env").read_text()
    assert run_cli("init", "--env-file", "bot.env", cwd=tmp_path).returncode == 0
    assert (tmp_path / "bot.env").read_text() == written and not (tmp_path / ".env").exists()
    missing = run_cli("init", "--env-file", "nowhere/.env", cwd=tmp_path)
    assert (missing.returncode, missing.stderr) == (2, "botkit: nowhere/.env cannot be written (No such file or "
                                                       "directory); name another --env-file.\n")


def test_example_env_documents_every_setting_with_a_comment():
    import re

    from botkit.adapters.dialogflow import DialogflowSettings
    from botkit.adapters.openai import OpenAISettings
    from botkit.config import Settings

    lines = (ROOT / "example.env").read_text().splitlines()
    documented = {}
    for number, line in enumerate(lines):
        match = re.match(r"^#? ?([A-Z][A-Z0-9_]+)=", line)
        if match:
            documented[match.group(1)] = number
    wanted = {name.upper() for name in Settings.model_fields}
    wanted |= {f"OPENAI_{name.upper()}" for name in OpenAISettings.model_fields}
    wanted |= {f"DIALOGFLOW_{name.upper()}" for name in DialogflowSettings.model_fields}
    wanted.discard("DIALOGFLOW_CREDENTIALS_FILE")  # GOOGLE_APPLICATION_CREDENTIALS, Google's own variable
    assert sorted(wanted - set(documented)) == []
    for name, number in documented.items():  # each setting, or the group it belongs to, has a comment above it
        above = lines[max(0, number - 3):number]
        assert any(line.startswith("# ") and "=" not in line.split()[1] for line in above), name


@pytest.mark.parametrize(("url", "sentence"), [
    ("sqlite:///./botkit.db?workers=0", "BOTKIT_STORE's workers= must be a number of worker processes from 1 to 64."),
    ("sqlite:///./botkit.db?workers=two", "BOTKIT_STORE's workers= must be a number of worker processes from 1 to 64."),
    ("sqlite:///./botkit.db?workers=2&partition=2", "BOTKIT_STORE's partition= must be below its workers="),
])
def test_a_bad_worker_count_in_the_store_url_is_one_sentence(url, sentence):
    from botkit.store import store_from_url

    with pytest.raises(ConfigError) as caught:
        store_from_url(url)
    assert str(caught.value).startswith(sentence)


def test_the_store_url_gives_the_worker_processes_and_partition():
    from botkit.store import store_from_url

    store = store_from_url("sqlite:///./botkit.db?synchronous=full&workers=3&partition=1")
    assert (store.workers, store._partition, store._synchronous) == (3, 1, "FULL")
    assert store_from_url("sqlite:///./botkit.db").workers == 1
