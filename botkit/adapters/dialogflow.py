"""The Dialogflow handler: ES (v2) or CX (v3), doing what Chatwoot's built-in Dialogflow integration does.

Chatwoot's integration (`lib/integrations/dialogflow/processor_service.rb`) is what users
migrate from, so the mapping is the same:

- the session id is `conversation.contact_inbox.source_id`;
- the query is the message's content, or the first submitted value of an `input_select` answer
  (`message_updated`); forms and emails are not sent, as in Chatwoot. botkit goes further on channels whose
  answer is a new message (a WhatsApp title, a number typed back: botkit.menus): the query is the picked
  option's value there too, the same on every channel;
- each fulfillment message, in order: a text -> a reply (its first variant); a custom payload -> a Chatwoot
  message as-is (`content`, `content_type`, `content_attributes`: how rich messages are sent); a payload
  with `"action": "handoff"` -> the hand-off (the conversation is opened), `"action": "resolve"` -> resolve.

botkit's extensions: `{"action": "handoff", "team": "billing"}` assigns the team first; CX's
`live_agent_handoff` message is a hand-off; after N fallback matches in a row the bot hands off.

Settings (constructor arguments win over the environment and `.env`):

    DIALOGFLOW_PROJECT_ID           the Google Cloud project (default: the credentials' project)
    DIALOGFLOW_LOCATION             global (default) or a region such as europe-west1 (regional endpoint)
    DIALOGFLOW_CX_AGENT_ID          set to use a CX agent (the id, or projects/.../agents/<id>)
    DIALOGFLOW_LANGUAGE_CODE        the query language (default en-US, as Chatwoot sends)
    DIALOGFLOW_LANGUAGE_FROM_CONTACT  true: use the contact's additional_attributes.language_code when set
    DIALOGFLOW_CREDENTIALS_JSON     a service-account key as JSON (else GOOGLE_APPLICATION_CREDENTIALS / ADC)
    DIALOGFLOW_ENDPOINT             an explicit API endpoint (host[:port]), overriding the location's
    DIALOGFLOW_TIMEOUT              seconds for one query, retries included (default 10, as Chatwoot)
    DIALOGFLOW_FALLBACK_HANDOFF_AFTER  hand off after this many fallback matches in a row (0: never)
    DIALOGFLOW_MIN_CONFIDENCE       a match below this confidence counts as a fallback (0: off)
    DIALOGFLOW_FALLBACK_MESSAGE     what the contact is told at that hand-off (default: nothing)
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from botkit.bot import MESSAGES, Bot, Handler
from botkit.config import ConfigError, read_settings
from botkit.context import ActionRefused, Context
from botkit.i18n import N_

log = logging.getLogger("botkit.dialogflow")  # the worker binds each line's delivery_id, lane, event (botkit/logs.py)

SCOPES = ["https://www.googleapis.com/auth/cloud-platform", "https://www.googleapis.com/auth/dialogflow"]
TRANSIENT = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED"})
MISSES = "dialogflow_misses"  # the state key counting fallback matches in a row


class DialogflowSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DIALOGFLOW_", env_file=".env", extra="ignore")

    project_id: str | None = None
    location: str = "global"
    cx_agent_id: str | None = None
    language_code: str = "en-US"
    language_from_contact: bool = False
    credentials_json: SecretStr | None = None
    endpoint: str | None = None
    timeout: float = Field(10.0, gt=0)
    fallback_handoff_after: int = Field(0, ge=0)
    min_confidence: float = Field(0.0, ge=0, le=1)
    fallback_message: str | None = None


def load_dialogflow_settings(**overrides: Any) -> DialogflowSettings:
    """DIALOGFLOW_* from the environment and `.env` (botkit.config.read_settings), `overrides` on top."""
    return read_settings(DialogflowSettings, **overrides)


class DialogflowUnavailable(Exception):
    """Dialogflow kept failing with a transient error until the deadline; the worker retries the event."""

    transient = True


@dataclass(frozen=True)
class ChatwootMessage:
    """A custom payload, posted as-is like Chatwoot's integration does (a RichMessage-like object)."""

    payload: dict[str, Any]

    def to_payload(self) -> dict[str, Any]:
        return {"content": self.payload.get("content"), "content_type": self.payload.get("content_type") or "text",
                "content_attributes": self.payload.get("content_attributes")}


@dataclass(frozen=True)
class Result:
    """What the agent answered, API-neutral: the messages in order and whether it understood."""

    messages: list[str | dict[str, Any]]  # text, or a custom payload ({"action": "handoff"} for CX hand-offs)
    fallback: bool
    confidence: float


