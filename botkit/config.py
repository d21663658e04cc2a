"""Settings, read one way: `read_settings(cls)` for `Settings` and for every handler's own settings class.

Sources, the first that has a setting wins: arguments given in code, a bot's table in BOTKIT_BOTS_FILE
(`Settings.section(cls)` carries it to the bot's handlers), secret files, the environment, `.env`, the
default. Every setting can come from a file: `CHATWOOT_BOT_TOKEN_FILE=/run/secrets/token`, or one file per
setting in the directory named by `BOTKIT_SECRETS_DIR` (the Docker/Kubernetes convention), so tokens need not
sit in the environment of every process. A wrong setting raises `ConfigError` with one
sentence naming the variable and what it expects; no secret value is ever part of that sentence.

A handler's settings class is a `BaseSettings` with its own `env_prefix` (e.g. OPENAI_); it reads it with
`bot.runtime.settings.section(MySettings, **arguments)` in `startup`, or `read_settings(MySettings)` alone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRET_SETTINGS = (
    "chatwoot_bot_token",
    "chatwoot_admin_token",
    "chatwoot_platform_token",
    "chatwoot_webhook_secret",
    "botkit_basic_auth",
    "openai_api_key",
    "botkit_console_token",
)


class ConfigError(Exception):
    """A setting is missing or wrong; the message is one sentence saying what to set."""


S = TypeVar("S", bound=BaseSettings)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", validate_default=True)

    # Chatwoot
    chatwoot_base_url: str | None = Field(None, description="Chatwoot's URL, e.g. https://chat.example.com")
    chatwoot_bot_token: SecretStr | None = None
    chatwoot_admin_token: SecretStr | None = None
    chatwoot_platform_token: SecretStr | None = None
    chatwoot_webhook_secret: SecretStr | None = None  # comma-separated: several secrets during a rotation
    chatwoot_account_id: int = Field(1, ge=1)  # for the CLI's management commands
    chatwoot_rate_per_minute: int = Field(2400, ge=1)
    chatwoot_timeout: float = Field(10.0, gt=0)  # seconds to wait for one answer
    chatwoot_retry_deadline: float = Field(30.0, gt=0)  # seconds to keep retrying one request
    chatwoot_bot_id: int | None = Field(None, ge=1)  # the agent bot's id: needed when several bots share an inbox

    # Receiver
    botkit_allow_unsigned: bool = False
    botkit_basic_auth: SecretStr | None = None  # "user:password", for Chatwoot < 4.13 with credentials in the URL
    botkit_signature_tolerance: int = Field(300, ge=1)
    botkit_max_body_bytes: int = Field(20 * 1024 * 1024, ge=1024)  # e-mail deliveries of several MB are normal
    botkit_host: str = "127.0.0.1"
    botkit_port: int = Field(8000, ge=0, le=65535)

    # Store and worker
    botkit_store: str = "sqlite:///./botkit.db"
    botkit_dedupe_ttl: int = Field(24 * 3600, ge=1)
    botkit_concurrency: int = Field(64, ge=1)
    botkit_max_attempts: int = Field(3, ge=1)
    botkit_retry_backoff: float = Field(1.0, gt=0)
    botkit_shutdown_timeout: float = Field(10.0, gt=0)
    botkit_look_after: float = Field(5.0, gt=0)  # seconds before a stale or slow turn checks with Chatwoot

    # Bot
    botkit_bot: str = "bots.support_router:bot"
    botkit_handlers: str | None = None
    botkit_teams: str | None = None
    botkit_bots_file: str | None = None
    botkit_menu_ttl: int = Field(24 * 3600, ge=60)  # seconds a menu the bot sent can be answered
    botkit_language: str = "en"  # contacts whose language Chatwoot does not give, and notes to agents

    # Bursts (botkit/bursts.py): a contact's quick messages answered as one turn, by bots that merge them
    botkit_burst_window: float = Field(2.0, ge=0)  # seconds of quiet that end a burst; 0 turns merging off
    botkit_burst_max_wait: float = Field(8.0, gt=0)  # seconds from a burst's first message to its answer, at most

    # Attachments the contact sends (botkit/media.py)
    botkit_max_image_bytes: int = Field(5 * 1024 * 1024, ge=0)  # an image inlined for a model
    botkit_max_audio_bytes: int = Field(25 * 1024 * 1024, ge=0)  # a voice note sent for transcription
    botkit_max_document_bytes: int = Field(10 * 1024 * 1024, ge=0)  # a document read for a model (kb extra)
    botkit_transcription_model: str | None = None  # e.g. whisper-1: voice notes become text before handlers run
    botkit_transcription_base_url: str | None = None  # an OpenAI-compatible server; OPENAI_BASE_URL when unset

    # Working beside the agents (botkit/agents.py, botkit/summary.py, botkit/hours.py)
    botkit_mode: str = "answer"  # answer: reply to the contact; suggest: private suggestions agents send
    botkit_suggest_inboxes: str | None = None  # inbox ids in suggest mode while the bot answers elsewhere
    botkit_command_prefix: str = Field("/", min_length=1)  # agents' commands in private notes start with it
    botkit_summary: str = "auto"  # the hand-off note: auto, model, built or off
    botkit_hours: str | None = None  # "Europe/Paris; mon-fri 09:00-17:00", or "chatwoot": each inbox's own
    botkit_holidays: str = ""  # 2026-12-25,2027-01-01 (closed all day)
    botkit_outside_hours: str = "wait"  # a hand-off outside the hours: wait (pending until opening) or open

    # Console and outcomes (botkit/outcomes.py, docs/outcomes.md)
    botkit_console_token: SecretStr | None = None  # set it to serve the console at /console on `botkit serve`
    botkit_console_contents: bool = False  # show message contents in timelines (off: only what the bot did)
    botkit_console_session_hours: float = Field(12.0, gt=0)  # a console login lasts this long
    botkit_timeline_keep: int = Field(1000, ge=0)  # delivery timelines kept in the store (0: none)
    botkit_outcomes_keep_days: float = Field(90.0, ge=0)  # outcome facts kept this many days (0: forever)
    botkit_model_prices: str | None = None  # "gpt-4o-mini=0.15/0.60,...": USD per million tokens in/out

    # Logs and metrics
    botkit_log_level: str = "INFO"
    botkit_log_format: str = "text"
    botkit_metrics: bool = True  # serve /metrics and count

    # Failed authentications per client address, before the receiver answers 429 (0 turns the limit off)
    botkit_unauthorized_per_second: float = Field(10.0, ge=0)
    botkit_unauthorized_burst: float = Field(100.0, ge=1)

    # OpenAI (read by the OpenAI handler)
    openai_api_key: SecretStr | None = None

    # Knowledge base (botkit kb, the knowledge handler)
    botkit_kb_embeddings: Literal["none", "minilm", "e5", "openai"] = "none"
    botkit_kb_embeddings_url: str | None = None  # an OpenAI-compatible server's /v1 URL, for openai
    botkit_kb_embeddings_model: str = "text-embedding-3-small"
    botkit_kb_min_score: float | None = None  # the confidence an answer needs (default: the model's own)
    botkit_kb_when_unsure: Literal["pass", "handoff"] = "pass"

    # where this object was read from, so handlers' settings classes read the same sources (section)
    _env_file: str | None = PrivateAttr(".env")
    _bot_values: dict[str, str] = PrivateAttr(default_factory=dict)  # a bot's BOTKIT_BOTS_FILE table, by NAME

    def section(self, cls: type[S], **arguments: Any) -> S:
        """A handler's settings class read from the same sources as these settings: `arguments` (given in
        code; None means not given), this bot's BOTKIT_BOTS_FILE table, secret files, the environment and
        the same `.env`. ConfigError, one sentence, when a setting is wrong."""
        return read_settings(cls, self._env_file, bot_values=self._bot_values, **arguments)

    def for_bot(self, values: Mapping[str, str], **fields: Any) -> Settings:
        """These settings with a bot's own table on top: `values` by setting NAME (BOTKIT_KEYWORDS_FILE,
        OPENAI_MODEL, ...), `fields` by field name. The names of other classes reach `section`."""
        own = {**self._bot_values, **values}
        mine = {name.lower(): value for name, value in own.items() if name.lower() in type(self).model_fields}
        settings = read_settings(type(self), None, **{**self.model_dump(), **mine, **fields})
        settings._env_file, settings._bot_values = self._env_file, own
        return settings

    @field_validator("chatwoot_bot_token", "chatwoot_admin_token", "chatwoot_platform_token",
                     "chatwoot_webhook_secret", "botkit_basic_auth", "openai_api_key", "botkit_handlers",
                     "botkit_teams", "botkit_bots_file", "chatwoot_base_url", "botkit_transcription_model",
                     "botkit_transcription_base_url", "botkit_kb_embeddings_url", "botkit_kb_min_score",
                     "botkit_hours", "botkit_suggest_inboxes", "botkit_console_token", "botkit_model_prices",
                     mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """`NAME=` in a .env copied from example.env means "not set"."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("chatwoot_base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("botkit_store")
    @classmethod
    def _store(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "memory://", "redis://", "rediss://", "unix://")):
            raise ValueError("must be sqlite:///PATH, memory:// or redis://HOST:PORT/DB")
        return value

    @field_validator("botkit_bot")
    @classmethod
    def _bot(cls, value: str) -> str:
        if ":" not in value:
            raise ValueError("must be module:attribute, e.g. bots.support_router:bot")
        return value

    @field_validator("botkit_language")
    @classmethod
    def _language(cls, value: str) -> str:
        from botkit.i18n import normalize

        normalized = normalize(value)
        if normalized is None:
            raise ValueError("must be a language such as en, pt_BR, es, fr or de")
        return normalized

    @field_validator("botkit_log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        if value.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return value.upper()

    @field_validator("botkit_log_format")
    @classmethod
    def _log_format(cls, value: str) -> str:
        if value not in ("text", "json"):
            raise ValueError("must be text or json")
        return value

    @field_validator("botkit_mode")
    @classmethod
    def _mode(cls, value: str) -> str:
        if value not in ("answer", "suggest"):
            raise ValueError("must be answer or suggest")
        return value

    @field_validator("botkit_summary")
    @classmethod
    def _summary(cls, value: str) -> str:
        if value not in ("auto", "model", "built", "off"):
            raise ValueError("must be auto, model, built or off")
        return value

    @field_validator("botkit_outside_hours")
    @classmethod
    def _outside_hours(cls, value: str) -> str:
        if value not in ("wait", "open"):
            raise ValueError("must be wait (pending until opening time) or open (open now, with a note)")
        return value

    @field_validator("botkit_hours")
    @classmethod
    def _hours(cls, value: str | None) -> str | None:
        if value is not None and value.strip() != "chatwoot":
            from botkit.hours import Schedule

            Schedule.parse(value)  # raises ValueError with the part that is wrong
        return value

    @field_validator("botkit_holidays")
    @classmethod
    def _holidays(cls, value: str) -> str:
        from botkit.hours import Schedule

        try:
            Schedule.parse("UTC", value)
        except ValueError as exc:  # "holiday '2026-13-45' is not a date; ..." -> the day that is wrong
            raise ValueError(str(exc).removeprefix("holiday ")) from None
        return value

    @field_validator("botkit_suggest_inboxes")
    @classmethod
    def _inboxes(cls, value: str | None) -> str | None:
        if value is not None and not all(p.strip().isdigit() for p in value.split(",") if p.strip()):
            raise ValueError("must be inbox ids separated by commas, e.g. 3,5")
        return value

    @field_validator("botkit_basic_auth")
    @classmethod
    def _basic(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and ":" not in value.get_secret_value():
            raise ValueError("must be user:password, as in the outgoing URL https://user:password@host/webhook")
        return value

    @field_validator("botkit_console_token")
    @classmethod
    def _console_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (make one with: python -c 'import secrets; "
                             "print(secrets.token_urlsafe(24))')")
        return value

    @field_validator("botkit_model_prices")
    @classmethod
    def _prices(cls, value: str | None) -> str | None:
        if value is not None:
            parse_prices(value)
        return value

    @property
    def model_prices(self) -> dict[str, tuple[float, float]]:
        """BOTKIT_MODEL_PRICES as {model: (USD per million input tokens, USD per million output tokens)}."""
        return parse_prices(self.botkit_model_prices or "")

    @property
    def webhook_secrets(self) -> list[bytes]:
        if self.chatwoot_webhook_secret is None:
            return []
        raw = self.chatwoot_webhook_secret.get_secret_value()
        return [s.strip().encode() for s in raw.split(",") if s.strip()]

    @property
    def teams(self) -> dict[str, int]:
        """`BOTKIT_TEAMS=billing=3,technical=4` as {"billing": 3, "technical": 4}."""
        return parse_teams(self.botkit_teams or "")

    @property
    def suggest_inboxes(self) -> frozenset[int]:
        return frozenset(int(p) for p in (self.botkit_suggest_inboxes or "").split(",") if p.strip())


def parse_teams(text: str) -> dict[str, int]:
    teams: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, number = part.partition("=")
        if not sep or not number.strip().isdigit():
            raise ConfigError(f"BOTKIT_TEAMS must look like billing=3,technical=4; '{part}' is not name=id.")
        teams[name.strip().lower()] = int(number)
    return teams


def parse_prices(text: str) -> dict[str, tuple[float, float]]:
    """`gpt-4o-mini=0.15/0.60,gpt-4o=2.5/10` -> {"gpt-4o-mini": (0.15, 0.6), ...}; one number is both prices."""
    prices: dict[str, tuple[float, float]] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, numbers = part.partition("=")
        try:
            values = [float(n) for n in numbers.split("/")]
        except ValueError:
            values = []
        if not sep or not name.strip() or len(values) not in (1, 2) or min(values) < 0:
            raise ValueError(f"must look like gpt-4o-mini=0.15/0.60 (USD per million tokens in/out); "
                             f"{part!r} is not model=price/price")
        prices[name.strip()] = (values[0], values[-1])
    return prices


def env_name(cls: type[BaseSettings], field: str) -> str:
    """The environment variable of a settings field: OPENAI_MODEL for OpenAISettings.model."""
    return (str(cls.model_config.get("env_prefix") or "") + field).upper()


def _secrets_from_files(cls: type[BaseSettings]) -> dict[str, str]:
    """`NAME_FILE` variables and `BOTKIT_SECRETS_DIR/<name>` files, for every field of the class (but one
    whose NAME_FILE is itself a setting, such as OPENAI_SYSTEM_PROMPT_FILE)."""
    found: dict[str, str] = {}
    secrets_dir = os.environ.get("BOTKIT_SECRETS_DIR")
    for field in cls.model_fields:
        if f"{field}_file" in cls.model_fields:
            continue
        upper = env_name(cls, field)
        path = os.environ.get(f"{upper}_FILE")
        if path is None and secrets_dir:
            for candidate in (Path(secrets_dir) / upper, Path(secrets_dir) / upper.lower()):
                if candidate.is_file():
                    path = str(candidate)
                    break
        if path is None:
            continue
        try:
            found[field] = Path(path).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{upper}_FILE names {path}, which cannot be read ({exc.strerror}).") from None
    return found


def read_settings(cls: type[S], env_file: str | None = ".env", *, bot_values: Mapping[str, str] | None = None,
                  **arguments: Any) -> S:
    """Read a settings class (Settings, or a handler's), or raise ConfigError with one sentence saying what
    to set. `arguments` (by field name; None means not given) win over `bot_values` (a bot's table in
    BOTKIT_BOTS_FILE, by setting NAME), which win over secret files, the environment and `env_file`."""
    own = {field: value for field in cls.model_fields
           if (value := (bot_values or {}).get(env_name(cls, field))) is not None}
    values = {**_secrets_from_files(cls), **own, **{k: v for k, v in arguments.items() if v is not None}}
    try:
        return cls(_env_file=env_file, **values)  # type: ignore[call-arg]
    except ValidationError as exc:
        error = exc.errors()[0]
        name = env_name(cls, str(error["loc"][0])) if error["loc"] else "a setting"
        bounds = {key: int(bound) if isinstance(bound, float) and bound.is_integer() else bound
                  for key, bound in (error.get("ctx") or {}).items()}  # "at least 0", not "0.0", for a float
        reason = _REASONS.get(error["type"], "").format(**bounds)
        reason = reason or error["msg"].removeprefix("Value error, ")
        secret = bool(error["loc"]) and _is_secret(cls, str(error["loc"][0]))
        said = repr(error.get("input")) in reason  # the reason quotes the value already
        shown = "" if secret or said else f" (it is {error.get('input')!r})"
        raise ConfigError(f"{name} {reason[0].lower() + reason[1:]}{shown}.") from None


def _is_secret(cls: type[BaseSettings], field: str) -> bool:
    info = cls.model_fields.get(field)
    return info is not None and SecretStr in (info.annotation, *getattr(info.annotation, "__args__", ()))


def load_settings(env_file: str | None = ".env", **overrides: Any) -> Settings:
    """botkit's own settings (read_settings(Settings)); the handlers' classes read theirs with `section`."""
    settings = read_settings(Settings, env_file, **overrides)
    settings._env_file = env_file
    return settings


# Pydantic's wording, said the way a person setting an environment variable reads it.
_REASONS = {
    "int_parsing": "must be a whole number",
    "float_parsing": "must be a number",
    "bool_parsing": "must be true or false",
    "greater_than_equal": "must be at least {ge}",
    "greater_than": "must be more than {gt}",
    "less_than_equal": "must be at most {le}",
}
