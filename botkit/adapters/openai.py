"""OpenAIHandler: answer the contact with a model behind any OpenAI-compatible API (OpenAI, vLLM, Ollama, ...).

    Bot("assistant", [KeywordRouter(rules), OpenAIHandler(system_prompt="You help {contact_name}.")])

- Memory: a bot token cannot read a conversation's history from Chatwoot, so the handler keeps the transcript
  (the contact's messages and its own replies) in the conversation's state, trimmed to a turn and size budget.
  botkit saves the state after the chain and clears it when the conversation is resolved.
- Tools: the model may hand off, assign a team, add labels and resolve; users add typed Python functions.
- Failure: ONE retry layer, the SDK's own (`max_retries`): it knows which statuses are worth retrying and
  honours the provider's retry-after. When the model still fails, the contact gets a short message and the
  conversation goes to a human with a private note saying why. Model failures are never raised: the worker
  would retry the event and the contact would read the apology twice.
- Guard rails: a cap on model calls and tokens per conversation; reaching it hands off.
- Logs: outcomes, timings and error kinds only; prompts, keys and messages only at debug level (or never).

Settings are constructor arguments, with fallbacks in `OpenAISettings` (OPENAI_MODEL, OPENAI_SYSTEM_PROMPT, ...)
read like every setting (botkit.config): the environment, `.env`, secret files and, from `startup` on, the
bot's own table in BOTKIT_BOTS_FILE.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import inspect
import json
import logging
import string
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, get_type_hints

import openai
from pydantic import Field, SecretStr, ValidationError, create_model
from pydantic_settings import BaseSettings, SettingsConfigDict

from botkit import timeline, tracing
from botkit.bot import Bot, Handler
from botkit.config import ConfigError, read_settings
from botkit.context import ActionRefused, Context
from botkit.i18n import N_

log = logging.getLogger("botkit.openai")

DEFAULT_PROMPT = ("You are the support assistant of {inbox}. Answer briefly and politely in the contact's language. "
                  "When you cannot help, or the contact asks for a person, call handoff_to_human.")
BUILTIN_TOOLS = ("handoff_to_human", "assign_team", "add_labels", "resolve_conversation")


class OpenAISettings(BaseSettings):
    """The environment fallbacks of OpenAIHandler's arguments (OPENAI_<NAME>)."""

    model_config = SettingsConfigDict(env_prefix="OPENAI_", env_file=".env", extra="ignore")

    api_key: SecretStr | None = None
    base_url: str | None = None  # any OpenAI-compatible server, e.g. http://localhost:11434/v1 (Ollama)
    model: str = "gpt-4o-mini"
    api: Literal["chat", "responses"] = "chat"
    system_prompt: str | None = None  # a format template: {contact_name}, {inbox}, {channel}, {attributes[plan]}
    system_prompt_file: Path | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    max_output_tokens: int | None = Field(500, ge=1)
    timeout: float = Field(20.0, gt=0)  # seconds per attempt (the SDK's own default is 600)
    max_retries: int = Field(2, ge=0)  # the SDK's retries: the only retry layer
    history_turns: int = Field(20, ge=1)  # messages (the contact's and the bot's) kept as memory
    history_chars: int = Field(8000, ge=100)  # characters kept as memory
    max_tool_rounds: int = Field(4, ge=0)  # model calls that may follow tool calls, per contact message
    max_calls_per_conversation: int = Field(40, ge=1)
    max_tokens_per_conversation: int = Field(60000, ge=1)
    # the contact's images: off, url (the model fetches Chatwoot's URL), inline (botkit fetches it, as a data URL)
    images: Literal["off", "url", "inline"] = "url"
    # characters of each document the contact sends (PDF, HTML, text: the kb extra's readers) given to the model
    document_chars: int = Field(6000, ge=0)
    # sent in the contact's language when the text is a msgid of the bot's catalogue (botkit/i18n.py)
    fallback_message: str = N_("Sorry, I can't answer right now. A member of our team will get back to you shortly.")
    handoff_message: str = N_("I'm handing you over to a member of our team.")


# tools --------------------------------------------------------------------------------------------------

