"""Graceful shutdown: SIGTERM stops intake, in-flight events finish within BOTKIT_SHUTDOWN_TIMEOUT, the rest are
handed back, and after a restart every acked event has been handled exactly once."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from botkit.app import build_app
from botkit.config import load_settings
from tests.conftest import ROOT, SECRET, message, signed
from tests.support.recording_bot import read_records

NEVER_HANGS = 20  # seconds: only a hang goes past this; the exit times are printed, not asserted tightly


def handled(path) -> collections.Counter:
    return collections.Counter(record["message_id"] for record in read_records(path))


def wait_until(predicate, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_sigterm_during_a_burst_loses_and_doubles_nothing(tmp_path, server_process):
    record = tmp_path / "handled.jsonl"
    env = {"BOTKIT_BOT": "tests.support.recording_bot:bot", "BOTKIT_STORE": f"sqlite:///{tmp_path}/botkit.db",
           "RECORD_FILE": str(record), "HANDLER_DELAY": "0.1", "BOTKIT_CONCURRENCY": "16",
           "BOTKIT_SHUTDOWN_TIMEOUT": "5"}
    server = server_process(**env)
    acked: set[int] = set()
    answers: collections.Counter = collections.Counter()
    lock = threading.Lock()
    feeding = threading.Event()
    feeding.set()

    def deliver(client: httpx.Client, n: int) -> None:
        raw, headers = signed(message(1000 + n % 30, 50_000 + n, f"message {n}"), delivery_id=f"d-{n}")
        try:
            status = client.post("/webhook", content=raw, headers=headers).status_code
        except httpx.TransportError:  # the listener is closed: Chatwoot would see a connection error
            status = 0
        with lock:
            answers[status] += 1
            if status == 200:
                acked.add(50_000 + n)

    def feed(client: httpx.Client, first: int) -> None:  # a stream of deliveries that outlives the server
        for n in range(first, 20_000, 8):
            if not feeding.is_set():
                return
            deliver(client, n)

    with httpx.Client(base_url=server.url, timeout=10) as client, ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(feed, client, k) for k in range(8)]
        wait_until(lambda: len(acked) >= 150 and sum(handled(record).values()) >= 20)
        stopped_at = time.monotonic()
        server.process.terminate()  # SIGTERM in the middle of the burst
        server.process.wait(NEVER_HANGS)
        exit_seconds = time.monotonic() - stopped_at
        time.sleep(0.2)  # deliveries keep coming at the closed port, as Chatwoot's would
        feeding.clear()
        for future in futures:
            future.result()
    before_restart = handled(record)
    log = server.log.read_text()
    print(f"\nanswers during the burst {dict(answers)}; exit {exit_seconds:.2f} s after SIGTERM; "
          f"{sum(before_restart.values())} handled before the restart")
    assert set(answers) <= {200, 500, 0}, answers  # acked, refused while closing, or connection refused
    assert answers[0] + answers[500] > 0, "no delivery met the shutdown: nothing was tested"
    assert "Traceback" not in log, log
    assert max(before_restart.values()) == 1

    server_process(**{**env, "HANDLER_DELAY": "0"})  # the same store: the rest is handled now
    wait_until(lambda: acked <= set(handled(record)))
    time.sleep(0.5)  # anything that would run a second time has had its chance
    counts = handled(record)
    assert {m: c for m, c in counts.items() if m in acked and c != 1} == {}, "an acked event ran twice"
    assert max(counts.values()) == 1  # not even an unacked one ran twice


def test_the_deadline_hands_unfinished_events_back(tmp_path, server_process):
    record = tmp_path / "handled.jsonl"
    env = {"BOTKIT_BOT": "tests.support.recording_bot:bot", "BOTKIT_STORE": f"sqlite:///{tmp_path}/botkit.db",
           "RECORD_FILE": str(record), "HANDLER_DELAY": "60", "BOTKIT_SHUTDOWN_TIMEOUT": "1"}
    server = server_process(**env)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for n in range(4):
            raw, headers = signed(message(2000 + n, 60_000 + n), delivery_id=f"slow-{n}")
            assert client.post("/webhook", content=raw, headers=headers).status_code == 200
        wait_until(lambda: client.get("/readyz").json()["queue"]["in_flight"] == 4, 10)
    stopped_at = time.monotonic()
    server.process.terminate()
    server.process.wait(NEVER_HANGS)  # far less than the handlers' 60 s: the deadline cut them short
    print(f"\nexit {time.monotonic() - stopped_at:.2f} s after SIGTERM with 4 events of 60 s in flight")
    assert "handing 4 unfinished events back to the queue" in server.log.read_text()
    assert handled(record) == {}

    server_process(**{**env, "HANDLER_DELAY": "0"})
    wait_until(lambda: len(handled(record)) == 4)
    time.sleep(0.3)
    assert handled(record) == {60_000 + n: 1 for n in range(4)}


class Slow:
    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def handle(self, event, job) -> None:
        self.started.set()
        await asyncio.sleep(0.5)


async def test_webhooks_during_shutdown_get_500_and_readiness_goes_down(tmp_path):
    settings = load_settings(env_file=None, chatwoot_webhook_secret=SECRET, botkit_store="memory://",
                             botkit_shutdown_timeout=5)
    bot = Slow()
    app = build_app(settings, bot)
    transport = httpx.ASGITransport(app=app)  # requests straight into the app while its lifespan ends
    async with httpx.AsyncClient(transport=transport, base_url="http://botkit") as client:
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        raw, headers = signed(message(5, 500), delivery_id="before")
        assert (await client.post("/webhook", content=raw, headers=headers)).status_code == 200
        await asyncio.wait_for(bot.started.wait(), 5)
        stopping = asyncio.create_task(lifespan.__aexit__(None, None, None))
        await asyncio.sleep(0.1)  # the worker is finishing the slow event
        assert not stopping.done()
        raw, headers = signed(message(6, 600), delivery_id="during")
        response = await client.post("/webhook", content=raw, headers=headers)
        assert (response.status_code, response.content) == (500, b"")
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and "the server is shutting down" in ready.json()["problems"]
        with contextlib.suppress(Exception):
            await asyncio.wait_for(stopping, 10)
        assert stopping.done() and stopping.exception() is None


def test_a_restart_under_socket_activation_refuses_no_delivery(tmp_path):
    """As under systemd's botkit.socket: the listening socket outlives the process, so deliveries sent while
    the service restarts wait in its backlog and the next process answers them (a refused connection would
    be final for Chatwoot)."""
    record = tmp_path / "handled.jsonl"
    env = {**os.environ, "BOTKIT_BOT": "tests.support.recording_bot:bot", "CHATWOOT_WEBHOOK_SECRET": SECRET,
           "BOTKIT_STORE": f"sqlite:///{tmp_path}/botkit.db", "RECORD_FILE": str(record), "PYTHONPATH": str(ROOT)}
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    started: list[subprocess.Popen] = []

    def start_service() -> subprocess.Popen:
        def as_systemd_does() -> None:  # in the child: the socket at fd 3, and LISTEN_PID naming this process
            os.dup2(listener.fileno(), 3)
            os.environ.clear()
            os.environ.update({**env, "LISTEN_FDS": "1", "LISTEN_PID": str(os.getpid())})

        with (tmp_path / "service.log").open("ab") as log:
            started.append(subprocess.Popen([sys.executable, "-m", "botkit.cli", "serve"], cwd=tmp_path, env=None,
                                            preexec_fn=as_systemd_does, pass_fds=(3,), stdout=log,
                                            stderr=subprocess.STDOUT))
        return started[-1]

    def deliver(client: httpx.Client, n: int) -> int:
        raw, headers = signed(message(4000 + n, 90_000 + n, f"message {n}"), delivery_id=f"s-{n}")
        return client.post(f"{url}/webhook", content=raw, headers=headers).status_code

    try:
        with listener, httpx.Client(timeout=60) as client, ThreadPoolExecutor(5) as pool:
            first = start_service()
            wait_until(lambda: first.poll() is None and _healthy(client, url), timeout=30)
            assert [deliver(client, n) for n in range(5)] == [200] * 5
            first.send_signal(signal.SIGTERM)
            assert first.wait(NEVER_HANGS) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once done
            during = [pool.submit(deliver, client, n) for n in range(5, 10)]  # no process is serving now
            time.sleep(0.5)
            assert not any(f.done() for f in during)  # accepted by the kernel, waiting: not refused
            start_service()
            assert [f.result(timeout=60) for f in during] == [200] * 5
            wait_until(lambda: len(handled(record)) >= 10)
    finally:
        for process in started:  # even when an assertion failed: no server may outlive the test
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(NEVER_HANGS)
    assert handled(record) == collections.Counter(range(90_000, 90_010))


def _healthy(client: httpx.Client, url: str) -> bool:
    try:
        return client.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False
