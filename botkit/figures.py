"""The outcomes' figures: from the facts of botkit/outcomes.py to what `botkit report` and the console show.

A conversation is a lane (`<bot>/<account>:<conversation>`). For a period [since, until), counting only the
facts in it (docs/outcomes.md defines each figure with an example):

- taken: conversations in which the bot acted (a handler took an event, or the bot replied, handed off or
  resolved); answered without a hand-off: taken, with at least one reply and no hand-off; resolved by the
  bot: taken, with a `resolved` fact; handed off: with a `handoff` fact, counted under the reason of the first.
- reopened within a week: resolved by the bot at t, and the contact wrote again or the conversation left
  `resolved` after t and at most 7 days later (looked for past the period's end too).
- time to first reply: per taken conversation, the `seconds` of its first reply fact in the period; p50 and
  p95 by the nearest-rank method (the smallest value with at least p% of the values at or below it).
- knowledge-base gaps: `kb_gap` facts; model tokens: input + output tokens of `model` facts, and their cost
  from BOTKIT_MODEL_PRICES (USD per million tokens); both also per taken conversation.

Per bot, inbox and handler: a conversation counts under its bot, the inbox of its first fact, and the handler
that took its first event (a failing handler included; "(dead letter)" when only the fallback acted).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from botkit.store.base import Record

WEEK = 7 * 24 * 3600.0
DAY = 24 * 3600.0
ACTED = frozenset({"taken", "reply", "handoff", "resolved"})


@dataclass
class Figures:
    conversations: int = 0  # taken by the bot
    answered_without_handoff: int = 0
    resolved_by_bot: int = 0
    handed_off: int = 0
    handoff_reasons: dict[str, int] = field(default_factory=dict)
    reopened_within_week: int = 0
    first_reply_p50: float | None = None  # seconds
    first_reply_p95: float | None = None
    kb_gaps: int = 0
    tokens: int = 0
    tokens_per_conversation: float | None = None
    cost: float | None = None  # USD; None when no model's price is known
    cost_per_conversation: float | None = None
    unpriced_models: list[str] = field(default_factory=list)


@dataclass
class Report:
    since: float
    until: float
    total: Figures
    by_bot: dict[str, Figures]
    by_inbox: dict[str, Figures]
    by_handler: dict[str, Figures]
    daily: list[tuple[str, Figures]]  # (YYYY-MM-DD, figures of that UTC day)

    def to_json(self) -> dict[str, Any]:
        return {"since": _iso(self.since), "until": _iso(self.until), "total": asdict(self.total),
                "by_bot": {k: asdict(v) for k, v in self.by_bot.items()},
                "by_inbox": {k: asdict(v) for k, v in self.by_inbox.items()},
                "by_handler": {k: asdict(v) for k, v in self.by_handler.items()},
                "daily": [{"day": day, **asdict(figures)} for day, figures in self.daily]}


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least p% of `values` at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def report(records: Iterable[Record], *, since: float, until: float,
           prices: Mapping[str, tuple[float, float]] | None = None) -> Report:
    """The figures of the `outcome` records for [since, until); pass the records up to `until + WEEK` so
    reopenings after the period's end are seen."""
    prices = prices or {}
    lanes: dict[str, list[Record]] = defaultdict(list)
    for record in sorted(records, key=lambda r: r.at):
        lanes[record.data.get("lane", "")].append(record)

    def figures(chosen: dict[str, list[Record]], start: float, end: float) -> Figures:
        return _figures(chosen, start, end, prices)

    groups: dict[str, dict[str, dict[str, list[Record]]]] = {"bot": {}, "inbox": {}, "handler": {}}
    for lane, facts in lanes.items():
        inside = [r for r in facts if since <= r.at < until]
        if not inside:
            continue
        first_taken = next((r for r in inside if r.data.get("type") in ACTED), inside[0])
        keys = {"bot": str(first_taken.data.get("bot")),
                "inbox": str(first_taken.data.get("inbox") if first_taken.data.get("inbox") is not None else "-"),
                "handler": str(first_taken.data.get("handler") or "-")}
        for group, key in keys.items():
            groups[group].setdefault(key, {})[lane] = facts
    daily = []
    day = math.floor(since / DAY) * DAY
    while day < until:
        start, end = max(since, day), min(until, day + DAY)
        daily.append((_iso(day)[:10], figures(lanes, start, end)))
        day += DAY
    return Report(since, until, figures(lanes, since, until),
                  {k: figures(v, since, until) for k, v in sorted(groups["bot"].items())},
                  {k: figures(v, since, until) for k, v in sorted(groups["inbox"].items())},
                  {k: figures(v, since, until) for k, v in sorted(groups["handler"].items())}, daily)


def _figures(lanes: dict[str, list[Record]], since: float, until: float,
             prices: Mapping[str, tuple[float, float]]) -> Figures:
    result = Figures()
    reasons: Counter[str] = Counter()
    first_replies: list[float] = []
    unpriced: set[str] = set()
    priced = False
    cost = 0.0
    for facts in lanes.values():
        inside = [r for r in facts if since <= r.at < until]
        kinds = [r.data.get("type") for r in inside]
        if any(kind in ACTED for kind in kinds):
            result.conversations += 1
            if "reply" in kinds and "handoff" not in kinds:
                result.answered_without_handoff += 1
            if "resolved" in kinds:
                result.resolved_by_bot += 1
                if _reopened(facts, [r.at for r in inside if r.data.get("type") == "resolved"]):
                    result.reopened_within_week += 1
            reply = next((r for r in inside if r.data.get("type") == "reply"), None)
            if reply is not None:
                first_replies.append(float(reply.data.get("seconds", 0.0)))
        handoff = next((r for r in inside if r.data.get("type") == "handoff"), None)
        if handoff is not None:
            result.handed_off += 1
            reasons[str(handoff.data.get("reason") or "handler")] += 1
        for record in inside:
            data = record.data
            if data.get("type") == "kb_gap":
                result.kb_gaps += 1
            elif data.get("type") == "model":
                tokens_in, tokens_out = int(data.get("tokens_in") or 0), int(data.get("tokens_out") or 0)
                result.tokens += tokens_in + tokens_out
                price = prices.get(str(data.get("model")))
                if price is None:
                    unpriced.add(str(data.get("model")))
                else:
                    priced = True
                    cost += (tokens_in * price[0] + tokens_out * price[1]) / 1_000_000
    result.handoff_reasons = dict(sorted(reasons.items(), key=lambda item: (-item[1], item[0])))
    result.first_reply_p50 = percentile(first_replies, 50)
    result.first_reply_p95 = percentile(first_replies, 95)
    result.unpriced_models = sorted(unpriced)
    if priced:
        result.cost = round(cost, 6)
    if result.conversations:
        result.tokens_per_conversation = round(result.tokens / result.conversations, 1)
        if result.cost is not None:
            result.cost_per_conversation = round(result.cost / result.conversations, 6)
    return result


def _reopened(facts: list[Record], resolved_at: list[float]) -> bool:
    """Did the contact write again, or the conversation leave resolved, within a week after a resolve?"""
    for at in resolved_at:
        if any(at < r.at <= at + WEEK and r.data.get("type") in ("contact_message", "reopened") for r in facts):
            return True
    return False


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def from_store(store: Any, *, since: float, until: float,
                     prices: Mapping[str, tuple[float, float]] | None = None) -> Report:
    """The report of the store's `outcome` records for [since, until) (reading a week past it for reopenings)."""
    records = await store.records("outcome", since=since, until=until + WEEK, limit=50_000_000)
    return report(records, since=since, until=until, prices=prices)