@dataclass
class Tool:
    """A function the model may call: a name, a description, a JSON schema, and how to run it."""

    name: str
    description: str
    parameters: dict[str, Any]
    run: Callable[[Context, dict[str, Any]], Awaitable[Any]]
    ends_turn: bool = False  # after it, the bot says no more (a hand-off, a resolve)

    @classmethod
    def from_function(cls, fn: Callable[..., Any], *, name: str | None = None, description: str | None = None,
                      ends_turn: bool = False) -> Tool:
        """A tool from a typed function (sync or async); a parameter typed Context (or named ctx) gets the Context."""
        hints = get_type_hints(fn, localns={"Context": Context})
        summary, documented = _docstring(fn)
        fields: dict[str, Any] = {}
        context_arg = None
        for arg, param in inspect.signature(fn).parameters.items():
            if hints.get(arg) is Context or arg == "ctx":
                context_arg = arg
                continue
            default = ... if param.default is inspect.Parameter.empty else param.default
            fields[arg] = (hints.get(arg, str), Field(default, description=documented.get(arg)))
        arguments = create_model(f"{fn.__name__}_arguments", **fields)
        schema = _without_titles(arguments.model_json_schema())

        async def run(ctx: Context, raw: dict[str, Any]) -> Any:
            values = dict(arguments.model_validate(raw))
            if context_arg is not None:
                values[context_arg] = ctx
            result = fn(**values)
            return await result if inspect.isawaitable(result) else result

        return cls(name or fn.__name__, description or summary or fn.__name__, schema, run, ends_turn)


def _docstring(fn: Callable[..., Any]) -> tuple[str, dict[str, str]]:
    """The first paragraph, and `name: text` lines under an Args: section."""
    doc = inspect.getdoc(fn) or ""
    summary = doc.split("\n\n", 1)[0].replace("\n", " ").strip()
    documented: dict[str, str] = {}
    in_args = False
    for line in doc.splitlines():
        if line.strip() in ("Args:", "Arguments:", "Parameters:"):
            in_args = True
        elif in_args and ":" in line and line.startswith((" ", "\t")):
            arg, _, text = line.strip().partition(":")
            documented[arg.split(" ")[0].strip()] = text.strip()
        elif in_args and line.strip() and not line.startswith((" ", "\t")):
            in_args = False
    return summary, documented


def _without_titles(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _without_titles(v) for k, v in schema.items() if k != "title"}
    if isinstance(schema, list):
        return [_without_titles(v) for v in schema]
    return schema


@dataclass
class _Turn:
    """What happened while answering one contact message (read by the built-in tools)."""

    replied: bool = False
    ended: bool = False


_turn: contextvars.ContextVar[_Turn] = contextvars.ContextVar("botkit_openai_turn")


@dataclass
class _Call:
    id: str
    name: str
    arguments: str


def _tokens(answer: dict[str, Any]) -> int:
    """The tokens a model answer used (both APIs name it `usage.total_tokens`); 0 when it does not say."""
    return int((answer.get("usage") or {}).get("total_tokens") or 0)


def _usage(answer: dict[str, Any]) -> tuple[int, int]:
    """(input tokens, output tokens): Chat Completions says prompt/completion, the Responses API input/output."""
    usage = answer.get("usage") or {}
    return (int(usage.get("prompt_tokens") or usage.get("input_tokens") or 0),
            int(usage.get("completion_tokens") or usage.get("output_tokens") or 0))


@dataclass
class _Answer:
    text: str
    calls: list[_Call]
    tokens: int
    items: list[dict[str, Any]] = field(default_factory=list)  # what to send back before the tool results
    tokens_in: int = 0
    tokens_out: int = 0


class ModelFailure(Exception):
    """Why the model gave no answer, in one sentence for the agents' note (never a key or a message)."""

    def __init__(self, kind: str, sentence: str) -> None:
        super().__init__(sentence)
        self.kind = kind
        self.sentence = sentence


# the handler --------------------------------------------------------------------------------------------

