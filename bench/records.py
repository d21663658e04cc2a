"""What recording a delivery's timeline and outcomes costs the worker on SQLite, beside the work it rides on.

    .venv/bin/python bench/records.py [--events 3000] [--rounds 3]

Each event goes through the store as the worker takes it: enqueue (the receiver's part), claim, one journal
record (one action), done. The baseline does only that; the measured run adds what botkit/outcomes.py writes
per delivery: a `delivery` record (a real timeline of one reply, ~1 KB of JSON, keep=1000) and two `outcome`
facts, in one add_records call. Both on the same kind of file, in the same run, alternating; the figure is
the worker's time per event (CPU plus commits, on the loop's own thread) and the ratio, with one conversation
at a time (every operation its own commit: the worst case) and with 64 in flight (group commit shares them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from botkit.events import parse_json  # noqa: E402
from botkit.outcomes import facts  # noqa: E402
from botkit.store.base import Record  # noqa: E402
from botkit.store.sqlite import SQLiteStore  # noqa: E402
from botkit.testing import factories  # noqa: E402
from botkit.timeline import Timeline  # noqa: E402

KEEP: dict[str, int] | None = {"delivery": 1000}


async def run(path: Path, events: int, record: bool, concurrency: int) -> float:
    store = SQLiteStore(str(path))
    await store.open()
    body = json.dumps(factories.contact_message("I need billing help")).encode()
    event = parse_json(body)

    async def one(n: int) -> None:
        await store.enqueue(keys=[f"k{n}"], lane=f"default/1:{n}", event="message_created", body=body,
                            delivery_id=None)
        [job] = await store.claim(1)
        await store.record(job.key, 0, {"id": n})
        if record:
            timeline = Timeline(bot="default", key=job.key, lane=job.lane, event="message_created",
                                received_at=job.enqueued_at, conversation_id=n, inbox_id=1)
            timeline.add("policy", "admitted")
            timeline.action("reply", 0, 2.5, content_type="text")
            timeline.add("handler", "keywords", 3.1, handled=True)
            timeline.handler = "keywords"
            now = time.time()
            await store.add_records([*(Record("outcome", now, f) for f in facts(timeline, event)),
                                     Record("delivery", now, timeline.to_json())], keep=KEEP)
        await store.done(job)

    async def lane(first: int) -> None:
        for n in range(first, events, concurrency):
            await one(n)

    started = time.perf_counter()
    await asyncio.gather(*(lane(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    await store.close()
    return elapsed / events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for concurrency in (1, 64):  # one conversation at a time, and 64 in flight (the worker's default)
            base, measured = [], []
            for r in range(args.rounds):
                base.append(asyncio.run(run(Path(folder) / f"b{concurrency}-{r}.db", args.events, False, concurrency)))
                measured.append(asyncio.run(run(Path(folder) / f"r{concurrency}-{r}.db", args.events, True,
                                                concurrency)))
            b, m = statistics.median(base), statistics.median(measured)
            print(f"{concurrency} in flight, per event, median of {args.rounds} rounds of {args.events}:")
            print(f"  baseline (enqueue, claim, journal, done):  {b * 1e6:8.1f} us")
            print(f"  with the timeline and outcomes recorded:   {m * 1e6:8.1f} us   (+{(m - b) * 1e6:.1f} us, "
                  f"ratio {m / b:.2f})")


if __name__ == "__main__":
    main()
