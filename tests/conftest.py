"""Fixtures shared by botkit's own tests. Everything runs on 127.0.0.1; nothing reaches the internet."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from botkit.security import signed_headers
from tests.support.browser import browser_page  # noqa: F401 - the web pages' tests' real browser

ROOT = Path(__file__).resolve().parent.parent
PAYLOADS = ROOT / "botkit" / "testing" / "payloads"
SECRET = "test-secret-please-ignore"


def load_payload(name: str) -> dict[str, Any]:
    return json.loads((PAYLOADS / f"{name}.json").read_text())


@pytest.fixture
def payload():
    """payload("message_created") -> a fresh copy of the real-shape delivery."""
    return lambda name: copy.deepcopy(load_payload(name))


def message(conversation_id: int, message_id: int, text: str = "hello", **overrides: Any) -> dict[str, Any]:
    """A contact's message_created in a pending conversation, with ids changed."""
    body = load_payload("message_created")
    body["id"] = message_id
    body["content"] = text
    body["conversation"]["id"] = conversation_id
    body["conversation"]["messages"][0]["id"] = message_id
    body.update(overrides)
    return body


def signed(body: dict[str, Any] | bytes, *, delivery_id: str | None = None, secret: str = SECRET,
           timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = signed_headers(secret, raw, timestamp=timestamp)
    if delivery_id:
        headers["X-Chatwoot-Delivery"] = delivery_id
    return raw, headers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """`botkit serve` as a real subprocess, stopped or killed by its pid."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / f"server-{self.port}.log"
        self.env = {**os.environ, "CHATWOOT_WEBHOOK_SECRET": SECRET, "BOTKIT_PORT": str(self.port),
                    "PYTHONPATH": str(ROOT), **env}
        self.cwd = tmp_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerProcess:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "botkit.cli", "serve"], cwd=self.cwd,
                                            env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"botkit serve exited at start:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError(f"botkit serve did not start:\n{self.log.read_text()}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def terminate(self, timeout: float = 30) -> int:
        assert self.process is not None
        self.process.terminate()
        return self.process.wait(timeout)


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[Any]:
    started: list[ServerProcess] = []

    def start(**env: str) -> ServerProcess:
        server = ServerProcess(tmp_path, env).start()
        started.append(server)
        return server

    yield start
    for server in started:
        if server.process is not None and server.process.poll() is None:
            server.kill()


class BotkitProcess:
    """`python -m botkit.cli ARGS` as a real subprocess: `serve ...` (waits for /healthz) or `worker` (waits
    for its start-up log line). Stopped or killed by its pid."""

    def __init__(self, tmp_path: Path, args: tuple[str, ...], env: dict[str, str]) -> None:
        self.args = args
        self.port = free_port() if args[0] == "serve" else None
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / f"botkit-{args[0]}-{id(self)}.log"
        self.env = {**os.environ, "CHATWOOT_WEBHOOK_SECRET": SECRET, "PYTHONPATH": str(ROOT), **env}
        if self.port is not None:
            self.env["BOTKIT_PORT"] = str(self.port)
        with self.log.open("ab") as log:
            # its own process group, so the fixture can end whatever it started (uvicorn's --workers children)
            self.process = subprocess.Popen([sys.executable, "-m", "botkit.cli", *args], cwd=tmp_path,
                                            env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    @property
    def pid(self) -> int:
        return self.process.pid

    def ready(self, timeout: float = 30) -> BotkitProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"botkit {self.args[0]} exited at start:\n{self.log.read_text()}")
            if self.port is None:
                if "botkit worker is running" in self.log.read_text():
                    return self
            else:
                try:
                    if httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
            time.sleep(0.05)
        raise RuntimeError(f"botkit {self.args[0]} did not start:\n{self.log.read_text()}")

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def terminate(self, timeout: float = 30) -> int:
        self.process.terminate()
        return self.process.wait(timeout)


@pytest.fixture
def botkit_process(tmp_path: Path) -> Iterator[Any]:
    """botkit_process("worker", BOTKIT_STORE=...) -> a started BotkitProcess (call .ready() to wait for it)."""
    started: list[BotkitProcess] = []

    def launch(*args: str, **env: str) -> BotkitProcess:
        started.append(BotkitProcess(tmp_path, args, env))
        return started[-1]

    yield launch
    for process in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # the process and every child it left, alive or orphaned
        process.process.wait()


@pytest.fixture
def no_openai_env(monkeypatch):
    """The OpenAI handler reads OPENAI_* from the environment: its tests start from none."""
    for name in list(os.environ):
        if name.startswith("OPENAI_"):
            monkeypatch.delenv(name)