class OpenAIHandler(Handler):
    merges_bursts = True  # one model call for "hi" / "my order" / "it hasn't arrived"

    name = "openai"

    def __init__(
        self,
        *,
        model: str | None = None,
        system_prompt: str | None = None,
        system_prompt_file: str | Path | None = None,
        api: Literal["chat", "responses"] | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        temperature: float | None = None,
        max_output_tokens: int | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        tools: Iterable[Callable[..., Any] | Tool] = (),
        builtin_tools: Iterable[str] = BUILTIN_TOOLS,
        teams: Sequence[str] | None = None,
        typing: bool = True,
        client: openai.AsyncOpenAI | None = None,
        env_file: str | None = ".env",
        **limits: Any,
    ) -> None:
        given = {"model": model, "system_prompt": system_prompt, "system_prompt_file": system_prompt_file,
                 "api": api, "api_key": api_key, "base_url": base_url, "temperature": temperature,
                 "max_output_tokens": max_output_tokens, "timeout": timeout, "max_retries": max_retries, **limits}
        self._given = given
        self.settings = read_settings(OpenAISettings, env_file, **given)
        unknown = set(builtin_tools) - set(BUILTIN_TOOLS)
        if unknown:
            raise ValueError(f"no built-in tool named {', '.join(sorted(unknown))}; "
                             f"they are {', '.join(BUILTIN_TOOLS)}")
        self.template = self._read_prompt()
        self.teams = list(teams) if teams is not None else None
        self.typing = typing
        self.client = client
        self._own_client = client is None
        self._builtin = list(builtin_tools)
        self._user_tools = [t if isinstance(t, Tool) else Tool.from_function(t) for t in tools]
        self.tools: dict[str, Tool] = {}
        self._build_tools()

    def _read_prompt(self) -> str:
        settings = self.settings
        if settings.system_prompt is not None:
            template = settings.system_prompt
        elif settings.system_prompt_file is not None:
            try:
                template = settings.system_prompt_file.read_text()
            except OSError as exc:
                raise ConfigError(f"OPENAI_SYSTEM_PROMPT_FILE names {settings.system_prompt_file}, which cannot "
                                  f"be read ({exc.strerror}).") from None
        else:
            template = DEFAULT_PROMPT
        try:
            string.Formatter().vformat(template, (), _Blank())
        except (ValueError, IndexError) as exc:
            raise ConfigError(f"the system prompt is not a valid template ({exc}); double {{ and }} to write "
                              "them literally.") from None
        return template

    def _build_tools(self) -> None:
        teams = f" One of: {', '.join(self.teams)}." if self.teams else ""
        builtin = {
            "handoff_to_human": Tool.from_function(self._handoff_to_human, name="handoff_to_human", ends_turn=True),
            "assign_team": Tool.from_function(self._assign_team, name="assign_team"),
            "add_labels": Tool.from_function(self._add_labels, name="add_labels"),
            "resolve_conversation": Tool.from_function(self._resolve, name="resolve_conversation", ends_turn=True),
        }
        for tool in (builtin["handoff_to_human"], builtin["assign_team"]):
            team = tool.parameters["properties"]["team"]
            team["description"] = team.get("description", "") + teams
        self.tools = {name: builtin[name] for name in self._builtin}
        self.tools.update({tool.name: tool for tool in self._user_tools})

    # lifecycle ----------------------------------------------------------------------------------------
    async def startup(self, bot: Bot) -> None:
        settings = bot.runtime.settings if bot.runtime is not None else None
        if settings is not None:  # again, from the bot's sources (its BOTKIT_BOTS_FILE table included)
            self.settings = settings.section(OpenAISettings, **self._given)
            self.template = self._read_prompt()
        if self.teams is None and settings is not None and settings.botkit_teams:
            self.teams = list(settings.teams)
            self._build_tools()
        elif self.teams:
            bot.check_teams(self.teams)
        if self.client is None:
            key = self.settings.api_key or (settings.openai_api_key if settings is not None else None)
            if key is None or not key.get_secret_value():
                raise ConfigError("OPENAI_API_KEY must be set for the OpenAI handler (any non-empty value for a "
                                  "local server that needs no key).")
            # aiohttp under the SDK's httpx: a third of the CPU per call, which bounds a bot's concurrency
            self.client = openai.AsyncOpenAI(api_key=key.get_secret_value(), base_url=self.settings.base_url,
                                             timeout=self.settings.timeout, max_retries=self.settings.max_retries,
                                             http_client=openai.DefaultAioHttpClient())

    async def shutdown(self) -> None:
        if self._own_client and self.client is not None:
            await self.client.close()
            self.client = None

    # handling -----------------------------------------------------------------------------------------
    @property
    def takes_all(self) -> frozenset[str]:
        """The model answers every message that has text: nothing after this handler sees one."""
        return self.events

    async def handle(self, ctx: Context) -> bool:
        return await self.answer(ctx)

    async def answer(self, ctx: Context, *, context: str | None = None,
                     finish: Callable[[str], str] | None = None) -> bool:
        """Answer the contact's message. `context` is added to the system prompt for this turn only (e.g. the
        knowledge base's passages); `finish` edits each text of the model's before it is sent (e.g. sources)."""
        text = contact_text(ctx)
        if not text:
            return False
        # a deep copy, stored back whole: the Bot saves the state when its JSON differs from the snapshot it took
        memory = copy.deepcopy(ctx.state.get("openai") or {"transcript": [], "calls": 0, "tokens": 0})
        token = _turn.set(_Turn())
        # typing is shown beside the model call, not before it: a busy Chatwoot must not delay the answer
        typing = asyncio.create_task(ctx.typing(True)) if self.typing else None
        try:
            await self._answer(ctx, memory, text, context, finish or (lambda said: said))
        finally:
            ctx.state["openai"] = memory
            _turn.reset(token)
            if typing is not None:
                await typing  # ctx.typing never raises
                await ctx.typing(False)
        return True

    async def _answer(self, ctx: Context, memory: dict[str, Any], text: str, context: str | None,
                      finish: Callable[[str], str]) -> None:
        turn = _turn.get()
        transcript: list[dict[str, str]] = memory["transcript"]
        user = {"role": "user", "content": text}
        # this turn's items: the message (with its images), tool calls and their results
        pending: list[dict[str, Any]] = [await self._with_attachments(ctx, user)]
        system = self.system_prompt(ctx) + (f"\n\n{context}" if context else "")
        said: list[str] = []
        try:
            for _ in range(self.settings.max_tool_rounds + 1):
                self._check_caps(memory)
                answer = await self._ask(ctx, system, transcript + pending)
                memory["calls"] += 1
                memory["tokens"] += answer.tokens
                if not answer.calls:
                    if not answer.text.strip():
                        raise ModelFailure("empty", "the model gave an empty answer")
                    await ctx.reply(finish(answer.text))
                    said.append(answer.text)
                    return
                if answer.text.strip():  # said beside the tool calls: the contact should read it first
                    await ctx.reply(finish(answer.text))
                    said.append(answer.text)
                    turn.replied = True
                pending.extend(answer.items)
                for call in answer.calls:
                    pending.append(self._output_item(call, await self._run_tool(ctx, call)))
                if turn.ended or ctx.handed_off:
                    return
            raise ModelFailure("tool_rounds", f"the model kept calling tools for {self.settings.max_tool_rounds + 1} "
                                              "rounds without answering")
        except ModelFailure as failure:
            await self._fall_back(ctx, failure)
        finally:
            transcript.append(user)
            if said:
                transcript.append({"role": "assistant", "content": "\n".join(said)})
            trim(transcript, self.settings.history_turns, self.settings.history_chars)

    async def _with_attachments(self, ctx: Context, user: dict[str, Any]) -> dict[str, Any]:
        """The contact's message with the text of its documents and its images as image parts, for this turn's
        request only (the conversation's memory keeps the message's text)."""
        text = user["content"]
        if self.settings.document_chars:
            for attachment in ctx.documents:
                document = await ctx.media.read_document(attachment)
                if document is not None:
                    title, body = document
                    text += f"\n\n[the contact's document {title!r}]\n{body[:self.settings.document_chars]}"
        user = {"role": "user", "content": text}
        mode = self.settings.images
        if mode == "off" or not ctx.images:
            return user
        urls = [url for a in ctx.images if (url := await ctx.media.image_url(a, inline=mode == "inline"))]
        if not urls:
            return user
        if self.settings.api == "responses":
            parts = [{"type": "input_text", "text": user["content"]},
                     *({"type": "input_image", "image_url": url} for url in urls)]
        else:
            parts = [{"type": "text", "text": user["content"]},
                     *({"type": "image_url", "image_url": {"url": url}} for url in urls)]
        return {"role": "user", "content": parts}

    def _check_caps(self, memory: dict[str, Any]) -> None:
        settings = self.settings
        if memory["calls"] >= settings.max_calls_per_conversation:
            raise ModelFailure("cap", f"the conversation reached the bot's limit of "
                                      f"{settings.max_calls_per_conversation} model calls")
        if memory["tokens"] >= settings.max_tokens_per_conversation:
            raise ModelFailure("cap", f"the conversation reached the bot's limit of "
                                      f"{settings.max_tokens_per_conversation} model tokens")

    async def _fall_back(self, ctx: Context, failure: ModelFailure) -> None:
        level = logging.ERROR if failure.kind in ("auth", "permission") else logging.WARNING
        log.log(level, "the model gave no answer (%s); handing the conversation to a human", failure.kind,
                extra={**_extra(ctx), "failure": failure.kind})
        if ctx.handed_off:
            return
        await ctx.handoff(message=None if _turn.get().replied else ctx.t(self.settings.fallback_message),
                          note=ctx.t_agents(N_("The assistant could not answer: {reason}. The conversation is "
                                               "yours now."), reason=failure.sentence),
                          reason="model")

    # the model ----------------------------------------------------------------------------------------
    async def _ask(self, ctx: Context, system: str, items: list[dict[str, Any]]) -> _Answer:
        """The model's answer, asked once per event: a retry (after a Chatwoot action failed) replays it, so
        the journaled actions that follow line up with the same decision."""
        kept = await ctx.once("model", lambda: self._ask_model(ctx, system, items))
        return _Answer(kept["text"], [_Call(**c) for c in kept["calls"]], kept["tokens"], kept["items"],
                       kept.get("tokens_in", 0), kept.get("tokens_out", 0))

    async def _ask_model(self, ctx: Context, system: str, items: list[dict[str, Any]]) -> dict[str, Any]:
        assert self.client is not None, "OpenAIHandler.startup() was not called"
        settings = self.settings
        started = time.perf_counter()
        try:
            with tracing.span("botkit.model", model=settings.model, api=settings.api):
                if settings.api == "responses":
                    answer = await self._ask_responses(system, items)
                else:
                    answer = await self._ask_chat(system, items)
        except openai.OpenAIError as exc:
            raise describe(exc, settings.timeout, settings.max_retries + 1) from None
        ms = (time.perf_counter() - started) * 1000
        log.info("the model answered in %.0f ms (%d tokens, %d tool calls)", ms, answer.tokens, len(answer.calls),
                 extra=_extra(ctx))
        timeline.model_call(settings.model, ms=ms, tokens_in=answer.tokens_in, tokens_out=answer.tokens_out)
        return asdict(answer)

    def _options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"model": self.settings.model}
        if self.settings.temperature is not None:
            options["temperature"] = self.settings.temperature
        return options

    # Both APIs are called through `client.post`, the SDK's documented way to send a body as it is, rather than
    # `chat.completions.create` / `responses.create`: those walk the body by its typed dicts and build typed
    # objects from the answer, ~1.5 ms of CPU a call, over a third of the worker's cost per conversation in
    # bench/llm_concurrency.py. The body is plain JSON already and the answer is read into an _Answer at once;
    # post keeps the SDK's connection pool, retries, timeouts and typed errors. (cast_to=object: the JSON as is.)
    async def _ask_chat(self, system: str, items: list[dict[str, Any]]) -> _Answer:
        options = self._options()
        if self.settings.max_output_tokens is not None:
            options["max_completion_tokens"] = self.settings.max_output_tokens
        if self.tools:
            options["tools"] = [{"type": "function", "function": {
                "name": t.name, "description": t.description, "parameters": t.parameters}} for t in self.tools.values()]
        assert self.client is not None
        completion = await self.client.post("/chat/completions", cast_to=object, body={
            "messages": [{"role": "system", "content": system}, *items], **options},
            options={"headers": tracing.inject({})})
        message = completion["choices"][0]["message"]
        calls = [_Call(c["id"], c["function"]["name"], c["function"].get("arguments") or "")
                 for c in message.get("tool_calls") or [] if c.get("type") == "function"]
        item: dict[str, Any] = {"role": "assistant", "content": message.get("content")}
        if calls:
            item["tool_calls"] = [{"id": c.id, "type": "function",
                                   "function": {"name": c.name, "arguments": c.arguments}} for c in calls]
        return _Answer(message.get("content") or "", calls, _tokens(completion), [item], *_usage(completion))

    async def _ask_responses(self, system: str, items: list[dict[str, Any]]) -> _Answer:
        options = self._options()
        if self.settings.max_output_tokens is not None:
            options["max_output_tokens"] = self.settings.max_output_tokens
        if self.tools:
            options["tools"] = [{"type": "function", "name": t.name, "description": t.description,
                                 "parameters": t.parameters} for t in self.tools.values()]
        assert self.client is not None
        # store=False: the transcript is ours; nothing is kept at the provider for previous_response_id
        response = await self.client.post("/responses", cast_to=object, body={
            "instructions": system, "input": items, "store": False, **options},
            options={"headers": tracing.inject({})})
        output = response.get("output") or []
        calls = [_Call(o["call_id"], o["name"], o.get("arguments") or "") for o in output
                 if o.get("type") == "function_call"]
        # what the SDK's Response.output_text gives: the text parts of the message items, joined
        text = "".join(part.get("text") or "" for o in output if o.get("type") == "message"
                       for part in o.get("content") or [] if part.get("type") == "output_text")
        sent: list[dict[str, Any]] = [{"role": "assistant", "content": text}] if text else []
        sent += [{"type": "function_call", "call_id": c.id, "name": c.name, "arguments": c.arguments} for c in calls]
        return _Answer(text, calls, _tokens(response), sent, *_usage(response))

    def _output_item(self, call: _Call, output: str) -> dict[str, Any]:
        if self.settings.api == "responses":
            return {"type": "function_call_output", "call_id": call.id, "output": output}
        return {"role": "tool", "tool_call_id": call.id, "content": output}

    async def _run_tool(self, ctx: Context, call: _Call) -> str:
        """Run one tool call; what the model reads back. Mistakes go back to the model, Chatwoot failures raise."""
        tool = self.tools.get(call.name)
        if tool is None:
            return f"error: there is no tool named {call.name}"
        try:
            arguments = json.loads(call.arguments or "{}")
            result = await tool.run(ctx, arguments if isinstance(arguments, dict) else {})
        except (ValueError, ValidationError) as exc:  # bad JSON or arguments: the model can correct itself
            log.info("the model called %s with bad arguments", call.name, extra=_extra(ctx))
            return f"error: bad arguments for {call.name}: {exc}"
        except ActionRefused as exc:
            return f"error: {exc}"
        log.info("the model called %s", call.name, extra=_extra(ctx))
        if tool.ends_turn:
            _turn.get().ended = True
        return result if isinstance(result, str) else json.dumps(result, default=str)

    # built-in tools (their docstrings are what the model reads) ---------------------------------------
    async def _handoff_to_human(self, ctx: Context, reason: str, team: str | None = None) -> str:
        """Hand the conversation to a human agent, when you cannot help or the contact asks for a person.

        Args:
            reason: Why, in one sentence, for the agent who takes over.
            team: The team to assign, if one fits.
        """
        note = ctx.t_agents(N_("The assistant handed this conversation over: {reason}"), reason=reason)
        if team is not None:
            try:
                ctx.teams.id_of(team)
            except ActionRefused:
                note += " " + ctx.t_agents(N_("(it asked for team {team}, which the bot does not know)"),
                                           team=repr(team))
                team = None
        await ctx.handoff(team=team, note=note, reason="model",
                          message=None if _turn.get().replied else ctx.t(self.settings.handoff_message))
        return "handed off"

    async def _assign_team(self, ctx: Context, team: str) -> str:
        """Assign the conversation to a team, keeping it with you.

        Args:
            team: The team's name.
        """
        await ctx.assign_team(team)
        return f"assigned to {team}"

    async def _add_labels(self, ctx: Context, labels: list[str]) -> str:
        """Add labels to the conversation (the existing ones stay).

        Args:
            labels: Label names, lowercase, no spaces.
        """
        await ctx.add_labels(*labels)
        return "labels added"

    async def _resolve(self, ctx: Context) -> str:
        """Mark the conversation resolved, when the contact's question is fully answered and they are done."""
        await ctx.resolve()
        return "resolved"

    # the prompt ---------------------------------------------------------------------------------------
    def system_prompt(self, ctx: Context) -> str:
        """The template filled with the contact's name, the inbox, the channel and custom attributes."""
        contact = ctx.contact
        conversation = ctx.conversation
        attributes = {**(conversation.custom_attributes if conversation else {}),
                      **(contact.custom_attributes if contact else {})}
        values = _Blank(
            contact_name=(contact.name if contact else None) or "",
            inbox=(ctx.inbox.name if ctx.inbox else None) or "",
            channel=(ctx.channel or "").removeprefix("Channel::"),
            attributes=_Blank(attributes),
            contact_attributes=_Blank(contact.custom_attributes if contact else {}),
            conversation_attributes=_Blank(conversation.custom_attributes if conversation else {}),
        )
        return string.Formatter().vformat(self.template, (), values)