class DialogflowHandler(Handler):
    name = "dialogflow"
    events = MESSAGES

    def __init__(self, *, project_id: str | None = None, location: str | None = None,
                 cx_agent_id: str | None = None, language_code: str | None = None,
                 language_from_contact: bool | None = None, credentials_json: str | None = None,
                 endpoint: str | None = None, timeout: float | None = None,
                 fallback_handoff_after: int | None = None, min_confidence: float | None = None,
                 fallback_message: str | None = None, client: Any = None, transport: Any = None) -> None:
        self._overrides = dict(
            project_id=project_id, location=location, cx_agent_id=cx_agent_id, language_code=language_code,
            language_from_contact=language_from_contact, credentials_json=credentials_json, endpoint=endpoint,
            timeout=timeout, fallback_handoff_after=fallback_handoff_after, min_confidence=min_confidence,
            fallback_message=fallback_message)
        self.client = client
        self._transport = transport
        self._owns_client = False
        self.settings: DialogflowSettings | None = None
        self.api: _ES | _CX | None = None

    # lifecycle ----------------------------------------------------------------------------------------
    async def startup(self, bot: Bot) -> None:
        # the bot's sources (its BOTKIT_BOTS_FILE table included), the constructor's arguments on top
        settings = self.settings = (bot.runtime.settings.section(DialogflowSettings, **self._overrides)
                                    if bot.runtime is not None else load_dialogflow_settings(**self._overrides))
        cx = bool(settings.cx_agent_id)
        project = settings.project_id
        if self.client is None:
            clients = _cx_clients() if cx else _es_clients()
            if self._transport is not None:  # the caller's channel: the caller closes it
                self.client = clients.SessionsAsyncClient(transport=self._transport)
            else:
                credentials, found_project = await asyncio.to_thread(_credentials, settings)
                project = project or found_project
                self.client = clients.SessionsAsyncClient(
                    credentials=credentials, client_options={"api_endpoint": _endpoint(settings)})
                self._owns_client = True
        full_agent_path = cx and str(settings.cx_agent_id).startswith("projects/")
        if not project and not full_agent_path:
            raise ConfigError("DIALOGFLOW_PROJECT_ID must name the Google Cloud project of the Dialogflow agent.")
        self.api = _CX(settings, project) if cx else _ES(settings, project or "")
        log.info("Dialogflow %s agent of project %s (%s)", "CX" if cx else "ES", project, settings.location)

    async def shutdown(self) -> None:
        if self._owns_client and self.client is not None:
            await self.client.transport.close()

    # handling -----------------------------------------------------------------------------------------
    @property
    def takes_all(self) -> frozenset[str]:
        """The agent answers every message that has text (its fallback intent included)."""
        return self.events

    async def handle(self, ctx: Context) -> bool:
        query = query_text(ctx)
        if not query:
            return False  # nothing to ask (Chatwoot skips blank content too); later handlers may take it
        assert self.settings is not None and self.api is not None, "the handler was not started"
        request = self.api.request(session_id(ctx), query, self.language(ctx))
        try:
            response = await self._detect(request)
        except _Refused as refused:
            log.error("Dialogflow refused the query (%s); handing the conversation to humans", refused.code)
            await ctx.handoff(note=ctx.t_agents(N_("The Dialogflow agent refused the bot's query ({code}: {hint}); "
                                                   "the conversation is yours."), code=refused.code, hint=refused.hint))
            return True
        result = self.api.result(response)
        log.debug("Dialogflow answered %d messages (fallback=%s, confidence=%.2f)", len(result.messages),
                  result.fallback, result.confidence)
        if await self._too_many_misses(ctx, result):
            return True
        for message in result.messages:
            await self.fulfil(ctx, message)
        return True

    def language(self, ctx: Context) -> str:
        assert self.settings is not None
        if self.settings.language_from_contact and ctx.contact is not None:
            code = ctx.contact.additional_attributes.get("language_code")
            if isinstance(code, str) and code.strip():
                return code.strip()
        return self.settings.language_code

    async def fulfil(self, ctx: Context, message: str | dict[str, Any]) -> None:
        """One fulfillment message, as Chatwoot's integration handles it."""
        if isinstance(message, str):
            if message:
                await ctx.reply(message)
            return
        action = message.get("action")
        if action:  # Chatwoot: a payload with an action is only the action; unknown actions do nothing
            if action == "handoff":
                await self._handoff(ctx, message.get("team"))
            elif action == "resolve":
                await ctx.resolve()
            else:
                log.warning("Dialogflow sent an unknown action %r; ignored as Chatwoot does", action)
            return
        if message.get("content") or message.get("content_attributes"):
            await ctx.reply(ChatwootMessage(message))

    async def _handoff(self, ctx: Context, team: Any) -> None:
        if team in (None, ""):
            await ctx.handoff()
            return
        try:
            await ctx.handoff(team=team)
        except ActionRefused as exc:
            log.warning("Dialogflow asked for a team botkit cannot assign (%s); handing off without it", exc)
            await ctx.handoff(note=ctx.t_agents(N_("The Dialogflow agent asked for team {team}, which the bot "
                                                   "cannot assign ({reason})."), team=repr(team), reason=str(exc)))

    async def _too_many_misses(self, ctx: Context, result: Result) -> bool:
        """Count fallback (or low-confidence) answers in a row; at the limit, hand off instead of answering."""
        assert self.settings is not None
        limit = self.settings.fallback_handoff_after
        missed = result.fallback or result.confidence < self.settings.min_confidence
        if not limit:
            return False
        if not missed:
            ctx.state.pop(MISSES, None)
            return False
        misses = int(ctx.state.get(MISSES, 0)) + 1
        if misses < limit:
            ctx.state[MISSES] = misses
            return False
        ctx.state.pop(MISSES, None)
        log.info("the Dialogflow agent did not understand %d times in a row; handing off", misses)
        fallback = self.settings.fallback_message
        await ctx.handoff(message=ctx.t(fallback) if fallback else None,
                          note=ctx.t_agents(N_("The Dialogflow agent did not understand the contact {count} times "
                                               "in a row."), count=misses))
        return True

    async def _detect(self, request: Any) -> Any:
        """DetectIntent with our own retry of transient codes inside one deadline (the library's would hang)."""
        from google.api_core import exceptions

        assert self.settings is not None
        deadline = time.monotonic() + self.settings.timeout
        attempt = 0
        while True:
            attempt += 1
            left = deadline - time.monotonic()
            try:
                return await self.client.detect_intent(request=request, retry=None, timeout=max(left, 0.01))
            except exceptions.GoogleAPICallError as exc:
                code = _code(exc)
                if code not in TRANSIENT:
                    raise _Refused(code) from exc
                pause = min(2.0, 0.1 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
                if time.monotonic() + pause >= deadline:
                    log.warning("Dialogflow still failing (%s) after %d attempts; the event will be retried",
                                code, attempt)
                    raise DialogflowUnavailable(f"Dialogflow answered {code} for {self.settings.timeout:g} s") \
                        from exc
                log.info("Dialogflow answered %s; retrying in %.2f s", code, pause)
                await asyncio.sleep(pause)


# what Chatwoot sends ----------------------------------------------------------------------------------
def query_text(ctx: Context) -> str:
    """The query Chatwoot's integration sends: the content, or the first submitted value of an input_select."""
    message = ctx.message
    if message is None:
        return ""
    if ctx.event.name == "message_created" and ctx.answer is not None and ctx.submitted:
        value = ctx.submitted[0].get("value")  # a tap or a typed number that botkit matched to its menu
        if value not in (None, ""):
            return str(value)
    if ctx.event.name == "message_updated":
        if message.content_type != "input_select" or not ctx.submitted:
            return ""
        value = ctx.submitted[0].get("value")
        return str(value) if value not in (None, "") else ""
    content = message.content or ""
    return content if content.strip() else ""


def session_id(ctx: Context) -> str:
    """contact_inbox.source_id, as Chatwoot's integration; else one per conversation (payloads without it)."""
    conversation = ctx.conversation
    if conversation is not None and conversation.contact_inbox and conversation.contact_inbox.source_id:
        return conversation.contact_inbox.source_id
    return f"chatwoot-{ctx.account_id}-{ctx.conversation_id}"


# ES and CX --------------------------------------------------------------------------------------------
class _ES:
    def __init__(self, settings: DialogflowSettings, project: str) -> None:
        from google.cloud.dialogflow_v2 import types

        self.types = types
        location = settings.location
        self.prefix = (f"projects/{project}/agent/sessions/" if location == "global"
                       else f"projects/{project}/locations/{location}/agent/sessions/")

    def request(self, session: str, text: str, language: str) -> Any:
        t = self.types
        return t.DetectIntentRequest(session=self.prefix + session,
                                     query_input=t.QueryInput(text=t.TextInput(text=text, language_code=language)))

    def result(self, response: Any) -> Result:
        query = response.query_result
        messages: list[str | dict[str, Any]] = []
        for message in type(query).pb(query).fulfillment_messages:
            kind = message.WhichOneof("message")
            if kind == "text":
                messages.append(message.text.text[0] if message.text.text else "")
            elif kind == "payload":
                messages.append(_plain(message.payload))
        fallback = query.intent.is_fallback or not query.intent.display_name
        return Result(messages, fallback, round(query.intent_detection_confidence, 4))


class _CX:
    def __init__(self, settings: DialogflowSettings, project: str | None) -> None:
        from google.cloud.dialogflowcx_v3 import types

        self.types = types
        agent = settings.cx_agent_id or ""
        if not agent.startswith("projects/"):
            agent = f"projects/{project}/locations/{settings.location}/agents/{agent}"
        self.prefix = f"{agent}/sessions/"

    def request(self, session: str, text: str, language: str) -> Any:
        t = self.types
        return t.DetectIntentRequest(session=self.prefix + session,
                                     query_input=t.QueryInput(text=t.TextInput(text=text), language_code=language))

    def result(self, response: Any) -> Result:
        query = response.query_result
        messages: list[str | dict[str, Any]] = []
        for message in type(query).pb(query).response_messages:
            kind = message.WhichOneof("message")
            if kind == "text":
                messages.append(message.text.text[0] if message.text.text else "")
            elif kind == "payload":
                messages.append(_plain(message.payload))
            elif kind == "live_agent_handoff":
                messages.append({"action": "handoff", **_plain(message.live_agent_handoff.metadata)})
        match = self.types.Match.MatchType
        fallback = query.match.match_type in (match.NO_MATCH, match.NO_INPUT)
        return Result(messages, fallback, round(query.match.confidence, 4))


# helpers ----------------------------------------------------------------------------------------------
class _Refused(Exception):
    HINTS = {
        "PERMISSION_DENIED": "check the service account's Dialogflow role",
        "UNAUTHENTICATED": "check the Dialogflow credentials",
        "NOT_FOUND": "check DIALOGFLOW_PROJECT_ID, DIALOGFLOW_LOCATION and the agent id",
    }

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code
        self.hint = self.HINTS.get(code, "see the bot's log")


def _code(exc: Any) -> str:
    code = getattr(exc, "grpc_status_code", None)
    return code.name if code is not None else type(exc).__name__


def _plain(struct: Any) -> dict[str, Any]:
    """A protobuf Struct as plain JSON values; whole numbers back to int (a Struct keeps only floats)."""
    from google.protobuf import json_format

    def unfloat(value: Any) -> Any:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, dict):
            return {k: unfloat(v) for k, v in value.items()}
        if isinstance(value, list):
            return [unfloat(v) for v in value]
        return value

    return unfloat(json_format.MessageToDict(struct))


