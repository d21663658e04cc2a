"""`botkit report`: what the bot's conversations came to, from the outcomes in its store.

    botkit report                      the last 7 days, as text
    botkit report --days 30 --format json
    botkit report --since 2026-11-01 --until 2026-12-01 --format html --output report.html

Periods are whole UTC days: `--since` is the first day, `--until` the day after the last. The figures and
their definitions: botkit/figures.py and docs/outcomes.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botkit.commands.stores import require_store
from botkit.config import ConfigError, load_settings

DAY = 24 * 3600


def add_commands(subparsers: Any) -> None:
    parser = subparsers.add_parser("report", help="the bot's outcomes: conversations taken, answered, resolved, "
                                                  "handed off, reopened, reply times, model cost")
    parser.add_argument("--days", type=int, default=7, help="the last N days, today included (default 7)")
    parser.add_argument("--since", help="first day, YYYY-MM-DD (UTC)")
    parser.add_argument("--until", help="the day after the last day, YYYY-MM-DD (UTC; default: tomorrow)")
    parser.add_argument("--format", choices=("text", "json", "html"), default="text")
    parser.add_argument("--output", help="write to this file (html: default botkit-report.html)")
    parser.add_argument("--store", help="store URL (BOTKIT_STORE)")
    parser.set_defaults(func=run_report)


def period(args: argparse.Namespace, now: float) -> tuple[float, float]:
    """[since, until) in unix seconds from --since/--until or --days; ConfigError for a bad date."""
    tomorrow = (int(now // DAY) + 1) * DAY
    until = _day(args.until, "--until") if args.until else tomorrow
    if args.since:
        since = _day(args.since, "--since")
    else:
        if args.days < 1:
            raise ConfigError("--days must be at least 1.")
        since = until - args.days * DAY
    if since >= until:
        raise ConfigError("--since must be before --until.")
    return since, until


def _day(text: str, option: str) -> float:
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise ConfigError(f"{option} must be a day as YYYY-MM-DD, not {text!r}.") from None


def run_report(args: argparse.Namespace) -> int:
    settings = load_settings(**({"botkit_store": args.store} if args.store else {}))
    since, until = period(args, time.time())
    require_store(settings.botkit_store, "botkit report", "--store or BOTKIT_STORE")  # else it reports zeros
    report = asyncio.run(_load(settings.botkit_store, since, until, settings.model_prices))
    from botkit.console import outcomes_page

    if args.format == "json":
        output = json.dumps(report.to_json(), indent=2) + "\n"
    elif args.format == "html":
        output = outcomes_page.html(report)
    else:
        output = outcomes_page.text(report)
    target = args.output or ("botkit-report.html" if args.format == "html" else None)
    if target is None:
        sys.stdout.write(output)
    else:
        try:
            Path(target).write_text(output)
        except OSError as exc:
            raise ConfigError(f"the report cannot be written to {target} ({exc.strerror}); name another "
                              "--output.") from None
        print(f"botkit: wrote the report to {target}", file=sys.stderr)
    return 0


async def _load(url: str, since: float, until: float, prices: dict[str, tuple[float, float]]) -> Any:
    from botkit.figures import from_store
    from botkit.store import StoreUnavailable, store_from_url

    store = store_from_url(url)
    try:
        await store.open()
        return await from_store(store, since=since, until=until, prices=prices)
    except StoreUnavailable as exc:
        raise ConfigError(f"cannot read the store: {exc}.") from None
    finally:
        await store.close()