def _extra(ctx: Context) -> dict[str, Any]:
    return {"delivery_id": ctx.job.delivery_id, "lane": ctx.job.lane}


class _Blank(dict):  # type: ignore[type-arg]
    """A template mapping where a missing name is empty rather than an error (attributes vary per contact)."""

    def __missing__(self, key: str) -> str:
        return _NOTHING


class _Nothing(str):
    """The empty text, which stays empty when indexed ({attributes[plan]} with no attributes at all)."""

    def __getitem__(self, key: Any) -> _Nothing:  # type: ignore[override]
        return self


_NOTHING = _Nothing("")


def contact_text(ctx: Context) -> str:
    """What the contact said, or a short description of what they sent without words."""
    text = ctx.text.strip()
    attachments = ctx.attachments
    if not text and attachments and ctx.event.name == "message_created":
        kinds = ", ".join(sorted({a.file_type or "file" for a in attachments}))
        return f"[the contact sent {len(attachments)} attachment(s): {kinds}]"
    return text


def trim(transcript: list[dict[str, str]], turns: int, chars: int) -> None:
    """Drop the oldest messages until at most `turns` remain within `chars` characters (the last one is cut)."""
    while len(transcript) > turns or (len(transcript) > 1 and sum(len(m["content"]) for m in transcript) > chars):
        transcript.pop(0)
    if transcript and len(transcript[-1]["content"]) > chars:
        transcript[-1] = {**transcript[-1], "content": transcript[-1]["content"][:chars]}


