"""The run modes on Redis, as real processes: Redis going away and coming back, a worker stopped with SIGTERM,
the lease kept alive by heartbeats, `serve --workers 2`, and the refusals of a single-process store."""

from __future__ import annotations

import collections
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from botkit.testing.redis_server import RedisServer, skip_unless_redis_server
from tests.conftest import ROOT, free_port, message, signed
from tests.support.recording_bot import read_records

BOT = "tests.support.recording_bot:bot"


@pytest.fixture
def redis_server(tmp_path: Path):
    skip_unless_redis_server()
    # appendfsync always: every acked event is on disk, so even a SIGKILL of Redis loses none of them.
    with RedisServer(tmp_path / "redis", extra_args=("--appendfsync", "always")) as server:
        yield server


def handled(path: Path) -> list[dict[str, Any]]:
    return read_records(path)


def wait_for(condition: Callable[[], bool], timeout: float = 30, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def post(client: httpx.Client, url: str, conversation: int, mid: int) -> int:
    raw, headers = signed(message(conversation, mid), delivery_id=f"d-{mid}")
    return client.post(f"{url}/webhook", content=raw, headers=headers).status_code


def test_acked_events_outlive_a_redis_crash_and_workers_reconnect(tmp_path, redis_server, botkit_process) -> None:
    record = tmp_path / "handled.jsonl"
    env = {"BOTKIT_BOT": BOT, "BOTKIT_STORE": redis_server.url, "RECORD_FILE": str(record)}
    receiver = botkit_process("serve", "--no-worker", **env).ready()
    with httpx.Client(timeout=10) as client:
        assert [post(client, receiver.url, 1 + n % 5, 100 + n) for n in range(30)] == [200] * 30

        redis_server.stop(signal.SIGKILL)  # a crash of Redis itself
        assert post(client, receiver.url, 1, 999) == 500  # Chatwoot retries a 500
        assert client.get(f"{receiver.url}/readyz").status_code == 503
        redis_server.start()
        wait_for(lambda: client.get(f"{receiver.url}/readyz").status_code == 200, what="the receiver to reconnect")
        assert [post(client, receiver.url, 1 + n % 5, 200 + n) for n in range(30)] == [200] * 30

        worker = botkit_process("worker", **env).ready()
        wait_for(lambda: len(handled(record)) >= 60, what="the events acked around the crash")

        redis_server.restart()  # the worker is running this time: it must reconnect on its own
        assert [post(client, receiver.url, 1 + n % 5, 300 + n) for n in range(30)] == [200] * 30
        wait_for(lambda: len(handled(record)) >= 90, what="the events acked after the restart")
        assert worker.process.poll() is None

    counts = collections.Counter(r["message_id"] for r in handled(record))
    assert counts == collections.Counter(range(100, 130)) + collections.Counter(range(200, 230)) \
        + collections.Counter(range(300, 330))


def inflight(url: str) -> int:
    with redis.Redis.from_url(url) as client:
        return int(client.hlen("botkit:inflight"))


def test_worker_sigterm_finishes_in_flight_hands_back_the_rest(tmp_path, redis_server, botkit_process) -> None:
    record = tmp_path / "handled.jsonl"
    # A 60 s lease: an event not handed back on shutdown would sit out the lease, far past this test's waits.
    env = {"BOTKIT_BOT": BOT, "BOTKIT_STORE": f"{redis_server.url}?lease=60", "RECORD_FILE": str(record)}
    receiver = botkit_process("serve", "--no-worker", **env).ready()
    with httpx.Client(timeout=10) as client:
        assert [post(client, receiver.url, 1 + n % 5, 100 + n) for n in range(15)] == [200] * 15

    # Finishes what it holds: 1 s handlers, 10 s to finish.
    first = botkit_process("worker", HANDLER_DELAY="1", BOTKIT_SHUTDOWN_TIMEOUT="10", **env).ready()
    wait_for(lambda: inflight(redis_server.url) == 5, what="five events in flight")
    first.process.send_signal(signal.SIGTERM)
    assert first.process.wait(30) == 0
    by_first = [r for r in handled(record) if r["pid"] == first.pid]
    assert len(by_first) >= 5 and inflight(redis_server.url) == 0

    # Cannot finish in time (3 s handlers, 0.5 s to finish): hands them back untouched.
    second = botkit_process("worker", HANDLER_DELAY="3", BOTKIT_SHUTDOWN_TIMEOUT="0.5", **env).ready()
    wait_for(lambda: inflight(redis_server.url) > 0, what="the second worker to claim")
    second.process.send_signal(signal.SIGTERM)
    assert second.process.wait(30) == 0
    assert not [r for r in handled(record) if r["pid"] == second.pid]

    botkit_process("worker", **env).ready()
    wait_for(lambda: len(handled(record)) >= 15, timeout=20, what="the handed-back events (well within the lease)")
    assert collections.Counter(r["message_id"] for r in handled(record)) == collections.Counter(range(100, 115))


def test_heartbeats_keep_a_long_handler_from_running_twice(tmp_path, redis_server, botkit_process) -> None:
    record = tmp_path / "handled.jsonl"
    # Handlers take 2.5 lease lengths: without heartbeats the other worker would take each event over.
    env = {"BOTKIT_BOT": BOT, "BOTKIT_STORE": f"{redis_server.url}?lease=1", "RECORD_FILE": str(record),
           "HANDLER_DELAY": "2.5"}
    receiver = botkit_process("serve", "--no-worker", **env)
    workers = [botkit_process("worker", **env) for _ in range(2)]
    for process in (receiver, *workers):
        process.ready()
    with httpx.Client(timeout=10) as client:
        assert [post(client, receiver.url, n, 100 + n) for n in range(4)] == [200] * 4
    wait_for(lambda: len(handled(record)) >= 4, what="the four events")
    time.sleep(1.5)  # time for a takeover's second run to finish, if there were one
    assert collections.Counter(r["message_id"] for r in handled(record)) == collections.Counter(range(100, 104))


def test_a_worker_serves_its_metrics_and_probes_but_no_webhook(tmp_path, redis_server, botkit_process) -> None:
    record = tmp_path / "handled.jsonl"
    env = {"BOTKIT_BOT": BOT, "BOTKIT_STORE": redis_server.url, "RECORD_FILE": str(record)}
    receiver = botkit_process("serve", "--no-worker", **env).ready()
    port = free_port()
    worker = botkit_process("worker", "--metrics-port", str(port), **env).ready()
    url = f"http://127.0.0.1:{port}"
    with httpx.Client(timeout=10) as client:
        wait_for(lambda: _answers(client, f"{url}/readyz"), what="the worker's probes")
        assert [post(client, receiver.url, 1, 100 + n) for n in range(3)] == [200] * 3
        wait_for(lambda: len(handled(record)) >= 3, what="the three events")
        scraped = client.get(f"{url}/metrics").text
        assert 'botkit_events_total{outcome="done"} 3.0' in scraped
        raw, headers = signed(message(1, 999), delivery_id="d-999")
        assert client.post(f"{url}/webhook", content=raw, headers=headers).status_code == 404
        assert client.post(f"{url}/webhook", content=b"{}").status_code == 404  # unsigned: not even looked at
    assert worker.terminate() in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has drained
    assert "Application shutdown complete" in worker.log.read_text()


def _answers(client: httpx.Client, url: str) -> bool:
    try:
        return client.get(url).status_code == 200
    except httpx.TransportError:
        return False


def test_serve_with_two_uvicorn_workers_shares_the_redis_queue(tmp_path, redis_server, botkit_process) -> None:
    record = tmp_path / "handled.jsonl"
    env = {"BOTKIT_BOT": BOT, "BOTKIT_STORE": redis_server.url, "RECORD_FILE": str(record), "HANDLER_DELAY": "0.2"}
    server = botkit_process("serve", "--workers", "2", **env).ready()
    wait_for(lambda: server.log.read_text().count("Application startup complete") == 2, what="both processes")
    with httpx.Client(timeout=10) as client:
        assert [post(client, server.url, n % 20, 100 + n) for n in range(100)] == [200] * 100
    wait_for(lambda: len(handled(record)) >= 100, what="every event")
    records = handled(record)
    assert collections.Counter(r["message_id"] for r in records) == collections.Counter(range(100, 200))
    assert len({r["pid"] for r in records}) == 2  # both uvicorn processes ran the worker


@pytest.mark.parametrize("args", [["serve", "--workers", "2"], ["serve", "--no-worker"], ["worker"]])
def test_run_modes_that_need_a_shared_store_refuse_sqlite(tmp_path, args) -> None:
    result = subprocess.run([sys.executable, "-m", "botkit.cli", *args, "--store", f"sqlite:///{tmp_path}/b.db"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "CHATWOOT_WEBHOOK_SECRET": "x"})
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "redis://" in result.stderr
