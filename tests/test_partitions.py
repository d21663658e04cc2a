"""`?workers=N` on a SQLite store: `botkit serve` runs N worker processes, each serving its own share of the
conversations, over real processes: every event once, each conversation in order and in one process, and a
killed worker's share taken back by its restart."""

from __future__ import annotations

import collections
import os
import signal
import time

import httpx

from botkit.store.sqlite import partition_of
from tests.conftest import message, signed
from tests.support.recording_bot import read_records

CONVERSATIONS = 12
PER_CONVERSATION = 5


def wait_until(predicate, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_two_worker_processes_share_the_conversations_of_one_file(tmp_path, server_process):
    record = tmp_path / "handled.jsonl"
    server = server_process(BOTKIT_BOT="tests.support.recording_bot:bot", RECORD_FILE=str(record),
                            BOTKIT_STORE=f"sqlite:///{tmp_path}/botkit.db?workers=2", HANDLER_DELAY="0.02")
    with httpx.Client(base_url=server.url, timeout=10) as client:
        def deliver(conversation: int, n: int) -> None:
            raw, headers = signed(message(conversation, conversation * 100 + n, f"message {n}"),
                                  delivery_id=f"w-{conversation}-{n}")
            assert client.post("/webhook", content=raw, headers=headers).status_code == 200

        for n in range(PER_CONVERSATION):  # interleaved, as Chatwoot delivers them
            for conversation in range(1, CONVERSATIONS + 1):
                deliver(conversation, n)
        wait_until(lambda: len(read_records(record)) >= CONVERSATIONS * PER_CONVERSATION, "every event")
        records = read_records(record)
        assert collections.Counter(r["message_id"] for r in records) == collections.Counter(
            c * 100 + n for c in range(1, CONVERSATIONS + 1) for n in range(PER_CONVERSATION))
        by_conversation = collections.defaultdict(list)
        for r in sorted(records, key=lambda r: r["started"]):
            by_conversation[r["conversation"]].append(r)
        pids = set()
        for conversation, handled in by_conversation.items():
            assert [r["message_id"] % 100 for r in handled] == list(range(PER_CONVERSATION))  # in order
            assert len({r["pid"] for r in handled}) == 1  # one process serves a conversation
            pids.add((partition_of(f"default/1:{conversation}", 2), handled[0]["pid"]))
        assert len({pid for _, pid in pids}) == 2 and len(pids) == 2  # two processes, one per partition
        assert server.process.pid not in {pid for _, pid in pids}

        # A handler's record is written before its event's done is committed (a worker with several events
        # in hand gathers a few turns of the loop into one commit): wait for an empty queue, so the victim
        # holds nothing when it is killed. An event it held would rightly run again after the restart.
        def queue_empty() -> bool:
            queue = client.get("/readyz").json()["queue"]
            return queue["waiting"] == 0 and queue["in_flight"] == 0

        wait_until(queue_empty, "the queue to empty")

        # kill one of them: its share waits, is acked meanwhile, and its restart takes it over
        victim = next(pid for partition, pid in pids if partition == 0)
        os.kill(victim, signal.SIGKILL)
        for conversation in range(1, CONVERSATIONS + 1):
            deliver(conversation, PER_CONVERSATION)

        def late() -> list[dict]:
            return [r for r in read_records(record) if r["message_id"] % 100 == PER_CONVERSATION]

        wait_until(lambda: len({r["conversation"] for r in late()}) == CONVERSATIONS, "the restart")
    assert sorted(r["conversation"] for r in late()) == list(range(1, CONVERSATIONS + 1))  # each once
    assert victim not in {r["pid"] for r in late()}
    assert len(read_records(record)) == CONVERSATIONS * (PER_CONVERSATION + 1)  # nothing ran twice