def describe(exc: openai.OpenAIError, timeout: float, attempts: int) -> ModelFailure:
    """A model error as a kind (for logs and metrics) and a sentence (for the note); rate limit != auth."""
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    status = getattr(exc, "status_code", None)
    if isinstance(exc, openai.AuthenticationError):
        return ModelFailure("auth", "the model provider refused the API key (HTTP 401): check OPENAI_API_KEY")
    if isinstance(exc, openai.PermissionDeniedError):
        return ModelFailure("permission", "the model provider denied access (HTTP 403): check the key's permissions")
    if isinstance(exc, openai.RateLimitError):
        if getattr(exc, "code", None) == "insufficient_quota":
            return ModelFailure("quota", "the model provider's quota is used up (HTTP 429 insufficient_quota): "
                                         "check the account's billing")
        return ModelFailure("rate_limit", f"the model provider rate-limited the bot (HTTP 429){tries}")
    # A refused connection reaches the SDK (its aiohttp client) as a ConnectTimeout, so as an APITimeoutError.
    # (By name: the SDK's transport is httpx or httpx2 depending on its release.)
    connect = type(exc.__cause__).__name__ == "ConnectTimeout"
    if isinstance(exc, openai.APITimeoutError) and not connect:
        return ModelFailure("timeout", f"the model did not answer within {timeout:g} s{tries}")
    if isinstance(exc, openai.APIConnectionError):
        return ModelFailure("connection", f"the model server could not be reached{tries}")
    if isinstance(exc, openai.APIStatusError) and status is not None and status >= 500:
        return ModelFailure("server_error", f"the model server failed (HTTP {status}){tries}")
    if isinstance(exc, openai.APIStatusError):
        return ModelFailure("rejected", f"the model server rejected the request (HTTP {status}): check OPENAI_MODEL "
                                        "and the other OPENAI_ settings")
    return ModelFailure("error", f"the model call failed ({type(exc).__name__})")


__all__ = ["ModelFailure", "OpenAIHandler", "OpenAISettings", "Tool", "contact_text", "describe", "trim"]
