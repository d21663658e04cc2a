"""One knowledge base for every worker on Redis: two `botkit worker` processes answer from the articles a
`botkit kb sync` in a third process brought in, with a real redis-server and the fake Chatwoot's Help Center.
Each worker is paused in turn (SIGSTOP) so the other one must take the next question."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from botkit.knowledge import Document, KnowledgeBase
from botkit.knowledge.redis_index import RedisIndex
from botkit.testing.fake_chatwoot import FakeChatwoot
from botkit.testing.redis_server import RedisServer, skip_unless_redis_server
from tests.conftest import ROOT, message, signed


@pytest.fixture
def redis_server(tmp_path: Path):
    skip_unless_redis_server()
    with RedisServer(tmp_path / "redis") as server:
        yield server


def wait_for(condition: Callable[[], bool], timeout: float = 30, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_two_workers_answer_from_one_knowledge_base_after_a_sync_from_a_third_process(
        tmp_path: Path, redis_server: RedisServer, botkit_process) -> None:
    fake = FakeChatwoot()
    fake.add_portal("docs")
    article = fake.add_article("docs", "Reset your password", "Open Settings, then Security, and choose Reset.")
    for conversation_id in (1, 2, 3, 4):
        fake.add_conversation(conversation_id=conversation_id, status="pending")
    with fake.serve_in_thread():
        env = {"BOTKIT_STORE": redis_server.url, "BOTKIT_HANDLERS": "knowledge", "BOTKIT_KB_WHEN_UNSURE": "handoff",
               "BOTKIT_KB_EMBEDDINGS": "none", "CHATWOOT_BASE_URL": fake.url, "CHATWOOT_BOT_TOKEN": fake.bot_token,
               "CHATWOOT_ADMIN_TOKEN": fake.admin_token, "OPENAI_API_KEY": ""}
        receiver = botkit_process("serve", "--no-worker", **env).ready()
        first = botkit_process("worker", **env).ready()
        second = botkit_process("worker", **env).ready()

        def ask(conversation_id: int, text: str) -> None:
            raw, headers = signed(message(conversation_id, 100 + conversation_id, text),
                                  delivery_id=f"d-{conversation_id}")
            assert httpx.post(f"{receiver.url}/webhook", content=raw, headers=headers, timeout=10).status_code == 200

        def answered(conversation_id: int) -> list[dict]:
            return [m for m in fake.messages(conversation_id) if m["message_type"] == 1 and not m.get("private")]

        def alone(worker, conversation_id: int, text: str, status: str) -> list[dict]:
            """Ask while the other worker is paused: this one must take the question (and leave the status)."""
            other = second if worker is first else first
            os.kill(other.pid, signal.SIGSTOP)
            try:
                ask(conversation_id, text)
                wait_for(lambda: answered(conversation_id) and fake.conversation(conversation_id).status == status,
                         what=f"an answer in conversation {conversation_id}")
            finally:
                os.kill(other.pid, signal.SIGCONT)
            return answered(conversation_id)

        # before the sync both workers know nothing: the question goes to a person
        assert "don't know" in alone(first, 1, "How do I reset my password?", "open")[0]["content"]
        assert "don't know" in alone(second, 2, "How do I reset my password?", "open")[0]["content"]

        sync = subprocess.run([sys.executable, "-m", "botkit.cli", "kb", "sync"], cwd=tmp_path, capture_output=True,
                              text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT), **env})
        assert sync.returncode == 0, sync.stderr
        assert f"added\thelpcenter:docs:{article.id}" in sync.stdout

        link = f"{fake.url}/hc/docs/articles/{article.slug}"
        for worker, conversation_id in ((first, 3), (second, 4)):
            [reply] = alone(worker, conversation_id, "How do I reset my password?", "pending")
            assert reply["content"].startswith("Open Settings, then Security")
            assert reply["content_attributes"]["items"][0]["link"] == link

    gaps = RedisIndex(redis_server.url).gaps()
    assert sorted((g.conversation, g.reason) for g in gaps) == [("1/1", "unanswered"), ("1/2", "unanswered")]


def test_the_redis_index_keeps_documents_meta_and_gaps_under_the_stores_prefix(redis_server: RedisServer) -> None:
    writer = KnowledgeBase(RedisIndex(redis_server.url + "?prefix=shop:"))
    reader = KnowledgeBase(RedisIndex(redis_server.url + "?prefix=shop:"))
    other = KnowledgeBase(RedisIndex(redis_server.url))  # another prefix: another bot's knowledge base
    writer.add([Document("a", "Opening hours", "We open at nine.")])
    assert reader.search("opening hours").verdict == "answer"
    assert other.search("opening hours").verdict == "unanswered"
    writer.add([Document("a", "Opening hours", "We open at ten now.")])
    assert "ten" in reader.search("opening hours").best.passage.text
    assert writer.remove("a") and reader.search("opening hours").verdict == "unanswered"
    writer.record_gap("Do you deliver on Sundays?", "unanswered", 0.1, "1/5")
    assert [g.question for g in reader.index.gaps()] == ["Do you deliver on Sundays?"]
    assert reader.index.meta("embedder") == "none" and reader.index.stats()["documents"] == 1  # the examples
    assert reader.index.clear_gaps() == 1 and other.index.gaps() == []
