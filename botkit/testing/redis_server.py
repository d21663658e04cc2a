"""A real, throwaway `redis-server` for tests: loopback only, append-only file on, stopped by its own pid.

    with RedisServer(tmp_path) as server:
        store = RedisStore(server.url)
        ...
        server.restart()  # same dir and port: what the append-only file kept is back

When `redis-server` is not installed, `skip_unless_redis_server()` skips the test, except under CI (the
`CI` environment variable is set), where a missing server is a broken setup and fails loudly.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

INSTALL_HINT = "redis-server is not installed: apt-get install redis-server"
_START_TIMEOUT = 10.0  # seconds for the server to answer PING
_STOP_TIMEOUT = 10.0  # seconds for a clean shutdown (it rewrites nothing: --save '' and AOF fsync on exit)


class RedisServerMissing(RuntimeError):
    """No `redis-server` executable on this machine."""


def find_redis_server() -> str | None:
    return shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/local/bin/redis-server") if os.access(p, os.X_OK)), None)


def skip_unless_redis_server() -> None:
    """Skip the calling test when redis-server is missing; under CI, fail instead (CI must install it)."""
    if find_redis_server():
        return
    if os.environ.get("CI"):
        raise RedisServerMissing(f"{INSTALL_HINT} (CI is set, so this is a failure, not a skip)")
    import pytest

    pytest.skip(INSTALL_HINT)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server process on 127.0.0.1, persisting to `directory` with appendonly on."""

    def __init__(self, directory: str | os.PathLike[str], *, port: int | None = None,
                 extra_args: tuple[str, ...] = ()) -> None:
        executable = find_redis_server()
        if executable is None:
            raise RedisServerMissing(INSTALL_HINT)
        self.executable = executable
        self.directory = Path(directory)
        self.port = port or free_port()
        self.extra_args = extra_args
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        log = open(self.directory / "redis-server.log", "ab")  # noqa: SIM115 - the child keeps it
        args = [self.executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "yes", "--dir", str(self.directory), "--daemonize", "no", *self.extra_args]
        try:
            self._process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()
        self._wait_until_ready()

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """SIGTERM: a clean shutdown (the append-only file is fsynced). SIGKILL: a crash."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, sig)
        try:
            process.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()

    def restart(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Stop and start again on the same port and directory."""
        self.stop(sig)
        self.start()

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"redis-server exited at start (code {self._process.returncode}): "
                                   f"see {self.directory / 'redis-server.log'}")
            if _answers_ping(self.port):
                return
            time.sleep(0.02)
        self.stop(signal.SIGKILL)
        raise RuntimeError(f"redis-server did not answer PING on port {self.port} within {_START_TIMEOUT:.0f} s")


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False
