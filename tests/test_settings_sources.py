"""One way to read a setting: a handler's own setting (the keyword router's BOTKIT_KEYWORDS_FILE) reaches it
from each source botkit's settings come from: the environment, `.env`, a secret file, and a bot's table in
BOTKIT_BOTS_FILE; and a wrong handler setting is the same one sentence as a wrong botkit setting."""

from __future__ import annotations

import pytest

from botkit.adapters.keywords import KeywordRouter
from botkit.adapters.openai import OpenAISettings
from botkit.config import ConfigError, load_settings, read_settings
from botkit.testing import factories
from botkit.testing.harness import BotServer

RULES = '[[rule]]\nkeywords = ["{word}"]\nreply = "{reply}"\n'


@pytest.fixture
def clean(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for name in ("BOTKIT_KEYWORDS_FILE", "BOTKIT_SECRETS_DIR", "BOTKIT_BOTS_FILE", "BOTKIT_BOT", "OPENAI_MODEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BOTKIT_HANDLERS", "keywords")
    (tmp_path / "rules.toml").write_text(RULES.format(word="refund", reply="Refunds take five days."))
    return tmp_path


def routers(settings) -> list[KeywordRouter]:
    from botkit.app import build_app

    app = build_app(settings)
    return [h for e in app.state.receiver.endpoints.values() for h in e.bot.handlers]


def replies(router: KeywordRouter) -> list[str]:
    return [rule.reply for rule in router.rules]


def test_from_the_environment(clean, monkeypatch):
    monkeypatch.setenv("BOTKIT_KEYWORDS_FILE", "rules.toml")
    [router] = routers(load_settings(env_file=None, botkit_allow_unsigned=True))
    assert replies(router) == ["Refunds take five days."]


async def test_from_dot_env_over_a_real_socket(clean):
    """The evidence case: BOTKIT_KEYWORDS_FILE written in .env, as example.env suggests, is honoured."""
    (clean / ".env").write_text("BOTKIT_KEYWORDS_FILE=rules.toml\n")
    async with BotServer(None, env_file=".env") as server:
        server.fake.add_conversation(conversation_id=128, status="pending")
        await server.deliver(factories.contact_message("I want a refund"))
        await server.settle()
        sent = [r.json["content"] for r in server.fake.requests_to("POST", "*/messages")]
    assert sent == ["Refunds take five days."]


@pytest.mark.parametrize("how", ["NAME_FILE", "BOTKIT_SECRETS_DIR"])
def test_from_a_secret_file(clean, monkeypatch, how):
    holder = clean / "run" / "BOTKIT_KEYWORDS_FILE"
    holder.parent.mkdir()
    holder.write_text("rules.toml\n")
    if how == "NAME_FILE":
        monkeypatch.setenv("BOTKIT_KEYWORDS_FILE_FILE", str(holder))
    else:
        monkeypatch.setenv("BOTKIT_SECRETS_DIR", str(holder.parent))
    [router] = routers(load_settings(env_file=None, botkit_allow_unsigned=True))
    assert replies(router) == ["Refunds take five days."]


def test_from_each_bots_own_table_in_the_bots_file(clean):
    (clean / "sales.toml").write_text(RULES.format(word="price", reply="Prices are on our site."))
    (clean / "bots.toml").write_text(
        '[bots.support]\nhandlers = "keywords"\nsecret = "a"\nBOTKIT_KEYWORDS_FILE = "rules.toml"\n'
        '[bots.sales]\nhandlers = "keywords"\nsecret = "b"\nBOTKIT_KEYWORDS_FILE = "sales.toml"\n'
        '[bots.plain]\nhandlers = "keywords"\nsecret = "c"\n')
    support, sales, plain = routers(load_settings(env_file=None, botkit_bots_file="bots.toml"))
    assert replies(support) == ["Refunds take five days."]
    assert replies(sales) == ["Prices are on our site."]
    assert "I'm transferring you to our billing team." in replies(plain)  # no file: the guide's rules


def test_a_bots_file_setting_reaches_a_handler_class_settings(clean):
    parent = load_settings(env_file=None)
    bot = parent.for_bot({"OPENAI_MODEL": "gpt-4o", "OPENAI_TIMEOUT": "5"})
    assert bot.section(OpenAISettings).model == "gpt-4o" and bot.section(OpenAISettings).timeout == 5
    assert bot.section(OpenAISettings, model="given-in-code").model == "given-in-code"  # code wins
    assert parent.section(OpenAISettings).model == "gpt-4o-mini"


def test_a_wrong_handler_setting_is_one_sentence_naming_it(clean, monkeypatch):
    monkeypatch.setenv("OPENAI_TIMEOUT", "soon")
    with pytest.raises(ConfigError) as caught:
        read_settings(OpenAISettings, None)
    assert str(caught.value) == "OPENAI_TIMEOUT must be a number (it is 'soon')."
    monkeypatch.setenv("BOTKIT_CONCURRENCY", "many")
    with pytest.raises(ConfigError) as caught:
        load_settings(env_file=None)
    assert str(caught.value) == "BOTKIT_CONCURRENCY must be a whole number (it is 'many')."


def test_a_bots_file_setting_with_a_bad_name_is_refused(clean):
    (clean / "bots.toml").write_text('[bots.a]\nsecret = "a"\nkeywords_file = "rules.toml"\n')
    with pytest.raises(ConfigError, match=r"unknown keys keywords_file; .* or any setting by its NAME"):
        routers(load_settings(env_file=None, botkit_bots_file="bots.toml"))


def test_the_default_bot_reads_it_too(clean, monkeypatch):
    """A new user's case: example.env's BOTKIT_KEYWORDS_FILE with the default bot (no BOTKIT_HANDLERS) was
    ignored without a word, a missing file included."""
    monkeypatch.delenv("BOTKIT_HANDLERS")
    default_bot = {"botkit_allow_unsigned": True, "botkit_bot": "bots.support_router:make_bot"}
    monkeypatch.setenv("BOTKIT_KEYWORDS_FILE", "rules.toml")
    [router] = routers(load_settings(env_file=None, **default_bot))
    assert replies(router) == ["Refunds take five days."]
    monkeypatch.setenv("BOTKIT_KEYWORDS_FILE", "missing.toml")
    with pytest.raises(ConfigError, match=r"^the keyword rules file missing.toml cannot be read"):
        routers(load_settings(env_file=None, **default_bot))
