"""The worker in a process of its own, beside the receiver: what `botkit serve` runs on SQLite.

Handlers (a model call, a Chatwoot request) cost CPU; in one process they would take it from the acks that
Chatwoot waits at most 5 seconds for. So the receiver process only verifies and enqueues, and this child
process (`botkit worker`, spawned and supervised here) claims and handles. The child:

- is the file's only worker (SQLite keeps claims in the worker's process; a lock file enforces it);
- is woken by the receiver's enqueues through a datagram socket (see SQLiteStore), and polls besides;
- dies with the server: it asks the kernel for SIGTERM when its parent dies (even by SIGKILL), and then
  finishes in-flight events within BOTKIT_SHUTDOWN_TIMEOUT, handing the rest back;
- is started again, with backoff, if it exits while the server runs.

It has the same `start()`, `stop()` and `running` as `Worker`, so the app runs either.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys

log = logging.getLogger("botkit.worker")

PARENT_ENV = "BOTKIT_WORKER_PARENT"  # set for the child: the pid of the server that spawned it
_PR_SET_PDEATHSIG = 1


class WorkerProcess:
    def __init__(self, *, shutdown_timeout: float = 10.0, command: list[str] | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.shutdown_timeout = shutdown_timeout
        self.command = command or [sys.executable, "-m", "botkit.cli", "worker"]
        self.env = env or {}  # on top of this process's environment
        self.process: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._supervise(), name="botkit-worker-process")

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        delay = 1.0
        while not self._stopping:
            env = {**os.environ, **self.env, PARENT_ENV: str(os.getpid())}
            self.process = await asyncio.create_subprocess_exec(*self.command, env=env)
            started = loop.time()
            code = await self.process.wait()
            if self._stopping:
                return
            delay = 1.0 if loop.time() - started > 60 else min(30.0, delay * 2)
            if code == 0:
                # A clean stop on a signal: Ctrl-C or systemd signals the whole group, and this server's own
                # stop (which cancels this task) follows at once. Only a worker stopped alone is worth a line.
                await asyncio.sleep(delay)
                log.warning("the worker process was stopped (a signal to it alone); started another")
                continue
            log.error("the worker process exited (code %s); starting another in %.0f s", code, delay)
            await asyncio.sleep(delay)

    async def stop(self, timeout: float | None = None) -> None:
        """SIGTERM: the child finishes in-flight events within its deadline and hands back the rest."""
        self._stopping = True
        if self.running:
            assert self.process is not None
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), (timeout or self.shutdown_timeout) + 5)
            except TimeoutError:
                log.error("the worker process did not stop in time; killing it")
                self.process.kill()
                await self.process.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class WorkerProcesses:
    """One supervised WorkerProcess per partition of a SQLite file's lanes (`?workers=N`)."""

    def __init__(self, store_url: str, workers: int, *, shutdown_timeout: float = 10.0) -> None:
        joiner = "&" if "?" in store_url else "?"
        self.children = [WorkerProcess(shutdown_timeout=shutdown_timeout,
                                       env={"BOTKIT_STORE": f"{store_url}{joiner}partition={n}"})
                         for n in range(workers)]

    @property
    def running(self) -> bool:
        return all(child.running for child in self.children)

    def start(self) -> None:
        for child in self.children:
            child.start()

    async def stop(self, timeout: float | None = None) -> None:
        await asyncio.gather(*(child.stop(timeout) for child in self.children))


def die_with_parent() -> None:
    """In the child: get SIGTERM when the server that spawned it dies, however it dies (Linux)."""
    parent = os.environ.get(PARENT_ENV)
    if not parent:
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != int(parent):  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)