def _endpoint(settings: DialogflowSettings) -> str:
    if settings.endpoint:
        return settings.endpoint
    location = settings.location.strip() or "global"
    return "dialogflow.googleapis.com" if location == "global" else f"{location}-dialogflow.googleapis.com"


def _credentials(settings: DialogflowSettings) -> tuple[Any, str | None]:
    """Service-account JSON from DIALOGFLOW_CREDENTIALS_JSON, else Application Default Credentials."""
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError
    from google.oauth2 import service_account

    fix = ("set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file or DIALOGFLOW_CREDENTIALS_JSON "
           "to its contents")
    if settings.credentials_json is not None:
        try:
            info = json.loads(settings.credentials_json.get_secret_value())
            credentials = service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
        except json.JSONDecodeError:
            raise ConfigError(f"DIALOGFLOW_CREDENTIALS_JSON is not valid JSON: {fix}.") from None
        except (ValueError, TypeError, AttributeError):  # never echo the key's contents
            raise ConfigError(f"DIALOGFLOW_CREDENTIALS_JSON is not a service-account key: {fix}.") from None
        return credentials, info.get("project_id")
    try:
        return google.auth.default(scopes=SCOPES)
    except DefaultCredentialsError as exc:
        reason = str(exc).split("\n")[0].split(". ")[0].rstrip(".")  # the first sentence: what is wrong
        raise ConfigError(f"Dialogflow credentials could not be loaded ({reason}): {fix}.") from None


def _es_clients() -> Any:
    from google.cloud.dialogflow_v2.services import sessions

    return sessions


def _cx_clients() -> Any:
    from google.cloud.dialogflowcx_v3.services import sessions

    return sessions
