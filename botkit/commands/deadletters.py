"""`botkit deadletters`: list, show, replay and drop the events the bot failed for good.

    botkit deadletters list [--limit N]
    botkit deadletters show ID
    botkit deadletters replay ID | --all
    botkit deadletters drop ID

They work on any store (BOTKIT_STORE, or --store) through the store interface. A replayed event goes back
to the queue and through the normal path: the worker runs it again (dedupe is bypassed on purpose), and
the actions it already applied before failing are skipped (the journal), so the contact gets no second
reply. `list` prints one line per dead letter, tab-separated: id, event, lane, delivery id, attempts, age,
error. `show` prints the stored body, which holds the contact's message (that is what it is for) and never
a token: the body is what Chatwoot sent.

These commands only open the store: claims a previous run left are handed out again by a starting worker
(`Store.recover`), never by opening, so they are safe beside a running `botkit serve`, on SQLite as on Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import IO, Any

from botkit.commands.stores import require_store
from botkit.config import load_settings
from botkit.store import DeadLetter, Store, StoreUnavailable, store_from_url

# The store interface lists dead letters in pages; the CLI reads up to this many to find one or replay all.
ALL = 100_000


def age(seconds: float) -> str:
    """`42s`, `7m`, `3h`, `2d`: how long ago, at a glance."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(max(seconds, 0))}s"


def line(letter: DeadLetter, now: float) -> str:
    fields = [letter.id, letter.event, letter.lane, letter.delivery_id or "-", str(letter.attempts),
              age(now - letter.failed_at), " ".join(letter.error.split())]
    return "\t".join(fields)


async def find(store: Store, dead_letter_id: str) -> DeadLetter | None:
    return next((d for d in await store.dead_letters(ALL) if d.id == dead_letter_id), None)


async def run(store: Store, args: argparse.Namespace, out: IO[str]) -> int:
    """One subcommand against an open store; returns the exit code."""
    if args.action == "list":
        letters = await store.dead_letters(args.limit)
        now = time.time()
        for letter in letters:
            print(line(letter, now), file=out)
        if not letters:
            print("no dead letters", file=sys.stderr)
        return 0
    if args.action == "show":
        letter = await find(store, args.id)
        if letter is None:
            return missing(args.id)
        print(line(letter, time.time()), file=out)
        print(pretty(letter.body), file=out)
        return 0
    if args.action == "replay":
        ids = [d.id for d in await store.dead_letters(ALL)] if args.all else [args.id]
        replayed = [i for i in ids if await store.replay(i)]
        if not args.all and not replayed:
            return missing(args.id)
        print(" ".join([f"replayed {len(replayed)}", *replayed]), file=out)
        return 0
    if args.action == "drop":
        if not await store.drop(args.id):
            return missing(args.id)
        print(f"dropped {args.id}", file=out)
        return 0
    raise AssertionError(args.action)  # pragma: no cover - argparse allows only the four


def missing(dead_letter_id: str) -> int:
    print(f"botkit: there is no dead letter {dead_letter_id}; `botkit deadletters list` shows their ids.",
          file=sys.stderr)
    return 1


def pretty(body: bytes) -> str:
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body.decode("utf-8", "replace")


def command(args: argparse.Namespace) -> int:
    if args.action == "replay" and not args.all and args.id is None:
        print("botkit: name the dead letter to replay, or --all.", file=sys.stderr)
        return 2
    url = args.store or load_settings().botkit_store
    require_store(url, "botkit deadletters", "--store or BOTKIT_STORE")  # opening would make an empty one here
    store = store_from_url(url)

    async def main() -> int:
        try:
            async with store:
                return await run(store, args, sys.stdout)
        except StoreUnavailable as exc:
            print(f"botkit: the store does not answer ({exc}); check BOTKIT_STORE.", file=sys.stderr)
            return 1

    return asyncio.run(main())


def add_commands(subparsers: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", help="store URL (BOTKIT_STORE)")
    parser = subparsers.add_parser("deadletters", help="list, show, replay or drop events the bot failed for good")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    listing = actions.add_parser("list", parents=[common],
                                 help="one line per dead letter: id, event, lane, delivery id, attempts, age, error")
    listing.add_argument("--limit", type=int, default=100)
    actions.add_parser("show", parents=[common], help="a dead letter and the body Chatwoot sent").add_argument("id")
    replay = actions.add_parser("replay", parents=[common], help="queue a dead letter again (or --all of them)")
    replay.add_argument("id", nargs="?")
    replay.add_argument("--all", action="store_true")
    actions.add_parser("drop", parents=[common], help="forget a dead letter").add_argument("id")
    parser.set_defaults(func=command)
