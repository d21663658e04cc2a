"""What a claim costs as the queue grows: the SQLite store's claim (lane heads from the `lanes` index) beside
the query it replaced (the whole queue grouped by lane), on the same file, in the same run.

    .venv/bin/python bench/claim.py [--backlogs 300,3000,30000]

Each backlog is that many 3.2 KB events, one per conversation, with the 256 oldest in flight (as under a
burst with BOTKIT_CONCURRENCY=256). A claim is a write transaction that holds the file's write lock, so
while it runs no ack can commit: its time is added to the acks waiting behind it.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from botkit.store.sqlite import _JOB_COLUMNS, CLAIM, SCHEMA  # noqa: E402

GROUPED = (f"SELECT {_JOB_COLUMNS} FROM queue WHERE seq IN (SELECT MIN(seq) FROM queue GROUP BY lane) "  # noqa: S608
           "AND claimed = 0 AND not_before <= ? ORDER BY seq LIMIT ?")


def per_call(db: sqlite3.Connection, query: str, limit: int, repeat: int) -> float:
    db.execute(query, (1.0, limit)).fetchall()
    started = time.perf_counter()
    for _ in range(repeat):
        db.execute(query, (1.0, limit)).fetchall()
    return (time.perf_counter() - started) / repeat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlogs", default="300,3000,30000")
    args = parser.parse_args()
    body = b"x" * 3200
    print("backlog   limit   claim (lanes index)   former claim (group by lane)   ratio former/now")
    for backlog in map(int, args.backlogs.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            db = sqlite3.connect(Path(tmp, "claim.db"), isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
            db.execute("BEGIN")
            db.executemany("INSERT INTO queue (key, lane, event, body, delivery_id, enqueued_at) VALUES (?,?,?,?,?,?)",
                           [(f"k{n}", f"default/1:{n}", "message_created", body, None, 0.0) for n in range(backlog)])
            db.execute("UPDATE queue SET claimed = 1 WHERE seq <= 256")
            db.execute("COMMIT")
            for limit in (1, 64):
                repeat = max(5, 30_000 // backlog)
                now = per_call(db, CLAIM.format(only_mine=""), limit, repeat * 10)
                before = per_call(db, GROUPED, limit, repeat)
                print(f"{backlog:>7} {limit:>7} {now * 1e6:>15.0f} µs {before * 1e6:>24.0f} µs {before / now:>14.0f}x")
            db.close()


if __name__ == "__main__":
    main()
